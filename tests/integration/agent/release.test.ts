import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { Health } from '../../../remote-agent/src/contract/health.js';
import { HostFacts, ReleaseLine, ReleaseStatus } from '../../../remote-agent/src/contract/release.js';
import { AGENT_DIR } from '../helpers/agent.js';
import { killAll, processesOf } from '../helpers/processes.js';
import { sqlitePrebuildStandIn } from '../helpers/prebuilds.js';
import { until } from '../helpers/until.js';

/**
 * The host's side of a deploy for real, as root on this machine: host.sh unpacks packed builds into a temp
 * SLOTDECK_ROOT (the temp HOME's data dir is the agent's default), `slotdeck-agent release ...` runs the agent under
 * its own PM2 with real dtach slots. Node's download site is a local stand-in.
 */
const work = mkdtempSync(join(tmpdir(), 'sd-release-'));
const home = join(work, 'home');
const root = join(home, '.slotdeck-agent');
const dataDir = join(home, '.local/share/slotdeck-agent');
const hostSh = join(AGENT_DIR, 'resources/deploy/host.sh');
const wrapper = join(root, 'bin/slotdeck-agent');
const SECRET = `sk-ant-release-test-${createHash('sha256').update(work).digest('hex').slice(0, 16)}`;
const V1 = '0.91.1';
const V2 = '0.91.2';
const BROKEN = '0.91.3';
// V2's build under later versions: enough activations for pruning to remove a release a slot was started under.
const V4 = '0.91.4';
const V5 = '0.91.5';

let env: NodeJS.ProcessEnv;
const tarballs: Record<string, string> = {};

function pack(version: string): string {
  execFileSync(
    process.execPath,
    [join(AGENT_DIR, 'scripts/pack.mjs'), '--out', join(work, 'tarballs'), '--version', version],
    {
      stdio: 'ignore',
    },
  );
  return join(work, 'tarballs', `slotdeck-agent-${version}.tgz`);
}

/** The same build as version `version` (no second pack: only the manifest's version differs). */
function renumber(source: string, version: string, change?: (folder: string) => void): string {
  const scratch = join(work, `build-${version}`);
  mkdirSync(scratch);
  execFileSync('tar', ['-xzf', source, '-C', scratch]);
  const manifest = join(scratch, 'slotdeck-agent/package.json');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/"version": "[^"]+"/, `"version": "${version}"`));
  change?.(join(scratch, 'slotdeck-agent'));
  const target = join(work, 'tarballs', `slotdeck-agent-${version}${change ? '-broken' : ''}.tgz`);
  execFileSync('tar', ['-czf', target, '-C', scratch, 'slotdeck-agent']);
  return target;
}

/** V2's build as version `version`, whose `--version` answers but whose agent throws as it starts. */
function breakTarball(source: string, version: string): string {
  return renumber(source, version, (folder) => {
    const server = join(folder, 'dist/server.js');
    const code = readFileSync(server, 'utf8');
    expect(code).toContain('export async function runAgent(');
    writeFileSync(
      server,
      code.replace(
        'export async function runAgent(',
        "export async function runAgent() { throw new Error('this build is broken on purpose'); }\nasync function unusedRunAgent(",
      ),
    );
  });
}

function run(
  command: string,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(command, args, {
      env: { ...env, ...extraEnv },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    return { code: 0, stdout, stderr: '' };
  } catch (error) {
    const failed = error as { status: number | null; stdout: string; stderr: string };
    return { code: failed.status ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const hostsh = (...args: string[]): ReturnType<typeof run> => run('sh', [hostSh, ...args]);

/** host.sh without blocking this process: the stand-in HTTP server here must answer it. */
function hostshAsync(...args: string[]): Promise<ReturnType<typeof run>> {
  const child = spawn('sh', [hostSh, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** `release <args>`: its ReleaseLines (each must parse) and exit code. */
function release(...args: string[]): {
  code: number;
  lines: ReleaseLine[];
  result: Extract<ReleaseLine, { kind: 'result' }>;
} {
  const { code, stdout, stderr } = run(wrapper, ['release', ...args]);
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => ReleaseLine.parse(JSON.parse(line)));
  const result = lines.at(-1);
  if (result?.kind !== 'result')
    throw new Error(`release ${args.join(' ')} ended without a result (${code}): ${stdout}${stderr}`);
  return { code, lines, result };
}

function unpack(tarball: string, version: string): { version: string; dependencies: string; path: string } {
  const { code, stdout, stderr } = hostsh('unpack', tarball, version);
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout) as { version: string; dependencies: string; path: string };
}

async function health(): Promise<Health & { pid: number }> {
  const state = JSON.parse(readFileSync(join(dataDir, 'agent-state.json'), 'utf8')) as {
    adminUrl: string;
    pid: number;
  };
  const response = await fetch(`${state.adminUrl}/health`);
  return { ...Health.parse(await response.json()), pid: state.pid };
}

async function admin<T>(method: string, path: string, body?: unknown): Promise<T> {
  const state = JSON.parse(readFileSync(join(dataDir, 'agent-state.json'), 'utf8')) as { adminUrl: string };
  const token = readFileSync(join(dataDir, 'secrets/admin-token'), 'utf8').trim();
  const response = await fetch(`${state.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  expect(response.status, `${method} ${path}`).toBeLessThan(300);
  return (await response.json()) as T;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(() => {
  mkdirSync(home, { recursive: true });
  const inherited = { ...process.env };
  for (const name of ['XDG_DATA_HOME', 'SLOTDECK_AGENT_DATA_DIR', 'SLOTDECK_AGENT_CONFIG', 'PM2_HOME'])
    delete inherited[name];
  env = {
    ...inherited,
    HOME: home,
    SLOTDECK_ROOT: root,
    SLOTDECK_AGENT_ADMIN_PORT: '0',
    SLOTDECK_AGENT_GATEWAY_HOST: '127.0.0.1',
    SLOTDECK_AGENT_GATEWAY_PORT: '0',
    SLOTDECK_AGENT_RECONCILE_INTERVAL_MS: '500',
    // What the panel passes to npm on a host: here the local binary stand-in and this machine's npm cache.
    npm_config_better_sqlite3_local_prebuilds: sqlitePrebuildStandIn(join(work, 'prebuilds')),
    npm_config_cache: join(homedir(), '.npm'),
    npm_config_prefer_offline: 'true',
    // Must not reach the agent: a secret and the admin's SSH agent.
    ANTHROPIC_API_KEY: SECRET,
    SSH_AUTH_SOCK: join(work, 'ssh-agent.sock'),
  };
  tarballs[V1] = pack(V1);
  tarballs[V2] = pack(V2);
  tarballs[BROKEN] = breakTarball(tarballs[V2], BROKEN);
  tarballs[V4] = renumber(tarballs[V2], V4);
  tarballs[V5] = renumber(tarballs[V2], V5);
}, 600_000);

afterAll(() => {
  // Whatever a failed test left running under the temp home (PM2 daemon, agent, slots) ends here.
  killAll(processesOf(dataDir));
  killAll(processesOf(work));
  rmSync(work, { recursive: true, force: true });
});

describe('deploying the agent on a host (host.sh and slotdeck-agent release, real PM2 and dtach)', () => {
  let slot: Slot;

  it('detect describes the host as HostFacts', () => {
    const { code, stdout } = hostsh('detect');
    expect(code).toBe(0);
    const facts = HostFacts.parse(JSON.parse(stdout));
    expect(facts.user).toBe('root');
    expect(facts.home).toBe(home);
    expect(facts.arch).toBe(process.arch);
    expect(facts.node?.version).toBe(process.versions.node);
    expect(facts.dtach).toBe(true);
    expect(facts.sudo).toBe(true);
    expect(facts.agent).toBeNull();
  });

  it('setup-host runs from a bare extraction of the tarball (no node_modules) with the system node, as root would run it', () => {
    const bare = join(work, 'bare');
    mkdirSync(bare);
    execFileSync('tar', ['-xzf', tarballs[V1]!, '-C', bare]);
    expect(existsSync(join(bare, 'slotdeck-agent/node_modules'))).toBe(false);
    // A name it refuses before touching the host: what is proved is that it loads without any package.
    const refused = run(process.execPath, [
      join(bare, 'slotdeck-agent/dist/setup-host-cli.js'),
      '--user',
      'Not A Name',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is not a usable account name');
    expect(run(process.execPath, [join(bare, 'slotdeck-agent/dist/setup-host-cli.js'), '--what']).code).toBe(2);
  });

  it('deploys a first release: unpacked with its dependencies, running under PM2 and answering /health', async () => {
    const unpacked = unpack(tarballs[V1]!, V1);
    expect(unpacked).toMatchObject({ version: V1, dependencies: 'installed', path: join(root, 'releases', V1) });

    const { code, lines, result } = release('activate', V1);
    expect(result, JSON.stringify(lines)).toMatchObject({ outcome: 'activated', version: V1 });
    expect(code).toBe(0);
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', V1));
    const agent = await health();
    expect(agent).toMatchObject({ status: 'ok', version: V1 });

    expect(pm2List().find((p) => p.name === 'slotdeck-agent')).toMatchObject({
      pid: agent.pid,
      pm2_env: { status: 'online' },
    });

    // The agent under PM2 got a clean environment: no secret, nothing of the deploying SSH session.
    const environ = readFileSync(`/proc/${agent.pid}/environ`, 'utf8');
    expect(environ).not.toContain(SECRET);
    expect(environ).not.toContain('SSH_AUTH_SOCK');
    expect(readFileSync(join(root, 'logs/release.log'), 'utf8')).not.toContain(SECRET);

    const facts = HostFacts.parse(JSON.parse(hostsh('detect').stdout));
    expect(facts.agent).toEqual({ root, current: V1, account: 'root' });
    // The release remembers the node it was installed for: the wrapper runs it on that one even after install-node.
    const recorded = readFileSync(join(root, 'releases', V1, '.node'), 'utf8').trim();
    expect(run(recorded, ['--version']).stdout.trim()).toBe(process.version);
  }, 240_000);

  it('upgrades to a newer build reusing the dependencies; the slot keeps its shell', async () => {
    slot = await admin<Slot>('POST', '/api/v1/slots', { name: 'kept' });
    slot = await until(
      'the slot runs its shell',
      () => admin<Slot>('GET', `/api/v1/slots/${slot.id}`),
      (s) => s.state === 'running' && s.programPid !== null,
    );

    const unpacked = unpack(tarballs[V2]!, V2);
    expect(unpacked.dependencies).toBe('reused');
    // Hard links: the same files as the first release's, not a second install.
    const file = 'node_modules/better-sqlite3/package.json';
    expect(statSync(join(root, 'releases', V2, file)).ino).toBe(statSync(join(root, 'releases', V1, file)).ino);

    const before = await health();
    const { code, result, lines } = release('activate', V2);
    expect(result, JSON.stringify(lines)).toMatchObject({ outcome: 'activated', version: V2 });
    expect(code).toBe(0);
    const after = await health();
    expect(after.version).toBe(V2);
    expect(after.pid).not.toBe(before.pid);
    expect(alive(before.pid)).toBe(false);
    const same = await admin<Slot>('GET', `/api/v1/slots/${slot.id}`);
    expect(same).toMatchObject({ state: 'running', programPid: slot.programPid });
    // The first activation had no database to copy yet; this one did.
    expect(readdirBackups()).toHaveLength(1);
  }, 240_000);

  it('rolls back by itself when the new build cannot start: the old version answers, same slot, same database', async () => {
    expect(unpack(tarballs[BROKEN]!, BROKEN).dependencies).toBe('reused');
    const { code, result, lines } = release('activate', BROKEN, '--timeout-s', '20');
    expect(result, JSON.stringify(lines)).toMatchObject({ outcome: 'rolled-back', version: V2 });
    expect(result.message).toContain('this build is broken on purpose');
    expect(code).toBe(1);
    // The broken build never migrated: the database stays as the old agent left it (nothing written since is lost).
    expect(lines).toContainEqual(expect.objectContaining({ step: 'restore', state: 'skipped' }));
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', V2));
    expect(await health()).toMatchObject({ status: 'ok', version: V2 });
    const slots = await admin<{ slots: Slot[] }>('GET', '/api/v1/slots');
    expect(slots.slots.map((s) => [s.name, s.programPid])).toEqual([['kept', slot.programPid]]);
    const status = ReleaseStatus.parse(JSON.parse(run(wrapper, ['release', 'status']).stdout));
    expect(status).toMatchObject({
      current: V2,
      previous: V1,
      mode: 'single-user',
      agent: { running: true, version: V2 },
    });
    expect(status.releases.map((r) => r.version).sort()).toEqual([V1, V2, BROKEN]);
  }, 240_000);

  it('a slot started under a release that was pruned since still restarts (PM2 restarts its holder)', async () => {
    let moved = await admin<Slot>('POST', '/api/v1/slots', { name: 'moved' });
    moved = await until(
      'the slot runs its shell',
      () => admin<Slot>('GET', `/api/v1/slots/${moved.id}`),
      (s) => s.state === 'running' && s.programPid !== null,
    );
    for (const version of [V4, V5]) {
      expect(unpack(tarballs[version]!, version).dependencies).toBe('reused');
      const { result, lines } = release('activate', version);
      expect(result, JSON.stringify(lines)).toMatchObject({ outcome: 'activated', version });
    }
    // V2 (where `moved` was started) is gone; V1 stays while the PM2 daemon started from it runs.
    expect(existsSync(join(root, 'releases', V2))).toBe(false);
    expect(existsSync(join(root, 'releases', BROKEN))).toBe(false);
    expect(existsSync(join(root, 'releases', V1))).toBe(true);

    const holder = pm2List().find((p) => p.name === `slot-${moved.id}`);
    expect(holder?.pid).toBeGreaterThan(0);
    process.kill(holder!.pid, 'SIGKILL');
    const restarted = await until(
      'the slot runs a new shell',
      () => admin<Slot>('GET', `/api/v1/slots/${moved.id}`),
      (s) => s.state === 'running' && s.programPid !== null && s.programPid !== moved.programPid,
      { timeoutMs: 30_000 },
    );
    expect(restarted.state).toBe('running');
  }, 240_000);

  it('Rollback goes back one release on purpose, past a pruned one, and then there is nothing left to go back to', async () => {
    const back = release('rollback');
    expect(back.result).toMatchObject({ outcome: 'rolled-back', version: V4 });
    // V2 was pruned: the next step back is V1, the activation before it that is still on disk.
    const { code, result } = release('rollback');
    expect(result).toMatchObject({ outcome: 'rolled-back', version: V1 });
    expect(code).toBe(0);
    expect(await health()).toMatchObject({ status: 'ok', version: V1 });
    expect(await admin<Slot>('GET', `/api/v1/slots/${slot.id}`)).toMatchObject({ programPid: slot.programPid });

    const again = release('rollback');
    expect(again.code).toBe(5);
    expect(again.result).toMatchObject({ outcome: 'failed', version: V1 });
    expect(again.result.message).toMatch(/No previous release/);
  }, 240_000);

  describe('Node from its official tarball (stand-in for nodejs.org)', () => {
    let server: Server;
    let baseUrl = '';
    beforeAll(async () => {
      // A "node" that is this machine's, behind a script: the tarball and its checksum are what is tested.
      const site = join(work, 'nodejs-site');
      const files = new Map<string, Buffer>();
      const tarball = (version: string): Buffer => {
        const folder = join(site, `node-v${version}-linux-${process.arch}`);
        mkdirSync(join(folder, 'bin'), { recursive: true });
        writeFileSync(join(folder, 'bin/node'), `#!/bin/sh\nexec ${process.execPath} "$@"\n`);
        chmodSync(join(folder, 'bin/node'), 0o755);
        execFileSync('tar', ['-czf', `${folder}.tar.gz`, '-C', site, `node-v${version}-linux-${process.arch}`]);
        return readFileSync(`${folder}.tar.gz`);
      };
      const good = tarball('20.99.1');
      const tampered = tarball('22.99.1');
      const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
      files.set(
        '/index.json',
        Buffer.from(JSON.stringify([{ version: 'v22.99.1' }, { version: 'v20.99.1' }, { version: 'v20.9.0' }])),
      );
      files.set(`/v20.99.1/node-v20.99.1-linux-${process.arch}.tar.gz`, good);
      files.set('/v20.99.1/SHASUMS256.txt', Buffer.from(`${sha(good)}  node-v20.99.1-linux-${process.arch}.tar.gz\n`));
      files.set(`/v22.99.1/node-v22.99.1-linux-${process.arch}.tar.gz`, tampered);
      files.set(
        '/v22.99.1/SHASUMS256.txt',
        Buffer.from(`${sha(Buffer.from('something else'))}  node-v22.99.1-linux-${process.arch}.tar.gz\n`),
      );
      server = createServer((request, response) => {
        const body = files.get(request.url ?? '');
        response.writeHead(body ? 200 : 404).end(body ?? 'not found');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(() => {
      server?.close();
    });

    it('installs the newest release of the major after checking its SHA-256, and the agent wrapper uses it', async () => {
      const { code, stdout, stderr } = await hostshAsync('install-node', baseUrl, '20', process.arch);
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout)).toEqual({ node: join(root, 'node/current/bin/node'), version: process.versions.node });
      expect(readlinkSync(join(root, 'node/current'))).toBe('v20.99.1');
      expect(readFileSync(wrapper, 'utf8')).toContain(join(root, 'node/current/bin/node'));
      expect(run(wrapper, ['--version']).stdout.trim()).toBe(V1);
    });

    it('refuses a tarball whose checksum does not match (exit 3) and installs nothing', async () => {
      const { code, stderr } = await hostshAsync('install-node', baseUrl, '22', process.arch);
      expect(code).toBe(3);
      expect(stderr).toContain('checksum mismatch');
      expect(existsSync(join(root, 'node/v22.99.1'))).toBe(false);
      expect(readlinkSync(join(root, 'node/current'))).toBe('v20.99.1');
    });
  });

  it('builds the bundled dtach source as a user without root into ROOT/bin, and refuses a wrong checksum', () => {
    // `nobody` stands for a login without sudo: the build lands in its ROOT/bin, which the wrapper puts first on PATH.
    const userHome = join(work, 'nobody-home');
    mkdirSync(userHome);
    chownSync(
      userHome,
      Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })),
      Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })),
    );
    const source = join(userHome, 'dtach.tgz');
    cpSync(join(AGENT_DIR, 'vendor/dtach-0.9.tar.gz'), source);
    chmodSync(source, 0o644);
    chmodSync(work, 0o755);
    const asNobody = (sha: string): ReturnType<typeof run> =>
      run('setpriv', [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        'env',
        '-i',
        `HOME=${userHome}`,
        `PATH=${process.env.PATH}`,
        'sh',
        hostSh,
        'build-dtach',
        source,
        sha,
      ]);
    const wrong = asNobody('0'.repeat(64));
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('checksum mismatch');
    expect(existsSync(join(userHome, '.slotdeck-agent/bin/dtach'))).toBe(false);

    const built = asNobody('32e9fd6923c553c443fab4ec9c1f95d83fa47b771e6e1dafb018c567291492f3');
    expect(built.code, built.stderr).toBe(0);
    const dtach = join(userHome, '.slotdeck-agent/bin/dtach');
    expect(JSON.parse(built.stdout)).toEqual({ dtach });
    const usage = run(dtach, ['--help']);
    expect(usage.stdout + usage.stderr).toContain('dtach - version 0.9');
    expect(lstatSync(dtach).mode & 0o111).not.toBe(0);
  }, 120_000);

  it('uninstall stops the agent, every slot and PM2, and removes the releases; the data stays', () => {
    const pm2Pid = Number(readFileSync(join(dataDir, 'pm2/pm2.pid'), 'utf8'));
    const agentPid = (JSON.parse(readFileSync(join(dataDir, 'agent-state.json'), 'utf8')) as { pid: number }).pid;
    const { code, result } = release('uninstall');
    expect(result).toMatchObject({ outcome: 'uninstalled', version: null });
    expect(code).toBe(0);
    expect(existsSync(root)).toBe(false);
    for (const pid of [pm2Pid, agentPid, slot.programPid!]) expect(alive(pid), `pid ${pid}`).toBe(false);
    expect(existsSync(join(dataDir, 'agent.db'))).toBe(true);
  }, 240_000);
});

/** The agent's PM2 process list (its own daemon). */
function pm2List(): Array<{ name: string; pid: number; pm2_env: { status: string } }> {
  return JSON.parse(
    run(process.execPath, [join(AGENT_DIR, 'node_modules/pm2/bin/pm2'), 'jlist'], {
      PM2_HOME: join(dataDir, 'pm2'),
    })
      .stdout.split('\n')
      .find((line) => line.startsWith('[')) ?? '[]',
  ) as Array<{ name: string; pid: number; pm2_env: { status: string } }>;
}

function readdirBackups(): string[] {
  return execFileSync('ls', [join(root, 'backups')], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}
