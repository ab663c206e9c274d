import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Dispatcher } from '../../../src/main/ipc/dispatch';
import { EventBus } from '../../../src/main/ipc/events';
import { createHandlers } from '../../../src/main/ipc/handlers';
import { consoleLogger } from '../../../src/main/log';
import { LocalAgent } from '../../../src/main/services/agent/local-agent';
import { Store } from '../../../src/main/services/db/store';
import { BundleLocator, type BundleOptions } from '../../../src/main/services/deploy/bundle';
import { DeployService, type DeployOptions } from '../../../src/main/services/deploy/deploy-service';
import { HostService } from '../../../src/main/services/hosts/hosts';
import { createVault } from '../../../src/main/services/secrets/vault';
import type { InvokeChannel } from '../../../src/shared/ipc/channels';
import type { DeployJob } from '../../../src/shared/ipc/contract-cloud';
import type { IpcInput, IpcOutput, IpcResult } from '../../../src/shared/ipc/contract';
import { AGENT_DIR } from './agent.js';
import { sqlitePrebuildStandIn } from './prebuilds.js';
import { TestSshd } from './sshd.js';

const run = promisify(execFile);

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise((done) => server.close(done));
  return port;
}

/** Packs the agent as `version` (pack.mjs --version) into `dir`. */
export async function packAgent(dir: string, version: string): Promise<string> {
  await run(process.execPath, [join(AGENT_DIR, 'scripts/pack.mjs'), '--out', dir, '--version', version], {
    timeout: 300_000,
  });
  return join(dir, `slotdeck-agent-${version}.tgz`);
}

/** A copy of a packed build under another version whose dist/ is changed by `edit` (a build that cannot start...). */
export function derivedTarball(source: string, dir: string, version: string, edit: (folder: string) => void): string {
  const scratch = mkdtempSync(join(dir, 'derive-'));
  execFileSync('tar', ['-xzf', source, '-C', scratch]);
  const folder = join(scratch, 'slotdeck-agent');
  const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(folder, 'package.json'), `${JSON.stringify({ ...manifest, version }, null, 2)}\n`);
  edit(folder);
  const target = join(dir, `slotdeck-agent-${version}.tgz`);
  execFileSync('tar', ['-czf', target, '--owner=0', '--group=0', '-C', scratch, 'slotdeck-agent']);
  rmSync(scratch, { recursive: true, force: true });
  return target;
}

/**
 * The "remote host" of deploy tests: a separate Unix account with its own home, reached through a real OpenSSH sshd
 * on loopback with a key of its own. Its agent will listen on free ports (its agent.json), and npm on it installs
 * from a copy of this machine's npm cache plus a local better-sqlite3 binary (GitHub is out of reach here).
 */
export class DeployTestHost {
  readonly user = `sdt${randomBytes(4).toString('hex')}`;
  readonly work = mkdtempSync(join(tmpdir(), 'sd-deploy-'));
  home = '';
  adminPort = 0;
  gatewayPort = 0;
  /** Environment for npm on the host (DeployOptions.hostEnv). */
  npmEnv: Record<string, string> = {};

  private constructor(readonly sshd: TestSshd) {}

  static async create(): Promise<DeployTestHost> {
    const host = new DeployTestHost(await TestSshd.start());
    // The user logs in with the sshd's own authorized_keys file: it must be able to read it.
    chmodSync(host.sshd.dir, 0o755);
    chmodSync(join(host.sshd.dir, 'authorized_keys'), 0o644);
    chmodSync(host.work, 0o755);
    execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', host.user]);
    // No password, but not locked: sshd (without PAM) refuses every login of a locked account, keys included.
    execFileSync('usermod', ['--password', '*', host.user]);
    host.home = execFileSync('getent', ['passwd', host.user], { encoding: 'utf8' }).split(':')[5]!;
    host.adminPort = await freePort();
    host.gatewayPort = await freePort();
    host.writeAgentConfig();
    host.npmEnv = await host.npmStandIns();
    return host;
  }

  /** ~/.local/share/slotdeck-agent/agent.json: free ports, so it never meets another agent on this machine. */
  writeAgentConfig(): void {
    const dir = join(this.home, '.local/share/slotdeck-agent');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'agent.json'),
      JSON.stringify({
        admin: { port: this.adminPort },
        gateway: { host: '127.0.0.1', port: this.gatewayPort },
        reconcileIntervalMs: 500,
      }),
    );
    execFileSync('chown', ['-R', `${this.user}:`, join(this.home, '.local')]);
  }

  private async npmStandIns(): Promise<Record<string, string>> {
    const shared = join(this.work, 'npm');
    sqlitePrebuildStandIn(join(shared, 'prebuilds'));
    const cache = join(homedir(), '.npm/_cacache');
    if (existsSync(cache)) await run('cp', ['-r', cache, join(shared, 'cache')]);
    else mkdirSync(join(shared, 'cache/_cacache'), { recursive: true });
    execFileSync('chown', ['-R', `${this.user}:`, shared]);
    return {
      npm_config_better_sqlite3_local_prebuilds: join(shared, 'prebuilds'),
      npm_config_cache: join(shared, 'cache').replace(/_cacache$/, ''),
      npm_config_prefer_offline: 'true',
    };
  }

  /** A PATH with everything of this machine's but Node (and npm, which needs it): a host without Node. */
  pathWithoutNode(): string {
    const dir = join(this.work, 'path-without-node');
    if (existsSync(dir)) return dir;
    mkdirSync(dir);
    for (const source of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) {
      if (!existsSync(source)) continue;
      for (const name of readdirSync(source)) {
        if (/^(node|nodejs|npm|npx|corepack)$/.test(name) || existsSync(join(dir, name))) continue;
        symlinkSync(join(source, name), join(dir, name));
      }
    }
    return dir;
  }

  /** The account's processes (PM2, the agent, slots), by pid. */
  processes(): number[] {
    try {
      return execFileSync('ps', ['-u', this.user, '-o', 'pid='], { encoding: 'utf8' })
        .split('\n')
        .map((line) => Number(line.trim()))
        .filter((pid) => pid > 0);
    } catch {
      return [];
    }
  }

  /** The command lines of the account's processes. */
  commandLines(): string[] {
    try {
      return execFileSync('ps', ['-u', this.user, '-o', 'args='], { encoding: 'utf8' })
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean);
    } catch {
      return [];
    }
  }

  get dataDir(): string {
    return join(this.home, '.local/share/slotdeck-agent');
  }

  get root(): string {
    return join(this.home, '.slotdeck-agent');
  }

  adminToken(): string {
    return readFileSync(join(this.dataDir, 'secrets/admin-token'), 'utf8').trim();
  }

  async destroy(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const pids = this.processes();
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await sleep(200);
    }
    try {
      execFileSync('userdel', ['--remove', this.user], { stdio: 'ignore' });
    } catch {
      rmSync(this.home, { recursive: true, force: true });
    }
    this.sshd.stop();
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** The panel's main-process services as bootstrap wires them, without "This computer", for deploy tests. */
export class DeployTestPanel {
  readonly progress: DeployJob[] = [];
  readonly bundleOptions: BundleOptions;
  private constructor(
    readonly dir: string,
    readonly store: Store,
    readonly hosts: HostService,
    readonly deploy: DeployService,
    readonly dispatcher: Dispatcher,
    readonly events: EventBus,
    bundleOptions: BundleOptions,
    /** A stand-in for EC2's DescribeInstances: each linked instance's public address, by instance id. */
    readonly instanceAddresses: Map<string, string>,
  ) {
    this.bundleOptions = bundleOptions;
  }

  static async create(tarball: string, options: Partial<DeployOptions>): Promise<DeployTestPanel> {
    const dir = mkdtempSync(join(tmpdir(), 'sd-deploy-panel-'));
    const store = Store.open(join(dir, 'slotdeck.db'));
    const vault = await createVault({ file: join(dir, 'secrets.enc.json'), masterKey: 'deploy-test-master-key' });
    const log = consoleLogger(() => undefined);
    const events = new EventBus();
    const localAgent = new LocalAgent({
      agentDir: AGENT_DIR,
      dataDir: join(dir, 'agents/local'),
      logFile: join(dir, 'local-agent.log'),
      nodePath: process.execPath,
      log,
      onStateChange: () => undefined,
    });
    // Mutable: tests switch the tarball to deploy between jobs.
    const bundleOptions: BundleOptions = {
      agentDir: AGENT_DIR,
      cacheDir: join(dir, 'agent-bundles'),
      nodePath: process.execPath,
      tarball,
    };
    const bundle = new BundleLocator(bundleOptions);
    const addresses = new Map<string, string>();
    const hosts = new HostService({
      store,
      vault,
      events,
      localAgent,
      log,
      backoff: { initialMs: 100, maxMs: 1000 },
      bundledAgentVersion: () => bundle.bundledVersion(),
      instanceAddress: ({ instanceId }) => {
        const address = addresses.get(instanceId);
        return address ? Promise.resolve(address) : Promise.reject(new Error(`no instance ${instanceId}`));
      },
    });
    const deploy = new DeployService({ store, hosts, events, log, bundle, options });
    const dispatcher = new Dispatcher(
      createHandlers({
        store,
        vault,
        hosts,
        deploy,
        events,
        app: { name: 'Slotdeck', version: 'test', mode: 'browser', dataDir: dir },
      }),
      log,
    );
    const panel = new DeployTestPanel(dir, store, hosts, deploy, dispatcher, events, bundleOptions, addresses);
    // The progress events as the renderer receives them.
    events.subscribe((channel, payload) => {
      if (channel === 'deploy:progress') panel.progress.push((payload as { job: DeployJob }).job);
    });
    return panel;
  }

  async call<C extends InvokeChannel>(channel: C, input: IpcInput<C>): Promise<IpcResult<IpcOutput<C>>> {
    return (await this.dispatcher.dispatch(channel, input)) as IpcResult<IpcOutput<C>>;
  }

  async ok<C extends InvokeChannel>(channel: C, input: IpcInput<C>): Promise<IpcOutput<C>> {
    const result = await this.call(channel, input);
    if (!result.ok) throw new Error(`${channel}: ${result.error.code} ${result.error.message}`);
    return result.data;
  }

  /** Adds the test host as an SSH host with its key pinned (as after the admin confirmed it). */
  async addHost(host: DeployTestHost, name = 'deploy test host'): Promise<string> {
    const created = await this.ok('hosts:create', {
      name,
      address: '127.0.0.1',
      port: host.sshd.port,
      user: host.user,
      auth: { method: 'key', privateKey: host.sshd.clientKey },
      agentPort: host.adminPort,
    });
    this.store.pinKey(created.id, { algorithm: 'ssh-ed25519', fingerprint: host.sshd.fingerprint });
    return created.id;
  }

  dispose(): void {
    this.deploy.dispose();
    this.hosts.dispose();
    this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
