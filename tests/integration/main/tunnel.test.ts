import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleLogger } from '../../../src/main/log';
import { IpcError } from '../../../src/main/ipc/errors';
import { Tunnel, type TunnelAuth } from '../../../src/main/services/ssh/tunnel';
import type { HostStatus } from '../../../src/shared/ipc/contract';
import { AgentProcess } from '../helpers/agent.js';
import { TestSshd } from '../helpers/sshd.js';
import { until } from '../helpers/until.js';

let sshd: TestSshd;
let agent: AgentProcess;
const tunnels: Tunnel[] = [];
const quiet = consoleLogger(() => undefined);

beforeAll(async () => {
  [sshd, agent] = await Promise.all([TestSshd.start(), AgentProcess.start()]);
});

afterAll(async () => {
  for (const tunnel of tunnels) tunnel.stop({ silent: true });
  sshd?.stop();
  await agent?.destroy();
});

function tunnel(options: { auth?: TunnelAuth; pinned?: string | null; port?: number } = {}): {
  tunnel: Tunnel;
  statuses: HostStatus[];
} {
  const statuses: HostStatus[] = [];
  // Pinned once, as the store keeps it: a host that changes its key later must not match.
  const pinned = options.pinned === undefined ? sshd.fingerprint : options.pinned;
  const made = new Tunnel({
    label: 'test host',
    address: '127.0.0.1',
    port: options.port ?? sshd.port,
    user: 'root',
    auth: () => Promise.resolve(options.auth ?? { privateKey: sshd.clientKey }),
    pinnedFingerprint: () => pinned,
    remotePort: Number(new URL(agent.url).port),
    onStatus: (status) => statuses.push(status),
    log: quiet,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  tunnels.push(made);
  return { tunnel: made, statuses };
}

async function failure(promise: Promise<unknown>): Promise<IpcError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(IpcError);
    return error as IpcError;
  }
  throw new Error('expected a failure');
}

async function health(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) });
  return response.status;
}

describe('an SSH tunnel to the agent', () => {
  it('forwards a local port to the agent on the host once the pinned key matches, and runs commands', async () => {
    const { tunnel: t, statuses } = tunnel();
    await t.start();
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'connected']);
    expect(await health(t.localPort)).toBe(200);
    const slots = await fetch(`http://127.0.0.1:${t.localPort}/api/v1/slots`, {
      headers: { authorization: `Bearer ${agent.token}` },
    });
    expect(slots.status).toBe(200);
    const result = await t.exec('echo from-$((40+2)); exit 3');
    expect(result).toMatchObject({ code: 3, stdout: 'from-42\n' });
    t.stop();
    expect(statuses.at(-1)?.state).toBe('disconnected');
  });

  it('accepts no unknown host key: it reports the fingerprint for the admin to check', async () => {
    const error = await failure(tunnel({ pinned: null }).tunnel.start());
    expect(error.code).toBe('HOST_KEY_UNKNOWN');
    expect(error.details).toMatchObject({ fingerprint: sshd.fingerprint, algorithm: 'ssh-ed25519' });
  });

  it('blocks a host whose key differs from the pinned one, with both fingerprints', async () => {
    const pinned = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const error = await failure(tunnel({ pinned }).tunnel.start());
    expect(error.code).toBe('HOST_KEY_MISMATCH');
    expect(error.message).toMatch(/WARNING/);
    expect(error.details).toMatchObject({ fingerprint: sshd.fingerprint, pinnedFingerprint: pinned });
  });

  it('explains bad keys, passphrases, refused logins and unreachable hosts', async () => {
    const notAKey = await failure(tunnel({ auth: { privateKey: 'hello, I am not a key' } }).tunnel.start());
    expect(notAKey.code).toBe('SSH_KEY_INVALID');
    expect(notAKey.message).toMatch(/Paste the whole private key/);

    const noPassphrase = await failure(tunnel({ auth: { privateKey: sshd.encryptedClientKey } }).tunnel.start());
    expect(noPassphrase.code).toBe('SSH_KEY_PASSPHRASE');
    const wrongPassphrase = await failure(
      tunnel({ auth: { privateKey: sshd.encryptedClientKey, passphrase: 'wrong' } }).tunnel.start(),
    );
    expect(wrongPassphrase.code).toBe('SSH_KEY_PASSPHRASE');
    const right = tunnel({ auth: { privateKey: sshd.encryptedClientKey, passphrase: 'correct horse' } }).tunnel;
    await right.start();
    expect(await health(right.localPort)).toBe(200);
    right.stop();

    const stranger = mkdtempSync(join(tmpdir(), 'sd-stranger-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(stranger, 'key')]);
    const refused = await failure(
      tunnel({ auth: { privateKey: readFileSync(join(stranger, 'key'), 'utf8') } }).tunnel.start(),
    );
    rmSync(stranger, { recursive: true, force: true });
    expect(refused.code).toBe('SSH_AUTH_FAILED');
    expect(refused.message).toMatch(/authorized_keys/);

    const unreachable = await failure(tunnel({ port: 1 }).tunnel.start());
    expect(unreachable.code).toBe('SSH_UNREACHABLE');
  });

  it('reconnects after the host drops every connection, on the same local port', async () => {
    const { tunnel: t, statuses } = tunnel();
    await t.start();
    const port = t.localPort;
    await sshd.restart({
      downUntil: () => until('the tunnel to notice', () => statuses.some((s) => s.state === 'reconnecting')),
    });
    await until(
      'a reconnect',
      () => statuses,
      (all) => all.at(-1)?.state === 'connected',
    );
    const reconnecting = statuses.find((s) => s.state === 'reconnecting')!;
    expect(reconnecting.attempt).toBe(1);
    expect(Date.parse(reconnecting.nextRetryAt!)).toBeGreaterThan(Date.parse(reconnecting.since));
    expect(t.localPort).toBe(port);
    expect(await health(port)).toBe(200);
    t.stop();
  });

  it('refuses local connections made while the SSH connection is dying, instead of crashing, and recovers', async () => {
    const { tunnel: t, statuses } = tunnel();
    await t.start();
    // The SSH socket stops being writable a moment before ssh2 reports the loss; ssh2 then throws "Not connected"
    // synchronously for a new forward. Connections arriving in that moment must simply fail.
    const sshSocket = (t as unknown as { client: { _sock: Socket } }).client._sock;
    sshSocket.end();
    const attempts = await Promise.all(
      Array.from({ length: 5 }, () =>
        fetch(`http://127.0.0.1:${t.localPort}/health`).then(
          (response) => response.status,
          () => 'refused',
        ),
      ),
    );
    expect(attempts.every((result) => result === 'refused' || result === 200)).toBe(true);
    await until(
      'a reconnect',
      () => statuses,
      (all) => all.at(-1)?.state === 'connected' && all.some((s) => s.state === 'reconnecting'),
    );
    expect(await health(t.localPort)).toBe(200);
    t.stop();
  });

  it('stops retrying when the host comes back with another key', async () => {
    const { tunnel: t, statuses } = tunnel();
    await t.start();
    await sshd.restart({ newHostKey: true });
    await until(
      'the tunnel to fail',
      () => statuses,
      (all) => all.at(-1)?.state === 'failed',
    );
    expect(statuses.at(-1)?.error?.code).toBe('HOST_KEY_MISMATCH');
    const count = statuses.length;
    // Not a wait for something but a window in which nothing may happen: longer than the longest backoff (1 s).
    await sleep(1500);
    expect(statuses.length).toBe(count);
    await expect(fetch(`http://127.0.0.1:${t.localPort}/health`)).rejects.toThrow();
    t.stop();
  });
});
