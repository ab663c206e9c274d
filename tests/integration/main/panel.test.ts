import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrap, type PanelCore } from '../../../src/main/bootstrap';
import { loadKeyring } from '../../../src/main/keyring';
import { consoleLogger } from '../../../src/main/log';
import type { InvokeChannel } from '../../../src/shared/ipc/channels';
import type { IpcInput, IpcOutput, IpcResult } from '../../../src/shared/ipc/contract';
import { AGENT_CLI, AgentProcess } from '../helpers/agent.js';
import { killAll, processesOf } from '../helpers/processes.js';
import { filesUnder, secretsInProcesses } from '../helpers/secrets.js';
import { TestSshd } from '../helpers/sshd.js';
import { TerminalTestClient } from '../helpers/terminal-client.js';

let core: PanelCore;
let dataDir: string;
let sshd: TestSshd;
let remote: AgentProcess;

async function call<C extends InvokeChannel>(channel: C, input: IpcInput<C>): Promise<IpcResult<IpcOutput<C>>> {
  return (await core.dispatcher.dispatch(channel, input)) as IpcResult<IpcOutput<C>>;
}

async function ok<C extends InvokeChannel>(channel: C, input: IpcInput<C>): Promise<IpcOutput<C>> {
  const result = await call(channel, input);
  if (!result.ok) throw new Error(`${channel}: ${result.error.code} ${result.error.message}`);
  return result.data;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sd-panel-'));
  [sshd, remote] = await Promise.all([TestSshd.start(), AgentProcess.start()]);
  core = await bootstrap({
    mode: 'browser',
    version: 'test',
    dataDir,
    agentDir: resolve(import.meta.dirname, '../../../remote-agent'),
    nodePath: process.execPath,
    log: consoleLogger(() => undefined),
    keyring: loadKeyring(),
    // Without a Secret Service on this machine, secrets go to the encrypted file under this key. The local agent's
    // gateway takes a free port, not 7421, so that a second run on this machine does not collide with this one.
    env: { ...process.env, SLOTDECK_MASTER_KEY: 'integration-test-master-key', SLOTDECK_AGENT_GATEWAY_PORT: '0' },
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  await core.ready;
});

afterAll(async () => {
  await core?.dispose();
  sshd?.stop();
  await remote?.destroy();
  killAll(processesOf(dataDir));
  // A slot's shell may still be writing its history as it ends: retry instead of failing on ENOTEMPTY.
  rmSync(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

describe('the panel core, through its IPC handlers', () => {
  it('starts "This computer" with a running slot whose console opens on the first run', async () => {
    const { hosts } = await ok('hosts:list', {});
    expect(hosts).toHaveLength(1);
    expect(hosts[0]).toMatchObject({
      id: 'local',
      name: 'This computer',
      kind: 'local',
      status: { state: 'connected' },
    });
    const { slots } = await ok('slots:list', { hostId: 'local' });
    expect(slots.map((s) => s.name)).toEqual(['main']);
    const preferences = await ok('app:preferences', {});
    expect(preferences.consoles).toEqual([{ hostId: 'local', slotId: slots[0]!.id, mode: 'writable' }]);

    const { url } = await ok('terminal:open', { hostId: 'local', slotId: slots[0]!.id, mode: 'writable' });
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/api\/v1\/slots\/[a-z0-9]{10}\/terminal\?ticket=/);
    const client = await TerminalTestClient.open(url);
    await client.waitForPrompt();
    client.type('echo local-$((2*21))\r');
    await client.waitFor('local-42');
    client.close();
  });

  it('starts the local agent again when it dies, and the slots it had are still running', async () => {
    const statuses: string[] = [];
    const unsubscribe = core.events.subscribe((channel, payload) => {
      const event = payload as { hostId?: string; status?: { state: string } };
      if (channel === 'hosts:status' && event.hostId === 'local') statuses.push(event.status!.state);
    });
    const before = (await ok('slots:list', { hostId: 'local' })).slots[0]!;
    const state = JSON.parse(readFileSync(join(dataDir, 'agents', 'local', 'agent-state.json'), 'utf8')) as {
      pid: number;
    };
    process.kill(state.pid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (statuses.at(-1) !== 'connected') {
      if (Date.now() > deadline) throw new Error(`no recovery: ${statuses.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    unsubscribe();
    expect(statuses[0]).toBe('reconnecting');
    const after = (await ok('slots:list', { hostId: 'local' })).slots[0]!;
    expect(after.programPid).toBe(before.programPid);
    expect(after.restarts).toBe(0);
  });

  it('says which secret store it uses', async () => {
    const status = await ok('secrets:status', {});
    if (process.env.DBUS_SESSION_BUS_ADDRESS) expect(status).toMatchObject({ backend: 'keychain', state: 'ready' });
    else expect(status).toMatchObject({ backend: 'file', state: 'ready' });
  });

  it('adds an SSH host, asks to confirm its key, reads the admin token over SSH and opens a console through the tunnel', async () => {
    const remotePort = Number(new URL(remote.url).port);
    const host = await ok('hosts:create', {
      name: 'staging',
      address: '127.0.0.1',
      port: sshd.port,
      user: 'root',
      auth: { method: 'key', privateKey: sshd.clientKey },
      agentPort: remotePort,
      agentCommand: `${process.execPath} ${AGENT_CLI} --data-dir ${remote.dataDir}`,
    });
    expect(host).toMatchObject({
      kind: 'ssh',
      pinnedKey: null,
      storedAdminToken: false,
      auth: { method: 'key', storedKey: true },
    });

    const first = await call('hosts:connect', { id: host.id });
    expect(first.ok).toBe(false);
    if (first.ok) return;
    expect(first.error.code).toBe('HOST_KEY_UNKNOWN');
    expect(first.error.details?.fingerprint).toBe(sshd.fingerprint);

    const trusted = await ok('hosts:trust-key', { id: host.id, fingerprint: sshd.fingerprint });
    expect(trusted.status.state).toBe('connected');
    expect(trusted.pinnedKey?.fingerprint).toBe(sshd.fingerprint);
    expect(trusted.storedAdminToken).toBe(true);

    const slot = await ok('slots:create', { hostId: host.id, slot: { name: 'remote-work' } });
    const { url } = await ok('terminal:open', { hostId: host.id, slotId: slot.id, mode: 'writable' });
    // The renderer connects to the tunnel's local end, never to the host directly.
    expect(new URL(url.replace('ws', 'http')).port).not.toBe(String(remotePort));
    const client = await TerminalTestClient.open(url);
    await client.waitForPrompt();
    client.type('echo remote-$((20+22))\r');
    await client.waitFor('remote-42');
    client.close();

    // Secrets are in the vault, never in the settings database.
    const database = readdirSync(dataDir)
      .filter((file) => file.startsWith('slotdeck.db'))
      .map((file) => readFileSync(join(dataDir, file)).toString('latin1'))
      .join('');
    expect(database).toContain('staging');
    expect(database).not.toContain(sshd.clientKey.split('\n')[1]);
    expect(database).not.toContain(remote.token);
  });

  it('refuses to pin a key the host does not present', async () => {
    const host = await ok('hosts:create', {
      name: 'impostor-check',
      address: '127.0.0.1',
      port: sshd.port,
      user: 'root',
      auth: { method: 'key', keyPath: sshd.clientKeyPath },
      agentPort: Number(new URL(remote.url).port),
      adminToken: remote.token,
    });
    const wrong = await call('hosts:trust-key', {
      id: host.id,
      fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    });
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.error.code).toBe('HOST_KEY_CHANGED_SINCE_SHOWN');
    expect((await ok('hosts:list', {})).hosts.find((h) => h.id === host.id)?.pinnedKey).toBeNull();
    await ok('hosts:remove', { id: host.id });
  });

  it('answers bad input and bad keys with codes and messages, keeping nothing half-made', async () => {
    const invalid = await call('hosts:create', {
      name: '',
      address: 'bad host!',
      port: 70000,
      user: 'root',
      auth: { method: 'key' },
    } as never);
    expect(invalid.ok).toBe(false);
    if (!invalid.ok) {
      expect(invalid.error.code).toBe('IPC_INPUT_INVALID');
      expect(invalid.error.message).toMatch(/name/);
      expect(invalid.error.message).toMatch(/port/);
    }
    const badKey = await call('hosts:create', {
      name: 'broken',
      address: '127.0.0.1',
      user: 'root',
      auth: { method: 'key', privateKey: 'not a key at all' },
    });
    expect(badKey.ok).toBe(false);
    if (!badKey.ok) expect(badKey.error.code).toBe('SSH_KEY_INVALID');
    const missingFile = await call('hosts:create', {
      name: 'broken',
      address: '127.0.0.1',
      user: 'root',
      auth: { method: 'key', keyPath: '/nope/id_ed25519' },
    });
    if (!missingFile.ok) expect(missingFile.error.code).toBe('SSH_KEY_FILE_UNREADABLE');
    expect((await ok('hosts:list', {})).hosts.map((h) => h.name)).not.toContain('broken');

    const notConnected = await call('slots:list', { hostId: 'h-0000000000' });
    expect(notConnected.ok).toBe(false);
    if (!notConnected.ok) expect(notConnected.error.code).toBe('HOST_NOT_FOUND');
    const local = await call('hosts:remove', { id: 'local' });
    if (!local.ok) expect(local.error.code).toBe('HOST_READ_ONLY');
  });

  it('puts no secret of the panel in any process or file a slot of This computer could read', () => {
    const localData = join(dataDir, 'agents', 'local');
    const secrets: Record<string, string> = {
      masterKey: 'integration-test-master-key',
      localAdminToken: readFileSync(join(localData, 'secrets', 'admin-token'), 'utf8').trim(),
      remoteAdminToken: remote.token,
    };
    // Every process but this test's own (which is the panel here): the local agent, its PM2, the slots' programs.
    expect(secretsInProcesses(secrets)).toEqual([]);
    // Files: the vault key is never written; tokens only in files private to their owner.
    for (const file of filesUnder(dataDir)) {
      const text = readFileSync(file, 'latin1');
      expect(text.includes(secrets.masterKey!), `the master key in ${file}`).toBe(false);
      for (const [name, secret] of Object.entries(secrets)) {
        if (text.includes(secret)) expect(statSync(file).mode & 0o077, `${name} in ${file}`).toBe(0);
      }
    }
  });
});
