/**
 * The agent's shutdown (pm2 stop) waits for the gateway's close(): it must return while clients hold keep-alive
 * connections, and a stream that runs on is ended after a bounded drain, metered. Real gateway and sockets; the
 * fake upstream is a stand-in.
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

const PATIENCE_MS = 10_000;
let h: Harness | null = null;
let agent: Agent | null = null;

afterEach(async () => {
  agent?.destroy();
  await h?.close().catch(() => undefined);
  h = agent = null;
});

/** Sends a request on the keep-alive agent; resolves with the status and the whole body once it is read. */
function send(url: string, secret: string, text: string, stream: boolean): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify({
    model: 'claude-sonnet-4-6',
    max_tokens: 8,
    stream,
    messages: [{ role: 'user', content: text }],
  });
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}/v1/messages`,
      {
        method: 'POST',
        agent: agent!,
        headers: {
          'content-type': 'application/json',
          'x-api-key': secret,
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

it('returns from close() once a stream in flight finished, though its keep-alive client keeps the connection (stand-in upstream)', async () => {
  h = await startHarness();
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = await h.listen();
  const { created } = h.newKey();
  const answer = send(url, created.secret, 'slow !slow 40', true);
  await expect.poll(() => h!.upstream!.requests.length, { timeout: PATIENCE_MS }).toBe(1);
  const closed = h.gateway.close();
  expect((await answer).body).toContain('message_stop');
  await closed;
  expect(h.rows()).toMatchObject([{ status: 'success' }]);
});

it('ends a stream that outlasts the shutdown drain, metered for what it sent (stand-in upstream)', async () => {
  h = await startHarness();
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = await h.listen();
  const { created } = h.newKey();
  // About 3 minutes of stream: far beyond the drain.
  const answer = send(url, created.secret, 'endless !slow 20000', true).catch((error: unknown) => error);
  await expect.poll(() => h!.upstream!.requests.length, { timeout: PATIENCE_MS }).toBe(1);
  await expect.poll(() => h!.gateway.status().inFlight, { timeout: PATIENCE_MS }).toBe(1);
  await h.gateway.close({ drainMs: 200 });
  await answer;
  await h.recorder.flush();
  expect(h.rows()).toHaveLength(1);
  expect(h.rows()[0]!.input_tokens).toBe(25);
});
