import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import type { DeployJob } from '../../../src/shared/ipc/contract-cloud';
import { DeployTestHost, DeployTestPanel, derivedTarball, packAgent } from '../helpers/deploy-host.js';
import { TerminalTestClient } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

/**
 * Deploying the agent for real: the panel's DeployService over OpenSSH to a separate Unix account on this machine
 * (no sudo: single-user mode), real PM2, dtach and npm. Only nodejs.org is a stand-in (a local HTTP server with a
 * tarball fixture).
 */
const V1 = '0.97.1';
const V2 = '0.97.2';
const BROKEN = '0.97.3';
const FUTURE = '0.97.4';

let host: DeployTestHost;
let panel: DeployTestPanel;
let hostId = '';
const tarballs: Record<string, string> = {};
const hostEnv: Record<string, string> = {};
let nodeSite: Server;
let nodeSiteChecksumOk = false;

async function deploy(
  action: 'deploy' | 'upgrade' | 'rollback' | 'uninstall',
  tarball?: string,
  deleteData = false,
): Promise<DeployJob> {
  if (tarball) panel.bundleOptions.tarball = tarball;
  return panel.ok('deploy:run', { hostId, action, deleteData });
}

const step = (job: DeployJob, id: string) => job.steps.find((s) => s.id === id);
const explain = (job: DeployJob): string =>
  `${job.state}: ${job.message}\n${job.steps.map((s) => `${s.id} ${s.state} ${s.detail ?? ''}\n${s.state === 'failed' ? (s.output ?? '') : ''}`).join('\n')}`;

async function slotNamed(name: string): Promise<Slot> {
  const { slots } = await panel.ok('slots:list', { hostId });
  const slot = slots.find((s) => s.name === name);
  if (!slot) throw new Error(`no slot ${name}`);
  return slot;
}

async function openConsole(slotId: string): Promise<TerminalTestClient> {
  const { url } = await panel.ok('terminal:open', { hostId, slotId, mode: 'writable' });
  return TerminalTestClient.open(url);
}

/** A stand-in for nodejs.org: index.json, one Node 20 release (a script running this machine's node) and its sums. */
async function startNodeSite(): Promise<string> {
  const site = join(host.work, 'nodejs-site');
  const name = `node-v20.99.7-linux-${process.arch}`;
  mkdirSync(join(site, name, 'bin'), { recursive: true });
  writeFileSync(join(site, name, 'bin/node'), `#!/bin/sh\nexec ${process.execPath} "$@"\n`);
  const npmCli = '/usr/lib/node_modules/npm/bin/npm-cli.js';
  writeFileSync(join(site, name, 'bin/npm'), `#!/bin/sh\nexec ${process.execPath} ${npmCli} "$@"\n`);
  chmodSync(join(site, name, 'bin/node'), 0o755);
  chmodSync(join(site, name, 'bin/npm'), 0o755);
  const { execFileSync } = await import('node:child_process');
  execFileSync('tar', ['-czf', join(site, `${name}.tar.gz`), '-C', site, name]);
  const tarball = readFileSync(join(site, `${name}.tar.gz`));
  const sha = createHash('sha256').update(tarball).digest('hex');
  nodeSite = createServer((request, response) => {
    const files: Record<string, Buffer> = {
      '/index.json': Buffer.from(
        JSON.stringify([{ version: 'v22.1.0' }, { version: 'v20.99.7' }, { version: 'v20.9.0' }]),
      ),
      [`/v20.99.7/${name}.tar.gz`]: tarball,
      '/v20.99.7/SHASUMS256.txt': Buffer.from(
        `${nodeSiteChecksumOk ? sha : createHash('sha256').update('tampered').digest('hex')}  ${name}.tar.gz\n`,
      ),
    };
    const body = files[request.url ?? ''];
    response.writeHead(body ? 200 : 404).end(body ?? 'not found');
  });
  await new Promise<void>((resolve) => nodeSite.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(nodeSite.address() as { port: number }).port}`;
}

beforeAll(async () => {
  host = await DeployTestHost.create();
  const out = join(host.work, 'tarballs');
  [tarballs[V1], tarballs[V2]] = await Promise.all([packAgent(out, V1), packAgent(out, V2)]);
  tarballs[BROKEN] = derivedTarball(tarballs[V1], out, BROKEN, (folder) => {
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
  tarballs[FUTURE] = derivedTarball(tarballs[V1], out, FUTURE, (folder) => {
    const health = join(folder, 'dist/contract/health.js');
    const code = readFileSync(health, 'utf8');
    expect(code).toMatch(/AGENT_CONTRACT_VERSION = \d+;/);
    writeFileSync(health, code.replace(/AGENT_CONTRACT_VERSION = \d+;/, 'AGENT_CONTRACT_VERSION = 99;'));
  });
  Object.assign(hostEnv, host.npmEnv);
  const nodeDistBaseUrl = await startNodeSite();
  panel = await DeployTestPanel.create(tarballs[V1], { hostEnv, nodeDistBaseUrl, activateTimeoutS: 45 });
  hostId = await panel.addHost(host);
}, 600_000);

afterAll(async () => {
  panel?.dispose();
  nodeSite?.close();
  await host?.destroy();
});

describe('deploying the agent over SSH to a host that has none (single-user: the login has no sudo)', () => {
  let slot: Slot;
  let shellPid = 0;

  it('cancelling while npm installs the dependencies stops npm and tar on the host, and the job says cancelled', async () => {
    const running = deploy('deploy');
    // `npm ci` itself (the test's npm cache path also has "npm" in it: other commands name it in their arguments).
    await until(
      'npm installing the dependencies on the host',
      () => Promise.resolve(host.commandLines()),
      (lines) => lines.some((line) => /(^|[\s/])npm(-cli\.js)? ci\b/.test(line)),
      { timeoutMs: 240_000, everyMs: 100 },
    );
    await panel.ok('deploy:cancel', { hostId });
    const job = await running;
    expect(job.state, explain(job)).toBe('cancelled');
    expect(step(job, 'unpack')).toMatchObject({ state: 'cancelled' });
    expect(job.message).toMatch(/Cancelled during "Unpack and install dependencies"/);
    // The job ended only once the host command had: nothing of it is left running.
    expect(host.commandLines().filter((line) => /(^|[\s/])(npm(-cli\.js)?|tar) |host\.sh/.test(line))).toEqual([]);
    expect(existsSync(join(host.root, 'current'))).toBe(false);
  }, 600_000);

  // Runs after the cancelled deploy above: the same deploy again (what Retry does) succeeds.
  it('deploys from nothing: every step shown, the agent runs as the login user, and the panel connects', async () => {
    // The idle minutes chosen when the host was launched wait for the agent (aws/pending-idle.ts).
    panel.store.setPreference(`pendingIdle:${hostId}`, 45);
    const job = await deploy('deploy');
    expect(job.state, explain(job)).toBe('succeeded');
    expect(job).toMatchObject({ action: 'deploy', toVersion: V1, error: null });
    expect(step(job, 'mode')?.detail).toMatch(/single-user/i);
    expect(step(job, 'node')).toMatchObject({ state: 'skipped' });
    expect(step(job, 'setup-host')).toMatchObject({ state: 'skipped' });
    expect(step(job, 'upload')?.progress?.done).toBe(step(job, 'upload')?.progress?.total);
    for (const id of ['connect', 'detect', 'upload', 'unpack', 'activate', 'reconnect'])
      expect(step(job, id)?.state, id).toBe('done');
    // The host's release command reported its own steps under "Start the agent".
    expect(job.steps.some((s) => s.id.startsWith('activate.'))).toBe(true);
    // The step list was followed live, and the store keeps the job for after a restart.
    expect(panel.progress.some((p) => p.id === job.id && p.state === 'running')).toBe(true);
    expect((await panel.ok('deploy:status', { hostId })).lastJob).toMatchObject({ id: job.id, state: 'succeeded' });

    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status).toMatchObject({ state: 'connected', agent: { version: V1, update: 'current' } });
    expect(listed.agentCommand).toBe(`${host.root}/bin/slotdeck-agent`);
    expect(readlinkSync(join(host.root, 'current'))).toMatch(new RegExp(`${V1}$`));

    const status = await panel.ok('deploy:status', { hostId });
    expect(status.host).toMatchObject({ current: V1, mode: 'single-user', agent: { running: true } });
    expect(status.bundled.version).toBe(V1);

    // The launch's idle policy is on now, applied once; single-user hosts are told what the stop command needs.
    const idle = await panel.ok('idle:status', { hostId });
    expect(idle.policy).toEqual({ enabled: true, minutes: 45 });
    expect(step(job, 'reconnect')?.detail).toMatch(/Idle auto-stop on: 45 minutes.*passwordless sudo/);
    expect(panel.store.preference(`pendingIdle:${hostId}`) ?? null).toBeNull();
    await panel.ok('idle:set', { hostId, policy: { enabled: false, minutes: 45 } });
  }, 600_000);

  it('reaches a host linked to an instance at the address the instance has now (stand-in for EC2)', async () => {
    const instanceId = 'i-0123456789abcdef0';
    panel.instanceAddresses.set(instanceId, '127.0.0.1');
    panel.store.insertAwsAccount({
      id: 'acct-test',
      name: 'test account',
      source: 'profile',
      profile: 'default',
      accessKeyHint: null,
      regions: ['eu-west-1'],
    });
    // The address kept from before the instance was stopped and started: nothing listens there.
    panel.hosts.linkInstance(hostId, { accountId: 'acct-test', region: 'eu-west-1', instanceId }, '127.0.0.3');
    try {
      const job = await deploy('upgrade');
      expect(job.state, explain(job)).toBe('succeeded');
      expect(step(job, 'connect')?.detail).toMatch(/127\.0\.0\.1/);
      expect(panel.hosts.row(hostId).address).toBe('127.0.0.1');
    } finally {
      panel.hosts.linkInstance(hostId, null, '127.0.0.1');
    }
  }, 300_000);

  it('never puts the admin token or the SSH key into the job, its events or the settings database', () => {
    const token = host.adminToken();
    expect(token.length).toBeGreaterThan(20);
    const keyBody = host.sshd.clientKey.split('\n')[1]!;
    const places = [
      JSON.stringify(panel.progress),
      JSON.stringify(panel.store.deployJob(hostId)),
      readFileSync(join(panel.dir, 'slotdeck.db')).toString('latin1'),
    ];
    for (const place of places) {
      expect(place).not.toContain(token);
      expect(place).not.toContain(keyBody);
    }
  });

  it('a console opens on a new slot of the deployed agent', async () => {
    slot = await panel.ok('slots:create', { hostId, slot: { name: 'keeper' } });
    slot = await until(
      'the slot running its shell',
      () => slotNamed('keeper'),
      (now) => now.state === 'running' && Boolean(now.programPid),
      { timeoutMs: 30_000 },
    );
    shellPid = slot.programPid!;
    const console = await openConsole(slot.id);
    await console.waitForPrompt(20_000);
    console.type('echo before-upgrade-$((6*7))\r');
    await console.waitFor('before-upgrade-42', 20_000);
    console.close();
  }, 60_000);

  it('upgrades to a newer build: the same shell keeps running with its scrollback, the version changes', async () => {
    const job = await deploy('upgrade', tarballs[V2]);
    expect(job.state, explain(job)).toBe('succeeded');
    expect(job).toMatchObject({ fromVersion: V1, toVersion: V2 });
    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status).toMatchObject({ state: 'connected', agent: { version: V2 } });
    const after = await slotNamed('keeper');
    expect(after.programPid).toBe(shellPid);
    const console = await openConsole(slot.id);
    await console.waitFor('before-upgrade-42', 20_000);
    console.close();
  }, 600_000);

  it('an upgrade whose agent cannot start is rolled back by the host, and the job says why', async () => {
    const job = await deploy('upgrade', tarballs[BROKEN]);
    expect(job.state, explain(job)).toBe('rolled-back');
    expect(job.message).toMatch(/broken on purpose/);
    expect(step(job, 'activate')).toMatchObject({ state: 'failed' });
    expect(step(job, 'reconnect')).toMatchObject({ state: 'done' });
    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status).toMatchObject({ state: 'connected', agent: { version: V2 } });
    expect((await slotNamed('keeper')).programPid).toBe(shellPid);
  }, 600_000);

  it('refuses an agent whose contract this panel does not speak (AGENT_INCOMPATIBLE), instead of half-working', async () => {
    const job = await deploy('upgrade', tarballs[FUTURE]);
    expect(job.state, explain(job)).toBe('failed');
    expect(step(job, 'activate')?.state).toBe('done');
    expect(job.error).toMatchObject({ code: 'AGENT_INCOMPATIBLE' });
    expect(job.error?.message).toMatch(/Update Slotdeck/);
    const connect = await panel.call('hosts:connect', { id: hostId });
    expect(connect.ok).toBe(false);
    if (!connect.ok) expect(connect.error.code).toBe('AGENT_INCOMPATIBLE');
  }, 600_000);

  it('Rollback goes back one release on purpose, and the slot is still the same shell', async () => {
    const job = await deploy('rollback');
    expect(job.state, explain(job)).toBe('succeeded');
    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status.state).toBe('connected');
    expect(listed.status.agent?.version).not.toBe(FUTURE);
    expect([V1, V2]).toContain(listed.status.agent?.version);
    expect((await slotNamed('keeper')).programPid).toBe(shellPid);
    const console = await openConsole(slot.id);
    await console.waitFor('before-upgrade-42', 20_000);
    console.close();
  }, 600_000);

  it('uninstall stops the agent and its slots, removes its files and disconnects', async () => {
    const job = await deploy('uninstall');
    expect(job.state, explain(job)).toBe('succeeded');
    expect(existsSync(host.root)).toBe(false);
    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status.state).toBe('disconnected');
    await until(
      'no process of the host account left',
      () => host.processes(),
      (pids) => pids.length === 0,
    );
    // The agent's data stays unless the admin asked for it to go.
    expect(existsSync(join(host.dataDir, 'agent.db'))).toBe(true);
    const again = await deploy('upgrade', tarballs[V1]);
    expect(again.state).toBe('failed');
    expect(again.error?.code).toBe('DEPLOY_NO_AGENT');
  }, 300_000);
});

describe('Node missing on the host (stand-in for nodejs.org)', () => {
  it('refuses a Node download whose SHA-256 does not match (DEPLOY_NODE_CHECKSUM) and installs nothing', async () => {
    hostEnv.PATH = host.pathWithoutNode();
    nodeSiteChecksumOk = false;
    const job = await deploy('deploy', tarballs[V1]);
    expect(job.state, explain(job)).toBe('failed');
    expect(job.error?.code).toBe('DEPLOY_NODE_CHECKSUM');
    expect(step(job, 'node')).toMatchObject({ state: 'failed' });
    expect(step(job, 'node')?.output).toMatch(/checksum mismatch/);
    expect(existsSync(join(host.root, 'node/current'))).toBe(false);
  }, 300_000);

  it('installs Node from its official tarball when the host has none, then deploys on it', async () => {
    nodeSiteChecksumOk = true;
    const job = await deploy('deploy', tarballs[V1]);
    expect(job.state, explain(job)).toBe('succeeded');
    expect(step(job, 'node')).toMatchObject({ state: 'done' });
    expect(step(job, 'node')?.detail).toMatch(/checksum verified/);
    expect(readlinkSync(join(host.root, 'node/current'))).toBe('v20.99.7');
    expect(readFileSync(join(host.root, 'bin/slotdeck-agent'), 'utf8')).toContain(join(host.root, 'node/current'));
    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status).toMatchObject({ state: 'connected', agent: { version: V1 } });
    const removed = await deploy('uninstall', undefined, true);
    expect(removed.state, explain(removed)).toBe('succeeded');
    expect(existsSync(host.dataDir)).toBe(false);
  }, 600_000);
});
