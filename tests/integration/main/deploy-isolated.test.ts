import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import type { DeployJob } from '../../../src/shared/ipc/contract-cloud';
import { DeployTestHost, DeployTestPanel, derivedTarball, freePort, packAgent } from '../helpers/deploy-host.js';
import { until } from '../helpers/until.js';

/**
 * Deploying in isolated mode for real: the login user has passwordless sudo (as ec2-user has on EC2), so the agent
 * runs as an account of its own (a unique name here) and each slot as another.
 */
const V1 = '0.96.1';
const V2 = '0.96.2';
const agentAccount = `sda${Math.random().toString(36).slice(2, 8)}`;

let host: DeployTestHost;
let panel: DeployTestPanel;
let hostId = '';
const tarballs: Record<string, string> = {};
const sudoers = () => `/etc/sudoers.d/zz-slotdeck-test-${host.user}`;

const explain = (job: DeployJob): string =>
  `${job.state}: ${job.message}\n${job.steps.map((s) => `${s.id} ${s.state} ${s.detail ?? ''}\n${s.state === 'failed' ? (s.output ?? '') : ''}`).join('\n')}`;

function removeAccount(name: string): void {
  execFileSync(
    'sh',
    [
      '-c',
      `for i in $(seq 50); do pkill -KILL -u "$0"; userdel --remove "$0" 2>/dev/null && break; sleep 0.1; done; groupdel "$0" 2>/dev/null; true`,
      name,
    ],
    { stdio: 'ignore' },
  );
}

beforeAll(async () => {
  host = await DeployTestHost.create();
  writeFileSync(sudoers(), `${host.user} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
  // The agent's account exists before the deploy only to carry its config (free ports); ensure-account keeps it.
  execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', agentAccount]);
  const home = execFileSync('getent', ['passwd', agentAccount], { encoding: 'utf8' }).split(':')[5]!;
  const dataDir = join(home, '.local/share/slotdeck-agent');
  mkdirSync(dataDir, { recursive: true });
  host.adminPort = await freePort();
  writeFileSync(
    join(dataDir, 'agent.json'),
    JSON.stringify({ admin: { port: host.adminPort }, gateway: { host: '127.0.0.1', port: await freePort() } }),
  );
  execFileSync('chown', ['-R', `${agentAccount}:`, join(home, '.local')]);
  // npm runs as the agent account here: it shares the test's npm cache copy.
  execFileSync('chmod', ['-R', 'a+rwX', join(host.work, 'npm')]);
  const out = join(host.work, 'tarballs');
  tarballs[V1] = await packAgent(out, V1);
  tarballs[V2] = derivedTarball(tarballs[V1], out, V2, () => undefined);
  chmodSync(out, 0o755);
  panel = await DeployTestPanel.create(tarballs[V1], { hostEnv: host.npmEnv, agentAccount, activateTimeoutS: 45 });
  hostId = await panel.addHost(host, 'isolated test host');
}, 600_000);

afterAll(async () => {
  panel?.dispose();
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , , , comment] = line.split(':');
    if (name && comment === `slotdeck slot account of ${agentAccount}`) removeAccount(name);
  }
  removeAccount(agentAccount);
  for (const path of [
    sudoers(),
    `/etc/sudoers.d/slotdeck-${agentAccount}`,
    `/etc/slotdeck/agents/${agentAccount}.conf`,
    `/var/lib/${agentAccount}`,
    `/home/${agentAccount}-slots`,
    `/run/${agentAccount}-slots`,
  ])
    rmSync(path, { recursive: true, force: true });
  await host?.destroy();
}, 120_000);

describe('deploying in isolated mode (the login has passwordless sudo)', () => {
  let slot: Slot;

  it('runs the agent as its own account and each slot as another, then upgrades keeping the slot', async () => {
    const job = await panel.ok('deploy:run', { hostId, action: 'deploy', deleteData: false });
    expect(job.state, explain(job)).toBe('succeeded');
    expect(job.steps.find((s) => s.id === 'mode')?.detail).toMatch(
      new RegExp(`Isolated: the agent runs as ${agentAccount}`),
    );
    expect(job.steps.find((s) => s.id === 'setup-host')?.state).toBe('done');
    const listed = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(listed.status).toMatchObject({ state: 'connected', agent: { version: V1 } });
    expect(listed.agentCommand).toMatch(new RegExp(`^sudo -n -u ${agentAccount} /`));
    expect((await panel.ok('deploy:status', { hostId })).host).toMatchObject({ mode: 'isolated', current: V1 });

    await panel.ok('slots:create', { hostId, slot: { name: 'iso' } });
    slot = await until(
      'the isolated slot running',
      async () => (await panel.ok('slots:list', { hostId })).slots.find((s) => s.name === 'iso'),
      (s) => s?.state === 'running' && Boolean(s.programPid),
      { timeoutMs: 60_000 },
    ).then((s) => s!);
    const owner = execFileSync('ps', ['-o', 'user=', '-p', String(slot.programPid)], { encoding: 'utf8' }).trim();
    expect(owner).not.toBe(agentAccount);
    expect(owner).not.toBe(host.user);

    panel.bundleOptions.tarball = tarballs[V2];
    const upgrade = await panel.ok('deploy:run', { hostId, action: 'upgrade', deleteData: false });
    expect(upgrade.state, explain(upgrade)).toBe('succeeded');
    const after = (await panel.ok('slots:list', { hostId })).slots.find((s) => s.id === slot.id);
    expect(after?.programPid).toBe(slot.programPid);
    const again = (await panel.ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(again.status.agent?.version).toBe(V2);

    // The upgrade refreshed the root-owned slot helper from a root-owned extraction (never from the agent's files).
    expect(upgrade.steps.find((s) => s.id === 'setup-host')?.state).toBe('done');
    expect(existsSync(`/etc/slotdeck/agents/${agentAccount}.conf`)).toBe(true);

    const removed = await panel.ok('deploy:run', { hostId, action: 'uninstall', deleteData: true });
    expect(removed.state, explain(removed)).toBe('succeeded');
    // What only root could remove went too: the sudoers line and the helper config of this agent account.
    expect(existsSync(`/etc/sudoers.d/slotdeck-${agentAccount}`)).toBe(false);
    expect(existsSync(`/etc/slotdeck/agents/${agentAccount}.conf`)).toBe(false);
    // No root-owned extraction left behind.
    expect(readdirSync('/root').filter((name) => name.startsWith('slotdeck-setup.'))).toEqual([]);
  }, 900_000);
});
