/**
 * The gateway as a load generator sees it: one end user with a key that no rate limit or quota stops, and one
 * request that says whether the client saw a complete answer (a 200 with the whole JSON message, or a stream that
 * reached message_stop) and which upstream request it was (upstream's `request-id`, which the gateway passes on and
 * writes into the usage row).
 */
import { createServer } from 'node:net';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Pool } from 'undici';
import type { CreatedKey, User } from '../../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY } from '../fixtures/fake-anthropic.js';
import type { AgentProcess } from '../helpers/agent.js';

export const JSON_BODY = JSON.stringify({
  model: 'claude-sonnet-4-6',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'reliability !usage in=120 out=30 cw=0 cr=64' }],
});
/** Slow enough (5 ms between events) that a kill finds streams half sent. */
export const STREAM_BODY = JSON.stringify({
  model: 'claude-sonnet-4-6',
  max_tokens: 64,
  stream: true,
  messages: [{ role: 'user', content: 'reliability !usage in=120 out=30 cw=0 cr=64 !slow 5' }],
});

export interface Answer {
  /** The client saw the whole answer: a 200 with a message, or a stream up to message_stop. */
  complete: boolean;
  /** Upstream's request id as the client saw it (null when no response headers came). */
  requestId: string | null;
  status: number | null;
  ms: number;
  error: string | null;
}

/** A free loopback port, so that an agent restarted on the same data dir listens where its clients expect it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Sets the upstream key and creates a user with a key that no rate limit stops; returns the key's secret. */
export async function gatewayUser(agent: AgentProcess, username: string): Promise<{ userId: string; secret: string }> {
  const upstream = await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
  if (upstream.status >= 300) throw new Error(`upstream key: ${upstream.status} ${JSON.stringify(upstream.body)}`);
  const user = await agent.request<User>('POST', '/api/v1/users', { username });
  if (user.status !== 201) throw new Error(`user: ${user.status} ${JSON.stringify(user.body)}`);
  const key = await agent.request<CreatedKey>('POST', `/api/v1/users/${user.body.id}/keys`, {
    name: username,
    rateLimit: { requestsPerMinute: 1_000_000, concurrentStreams: 10_000 },
  });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${JSON.stringify(key.body)}`);
  return { userId: user.body.id, secret: key.body.secret };
}

const headerValue = (value: string | string[] | undefined): string | null =>
  Array.isArray(value) ? (value[0] ?? null) : (value ?? null);

/** One request through the gateway; never throws: a refused connection or a cut stream is an incomplete answer. */
export async function send(pool: Pool, secret: string, body: string): Promise<Answer> {
  const started = performance.now();
  let status: number | null = null;
  let requestId: string | null = null;
  try {
    const response = await pool.request({
      path: '/v1/messages',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': secret },
      body,
    });
    status = response.statusCode;
    requestId = headerValue(response.headers['request-id']);
    const text = await response.body.text();
    const streamed = /^text\/event-stream/.test(headerValue(response.headers['content-type']) ?? '');
    let complete = false;
    if (status === 200 && streamed) complete = /(^|\n)event: message_stop\n/.test(text);
    else if (status === 200) complete = (JSON.parse(text) as { type?: string }).type === 'message';
    return { complete, requestId, status, ms: performance.now() - started, error: complete ? null : `HTTP ${status}` };
  } catch (error) {
    return {
      complete: false,
      requestId,
      status,
      ms: performance.now() - started,
      error: (error as { code?: string }).code ?? String(error),
    };
  }
}

/** The upstream request ids of the usage rows in the agent's database (read-only, beside the running agent). */
export function recordedRequestIds(agent: AgentProcess, userId: string): Set<string> {
  const db = new Database(join(agent.dataDir, 'agent.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare<[string], { request_id: string | null }>('SELECT request_id FROM usage_events WHERE user_id = ?')
      .all(userId);
    return new Set(rows.map((row) => row.request_id).filter((id): id is string => id !== null));
  } finally {
    db.close();
  }
}
