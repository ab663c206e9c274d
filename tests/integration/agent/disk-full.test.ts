/**
 * A full disk on the agent's data dir (issue 13, §5 and §6): a real agent on a 64 MB tmpfs, filled with a file.
 * Gateway requests are refused with 503 GATEWAY_STORAGE_FULL (nothing is answered that is not on record), /health
 * says degraded (and the details say why), terminals keep streaming, creating a slot says STORAGE_FULL; once the
 * file is deleted everything recovers by itself. A storage_full alert reaches a webhook receiver on loopback while
 * the disk is full (its row cannot be written then) and resolves once space is back. Upstream is the local stand-in
 * (fake-anthropic).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot, UsageRow } from '../../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { AgentProcess } from '../helpers/agent.js';
import type { TerminalTestClient } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

let mountPoint: string;
let upstream: FakeAnthropic;
let agent: AgentProcess;
let secret: string;
let printer: Slot;
let viewer: TerminalTestClient;
const filler = (): string => join(mountPoint, 'filler');
/** What the alert webhook receiver on loopback was sent: [event, rule]. */
const notifications: Array<[string, string]> = [];
let receiver: Server;

interface GatewayAnswer {
  status: number;
  body: { error?: { type: string; message: string }; code?: string; id?: string };
  requestId: string | null;
}

async function ask(text = 'hello'): Promise<GatewayAnswer> {
  const response = await fetch(`${agent.gatewayUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': secret, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: text }] }),
  });
  return {
    status: response.status,
    body: (await response.json()) as GatewayAnswer['body'],
    requestId: response.headers.get('request-id'),
  };
}

async function usageRows(): Promise<UsageRow[]> {
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  const response = await agent.request<{ rows: UsageRow[] }>(
    'GET',
    `/api/v1/usage/rows?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&limit=1000`,
  );
  expect(response.status).toBe(200);
  return response.body.rows;
}

const health = async (): Promise<string> =>
  ((await (await fetch(`${agent.url}/health`)).json()) as { status: string }).status;

/** Writes until the file system says ENOSPC. */
function fillDisk(): void {
  const fd = openSync(filler(), 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

beforeAll(async () => {
  mountPoint = mkdtempSync(join(tmpdir(), 'sd-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', mountPoint]);
  upstream = await startFakeAnthropic();
  receiver = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      const body = JSON.parse(text) as { event: string; alert: { rule: string } };
      notifications.push([body.event, body.alert.rule]);
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  agent = await AgentProcess.start({
    dataDir: mountPoint,
    // The slots' sockets stay off the small disk (as /run is on a host).
    env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url },
  });
  expect((await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY })).status).toBe(200);
  const user = await agent.request<{ id: string }>('POST', '/api/v1/users', { username: 'filler' });
  const key = await agent.request<{ secret: string }>('POST', `/api/v1/users/${user.body.id}/keys`, { name: 'k' });
  secret = key.body.secret;
  const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/secret-path`;
  expect((await agent.request('PUT', '/api/v1/alerts/webhook', { url: webhookUrl, format: 'json' })).status).toBe(200);
  printer = await agent.createSlot({
    name: 'printer',
    command: {
      preset: 'custom',
      command: '/bin/sh',
      args: [
        '-c',
        'stty -echo; echo READY; while read -r go; do i=0; while [ $i -lt 2000 ]; do echo "line $i of $go ................................................"; i=$((i+1)); done; echo "DONE-$go"; done',
      ],
    },
  });
  viewer = await agent.attach(printer.id);
  await viewer.waitFor('READY', 15_000);
}, 90_000);

afterAll(async () => {
  viewer?.close();
  try {
    await agent?.destroy();
  } catch {
    // destroy() removes the data dir, which is the mount point: its rmdir fails while mounted.
  }
  await upstream?.close();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  execFileSync('umount', ['-l', mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
}, 60_000);

describe('a full disk on the data dir (stand-in upstream: the fake Messages API)', () => {
  it('answers and records while there is room', async () => {
    const answer = await ask();
    expect(answer.status).toBe(200);
    expect((await usageRows()).map((row) => row.requestId)).toContain(answer.requestId);
    expect(await health()).toBe('ok');
    const details = await agent.request<{ status: string }>('GET', '/api/v1/health/details');
    expect(details).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('never answers a request it could not record, and refuses new ones with 503 GATEWAY_STORAGE_FULL', async () => {
    fillDisk();
    // Right after the disk fills, before the monitor's next look: each answer given is on record, or refused.
    const early = await Promise.all([ask('a'), ask('b'), ask('c')]);
    const recorded = new Set((await usageRows()).map((row) => row.requestId));
    for (const answer of early) {
      if (answer.status === 200) expect(recorded).toContain(answer.requestId);
      else expect(answer).toMatchObject({ status: 503, body: { code: 'GATEWAY_STORAGE_FULL' } });
    }

    await until('/health to say degraded', health, (status) => status === 'degraded', { timeoutMs: 20_000 });
    const upstreamSeen = upstream.requests.length;
    const refused = await ask();
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('GATEWAY_STORAGE_FULL');
    expect(refused.body.error?.message).toMatch(/disk is full.*free space on the host.*by itself/);
    // Refused before upstream: nothing was asked that could not be recorded.
    expect(upstream.requests.length).toBe(upstreamSeen);
  });

  it('says why in the health details', async () => {
    const details = await agent.request<{ status: string; problems: Array<{ message: string }> }>(
      'GET',
      '/api/v1/health/details',
    );
    expect(details).toMatchObject({ status: 200, body: { status: 'degraded' } });
    expect(details.body.problems.map((p) => p.message).join('\n')).toMatch(/free space/i);
  });

  it('delivers a storage_full alert to the webhook while nothing can be written', async () => {
    await until(
      'the storage_full alert at the webhook',
      () => notifications,
      (seen) => seen.some(([event, rule]) => event === 'firing' && rule === 'storage_full'),
      { timeoutMs: 20_000 },
    );
    // The panel's list shows it too, though its row waits for space.
    const listed = await agent.request<{ alerts: Array<{ rule: string; state: string }> }>(
      'GET',
      '/api/v1/alerts?filter=firing',
    );
    expect(listed.body.alerts.some((alert) => alert.rule === 'storage_full' && alert.state === 'firing')).toBe(true);
  });

  it('keeps the agent up and the terminal streaming while a slot prints, and says the journal paused', async () => {
    viewer.type('full1\n');
    await viewer.waitFor('DONE-full1', 30_000);
    expect(agent.pid).not.toBeNull();
    expect(await health()).toBe('degraded');
    await until('the pause log line', () => agent.logs.some((line) => line.includes('screen journal paused')));
  });

  it('answers 507 STORAGE_FULL to creating a slot, never a 500', async () => {
    const created = await agent.request<{ error: { code: string; message: string } }>('POST', '/api/v1/slots', {
      name: 'another',
    });
    expect(created.status).toBe(507);
    expect(created.body.error.code).toBe('STORAGE_FULL');
    expect(created.body.error.message).toMatch(/Free space/);
  });

  it('recovers by itself once space is freed: requests are answered and recorded, the screen is recorded again', async () => {
    rmSync(filler());
    await until('/health to say ok again', health, (status) => status === 'ok', { timeoutMs: 20_000 });
    const answer = await ask();
    expect(answer.status).toBe(200);
    expect((await usageRows()).map((row) => row.requestId)).toContain(answer.requestId);

    await until('the journal to record again', () =>
      agent.logs.some((line) => line.includes('screen journal recording again')),
    );
    viewer.type('after\n');
    await viewer.waitFor('DONE-after', 30_000);
    // A console opened now rebuilds the screen from the journal: what was printed after the recovery is in it.
    const late = await agent.attach(printer.id);
    try {
      await late.waitFor('DONE-after', 15_000);
    } finally {
      late.close();
    }
  });

  it('resolves the storage_full alert at the webhook and records it once', async () => {
    await until(
      'the storage_full alert to resolve at the webhook',
      () => notifications,
      (seen) => seen.some(([event, rule]) => event === 'resolved' && rule === 'storage_full'),
      { timeoutMs: 20_000 },
    );
    expect(notifications.filter(([event, rule]) => event === 'firing' && rule === 'storage_full')).toHaveLength(1);
    const history = await agent.request<{ alerts: Array<{ rule: string; state: string }> }>('GET', '/api/v1/alerts');
    expect(history.body.alerts.filter((alert) => alert.rule === 'storage_full')).toHaveLength(1);
  });
});
