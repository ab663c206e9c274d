/**
 * The gateway as end users meet it: a real agent process, the official Anthropic SDK as the client, and a local
 * fake of the Messages API as upstream (the one part that cannot run here).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  ApiKey,
  CreatedKey,
  QuotaStatus,
  UsageRow,
  UsageSummary,
  User,
} from '../../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { AgentProcess } from '../helpers/agent.js';
import { headersOnly } from '../helpers/http.js';
import { until } from '../helpers/until.js';

const MODEL = 'claude-sonnet-4-6';
/** Sonnet 4.x list prices, USD per million tokens: input, output, cache write, cache read. */
const SONNET = { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 };

let upstream: FakeAnthropic;
let agent: AgentProcess;
let seq = 0;

const RANGE = 'from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z';

async function createUser(extra: Record<string, unknown> = {}): Promise<User> {
  const response = await agent.request<User>('POST', '/api/v1/users', { username: `user${++seq}`, ...extra });
  expect(response.status).toBe(201);
  return response.body;
}

async function createKey(userId: string, body: Record<string, unknown> = {}): Promise<CreatedKey> {
  const response = await agent.request<CreatedKey>('POST', `/api/v1/users/${userId}/keys`, { name: 'test', ...body });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

const sdk = (apiKey: string): Anthropic =>
  new Anthropic({ apiKey, baseURL: agent.gatewayUrl, maxRetries: 0, timeout: 20_000 });

const ask = (text: string) => ({
  model: MODEL,
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: text }],
});

interface CallResult {
  status: number;
  headers: Headers;
  body: { type?: string; error?: { type: string; message: string }; code?: string } & Record<string, unknown>;
}

/** A raw call, to see statuses, headers and bodies exactly as the gateway sends them. */
async function call(
  key: string | null,
  body: unknown = ask('hello'),
  path = '/v1/messages',
  extraHeaders: Record<string, string> = {},
): Promise<CallResult> {
  const response = await fetch(`${agent.gatewayUrl}${path}`, {
    method: body === null ? 'GET' : 'POST',
    headers: {
      ...(key === null ? {} : { 'x-api-key': key }),
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      ...extraHeaders,
    },
    ...(body === null ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text.startsWith('{') ? JSON.parse(text) : { text }) as CallResult['body'],
  };
}

async function rowsOf(query: string): Promise<UsageRow[]> {
  const response = await agent.request<{ rows: UsageRow[] }>('GET', `/api/v1/usage/rows?${RANGE}&${query}`);
  expect(response.status).toBe(200);
  return response.body.rows;
}

/** A key that passes the format check (sk_user_ + 22 base62 + 6 base62 CRC32) but was never issued. */
async function wellFormedUnknownKey(): Promise<string> {
  const { crc32 } = await import('node:zlib');
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let body = '';
  for (let i = 0; i < 22; i++) body += alphabet[Math.floor(Math.random() * 62)];
  let checksum = crc32(body);
  let suffix = '';
  for (let i = 0; i < 6; i++) {
    suffix = alphabet[checksum % 62]! + suffix;
    checksum = Math.floor(checksum / 62);
  }
  return `sk_user_${body}${suffix}`;
}

beforeAll(async () => {
  upstream = await startFakeAnthropic();
  agent = await AgentProcess.start({
    env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url, SLOTDECK_AGENT_UPSTREAM_TIMEOUT_MS: '1500' },
  });
  expect(agent.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});

afterAll(async () => {
  await agent?.destroy();
  await upstream?.close();
});

describe('before an upstream key is set', () => {
  it('answers 503 with a message that says who must set it', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    const response = await call(secret);
    expect(response.status).toBe(503);
    expect(response.body.code).toBe('GATEWAY_UPSTREAM_KEY_MISSING');
    expect(response.body.error?.message).toMatch(/upstream API key/);
    const status = await agent.request<{ upstream: { keyConfigured: boolean } }>('GET', '/api/v1/gateway');
    expect(status.body.upstream.keyConfigured).toBe(false);
  });

  it('stores the upstream key without ever returning it', async () => {
    const response = await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
    expect(response.status).toBe(200);
    expect(JSON.stringify(response.body)).not.toContain(FAKE_UPSTREAM_KEY);
    expect(response.body).toMatchObject({ upstream: { keyConfigured: true } });
    expect(agent.logs.join('\n')).not.toContain(FAKE_UPSTREAM_KEY);
  });
});

describe('Messages API through the official SDK', () => {
  let user: User;
  let key: CreatedKey;
  beforeAll(async () => {
    user = await createUser({ email: 'sdk@example.com' });
    key = await createKey(user.id);
  });

  it('answers a non-streaming request and meters it exactly, cache tokens and cost included', async () => {
    const message = await sdk(key.secret).messages.create(ask('hi !usage in=1000 out=200 cw=300 cr=4000'));
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Hello from the fake upstream.' });
    expect(message.usage).toMatchObject({ input_tokens: 1000, output_tokens: 200 });
    const [row] = await rowsOf(`keyId=${key.key.id}`);
    expect(row).toMatchObject({
      userId: user.id,
      username: user.username,
      keyId: key.key.id,
      model: MODEL,
      provider: 'anthropic',
      inputTokens: 1000,
      outputTokens: 200,
      cacheCreationTokens: 300,
      cacheReadTokens: 4000,
      status: 'success',
      httpStatus: 200,
    });
    expect(row!.requestId).toMatch(/^req_fake_/);
    const cost = (1000 * SONNET.input + 200 * SONNET.output + 300 * SONNET.cacheWrite + 4000 * SONNET.cacheRead) / 1e6;
    expect(row!.costUsd).toBeCloseTo(cost, 10);
  });

  it('streams event by event and meters the stream from message_start and the last message_delta', async () => {
    const stream = sdk(key.secret).messages.stream(ask('stream !usage in=50 out=90 cw=7 cr=11 !deltas 3'));
    const types: string[] = [];
    stream.on('streamEvent', (event) => types.push(event.type));
    const final = await stream.finalMessage();
    expect(types[0]).toBe('message_start');
    expect(types).toContain('content_block_delta');
    expect(types.filter((t) => t === 'message_delta')).toHaveLength(3);
    expect(types.at(-1)).toBe('message_stop');
    expect(final.usage.output_tokens).toBe(90);
    const [row] = await rowsOf(`keyId=${key.key.id}`);
    // output_tokens is cumulative (30, 60, 90): the latest counts, never the sum.
    expect(row).toMatchObject({
      inputTokens: 50,
      outputTokens: 90,
      cacheCreationTokens: 7,
      cacheReadTokens: 11,
      status: 'success',
    });
    expect(row!.ttfbMs).not.toBeNull();
  });

  it('passes a slow stream on as it arrives instead of buffering it', async () => {
    const stream = sdk(key.secret).messages.stream(ask('slow !slow 150'));
    const arrivals: number[] = [];
    stream.on('streamEvent', () => arrivals.push(performance.now()));
    await stream.finalMessage();
    // Events 150 ms apart upstream stay apart here: the first arrived well before the last.
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(150 * 5);
  });

  it('passes anthropic-version and anthropic-beta on, and never the caller key', async () => {
    const before = upstream.requests.length;
    await call(key.secret, ask('headers'), '/v1/messages', { 'anthropic-beta': 'prompt-caching-2024-07-31' });
    const seen = upstream.requests[before]!;
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    expect(seen.headers['x-api-key']).toBe(FAKE_UPSTREAM_KEY);
    expect(JSON.stringify(seen.headers)).not.toContain(key.secret);
  });

  it('counts tokens and lists models', async () => {
    const counted = await sdk(key.secret).messages.countTokens({
      model: MODEL,
      messages: [{ role: 'user', content: 'x !usage in=321' }],
    });
    expect(counted.input_tokens).toBe(321);
    const models = await sdk(key.secret).models.list();
    expect(models.data.map((m) => m.id)).toContain(MODEL);
    expect((await sdk(key.secret).models.retrieve(MODEL)).display_name).toBe('Claude Sonnet 4.6');
  });

  it('keeps upstream errors with their status and body, and meters them as errors', async () => {
    const error = await sdk(key.secret)
      .messages.create(ask('fail !error 529 overloaded_error'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect(JSON.stringify((error as InstanceType<typeof Anthropic.APIError>).error)).toContain('overloaded_error');
    const [row] = await rowsOf(`keyId=${key.key.id}`);
    expect(row).toMatchObject({ status: 'error', errorType: 'overloaded_error', httpStatus: 529 });
  });

  it('turns an upstream that does not answer into a clear timeout error', async () => {
    const response = await call(key.secret, ask('wait !hang'));
    expect(response.status).toBe(504);
    expect(response.body).toMatchObject({
      type: 'error',
      error: { type: 'timeout_error' },
      code: 'GATEWAY_UPSTREAM_TIMEOUT',
    });
    const [row] = await rowsOf(`keyId=${key.key.id}`);
    expect(row).toMatchObject({ status: 'timeout', errorType: 'timeout_error' });
  });

  it('aborts the upstream request when the client goes away mid-stream, and meters what was streamed', async () => {
    const before = upstream.requests.length;
    const abort = new AbortController();
    const response = await fetch(`${agent.gatewayUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key.secret, 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask('long !usage in=77 cw=1 cr=2 !slow 300'), stream: true }),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('message_start');
    abort.abort();
    await expect.poll(() => upstream.requests[before]?.aborted, { timeout: 5000 }).toBe(true);
    await expect
      .poll(async () => (await rowsOf(`keyId=${key.key.id}`))[0]?.status, { timeout: 5000 })
      .toBe('client_abort');
    const [row] = await rowsOf(`keyId=${key.key.id}`);
    expect(row).toMatchObject({ inputTokens: 77, cacheCreationTokens: 1, cacheReadTokens: 2 });
  });

  it('lets upstream finish a non-streaming answer the SDK left, and meters it in full (fake upstream)', async () => {
    const leaver = await createKey(user.id);
    const before = upstream.requests.length;
    const abort = new AbortController();
    const sent = sdk(leaver.secret)
      .messages.create(ask('a long prompt !usage in=100000 out=50 cw=0 cr=0 !wait 700'), { signal: abort.signal })
      .catch((error: unknown) => error);
    // Gone as soon as upstream has the request, long before it answers.
    await expect.poll(() => upstream.requests.length, { timeout: 5000 }).toBeGreaterThan(before);
    abort.abort();
    expect(await sent).toBeInstanceOf(Anthropic.APIUserAbortError);
    await expect
      .poll(async () => (await rowsOf(`keyId=${leaver.key.id}`))[0]?.status, { timeout: 5000 })
      .toBe('client_abort');
    const [row] = await rowsOf(`keyId=${leaver.key.id}`);
    expect(row).toMatchObject({ inputTokens: 100_000, outputTokens: 50, httpStatus: 200 });
    expect(row!.costUsd).toBeCloseTo((100_000 * SONNET.input + 50 * SONNET.output) / 1e6, 9);
    expect(upstream.requests[before]!.aborted).toBe(false);
  });

  it('meters a stream the SDK leaves after the content for what it received, before message_delta (fake upstream)', async () => {
    const stream = sdk(key.secret).messages.stream(ask('leave early !usage in=30 out=500 cw=0 cr=0 !slow 150'));
    const ended = stream.finalMessage().catch((error: unknown) => error);
    await new Promise<void>((resolve) =>
      stream.on('streamEvent', (event) => {
        if (event.type === 'content_block_stop') resolve();
      }),
    );
    stream.abort();
    expect(await ended).toBeInstanceOf(Anthropic.APIUserAbortError);
    await expect
      .poll(async () => (await rowsOf(`keyId=${key.key.id}`))[0]?.errorType, { timeout: 5000 })
      .toBe('client_abort_output_estimated');
    const [row] = await rowsOf(`keyId=${key.key.id}`);
    // 29 characters of text at 3 a token: 10 output tokens, where message_start said 1.
    expect(row).toMatchObject({ status: 'client_abort', inputTokens: 30, outputTokens: 10 });
  });

  it('refuses a non-boolean "stream" with 400 invalid_request_error and meters nothing', async () => {
    const before = (await rowsOf(`keyId=${key.key.id}`)).length;
    for (const stream of [1, 'true']) {
      const response = await call(key.secret, { ...ask('hi'), stream });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { type: 'invalid_request_error' }, code: 'GATEWAY_BODY_INVALID' });
    }
    expect(await rowsOf(`keyId=${key.key.id}`)).toHaveLength(before);
  });

  it("puts the gateway's own overhead on every response", async () => {
    for (const response of [await call(key.secret), await call(null), await call(key.secret, null, '/v1/models')]) {
      expect(Number(response.headers.get('x-slotdeck-overhead-ms'))).toBeGreaterThanOrEqual(0);
    }
  });

  it('shows the admin the usage summed by model and by user', async () => {
    const rows = await rowsOf(`userId=${user.id}`);
    const byModel = await agent.request<UsageSummary>(
      'GET',
      `/api/v1/usage/summary?${RANGE.replace('2020', '2026').replace('2030', '2027')}&bucket=day&groupBy=model&userId=${user.id}`,
    );
    expect(byModel.status).toBe(200);
    expect(byModel.body.totals.requests).toBe(rows.length);
    expect(byModel.body.totals.inputTokens).toBe(rows.reduce((sum, r) => sum + r.inputTokens, 0));
    expect(byModel.body.totals.cacheReadTokens).toBe(rows.reduce((sum, r) => sum + r.cacheReadTokens, 0));
    expect(byModel.body.groups.map((g) => g.key)).toEqual([MODEL]);
  });
});

describe('keys that do not work', () => {
  it.each([
    ['no key at all', null, 'GATEWAY_KEY_MISSING'],
    ['an Anthropic key', 'sk-ant-api03-abcdefghijklmnop', 'GATEWAY_KEY_MALFORMED'],
    ['a key of the wrong length', 'sk_user_abc123', 'GATEWAY_KEY_MALFORMED'],
    ['a key with a bad checksum', 'sk_user_AAAAAAAAAAAAAAAAAAAAAA000000', 'GATEWAY_KEY_MALFORMED'],
  ])('refuses %s with 401 in Anthropic’s error shape', async (_what, key, code) => {
    const response = await call(key);
    expect(response.status).toBe(401);
    expect(response.body).toMatchObject({ type: 'error', error: { type: 'authentication_error' }, code });
    expect(response.body.error!.message.length).toBeGreaterThan(20);
  });

  it('refuses a well-formed key that was never issued, and one with a changed secret', async () => {
    expect((await call(await wellFormedUnknownKey())).body.code).toBe('GATEWAY_KEY_UNKNOWN');
    const user = await createUser();
    const { secret } = await createKey(user.id);
    const changed = `${secret.slice(0, 10)}${secret[10] === 'A' ? 'B' : 'A'}${secret.slice(11)}`;
    const response = await call(changed);
    expect(response.status).toBe(401);
    expect(['GATEWAY_KEY_MALFORMED', 'GATEWAY_KEY_UNKNOWN']).toContain(response.body.code);
  });

  it('refuses a revoked key at once', async () => {
    const user = await createUser();
    const { key, secret } = await createKey(user.id);
    expect((await call(secret)).status).toBe(200);
    expect((await agent.request('POST', `/api/v1/keys/${key.id}/revoke`)).status).toBe(200);
    const response = await call(secret);
    expect(response.status).toBe(401);
    expect(response.body.code).toBe('GATEWAY_KEY_REVOKED');
  });

  it('refuses an expired key', async () => {
    const user = await createUser();
    const expiresAt = Date.now() + 1500;
    const { secret } = await createKey(user.id, { expiresAt: new Date(expiresAt).toISOString() });
    expect((await call(secret)).status).toBe(200);
    // Wait for the expiry set above rather than a fixed span, then ask once.
    await until(
      'the key to reach its expiry',
      () => Date.now(),
      (now) => now > expiresAt,
    );
    const response = await call(secret);
    expect(response.status).toBe(401);
    expect(response.body.code).toBe('GATEWAY_KEY_EXPIRED');
  });

  it('keeps a rotated key working during its grace period and not after', async () => {
    const user = await createUser();
    const first = await createKey(user.id);
    const rotated = await agent.request<CreatedKey>('POST', `/api/v1/keys/${first.key.id}/rotate`, {
      graceSeconds: 3600,
    });
    expect(rotated.status).toBe(201);
    expect((await call(first.secret)).status).toBe(200);
    expect((await call(rotated.body.secret)).status).toBe(200);
    const again = await agent.request<CreatedKey>('POST', `/api/v1/keys/${rotated.body.key.id}/rotate`, {
      graceSeconds: 0,
    });
    expect((await call(rotated.body.secret)).body.code).toBe('GATEWAY_KEY_EXPIRED');
    expect((await call(again.body.secret)).status).toBe(200);
  });

  it('stops every key of a disabled user at once, and again works when enabled', async () => {
    const user = await createUser();
    const a = await createKey(user.id);
    const b = await createKey(user.id, { name: 'second' });
    await agent.request('PATCH', `/api/v1/users/${user.id}`, { active: false });
    for (const secret of [a.secret, b.secret]) expect((await call(secret)).body.code).toBe('GATEWAY_USER_DISABLED');
    await agent.request('PATCH', `/api/v1/users/${user.id}`, { active: true });
    expect((await call(a.secret)).status).toBe(200);
  });

  it('refuses the keys of a deleted user and keeps their usage', async () => {
    const user = await createUser();
    const { key, secret } = await createKey(user.id);
    expect((await call(secret)).status).toBe(200);
    expect((await agent.request('DELETE', `/api/v1/users/${user.id}`)).status).toBe(200);
    const response = await call(secret);
    expect(response.status).toBe(401);
    expect(['GATEWAY_USER_DELETED', 'GATEWAY_KEY_REVOKED']).toContain(response.body.code);
    expect(await rowsOf(`keyId=${key.id}`)).toHaveLength(1);
  });

  it('answers 403 for a key without the scope the route needs', async () => {
    const user = await createUser();
    const selfOnly = await createKey(user.id, { scopes: ['self'] });
    const gatewayOnly = await createKey(user.id, { scopes: ['gateway'] });
    const refused = await call(selfOnly.secret);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { type: 'permission_error' }, code: 'GATEWAY_SCOPE_MISSING' });
    expect((await call(gatewayOnly.secret, null, '/v1/me/usage')).status).toBe(403);
    expect((await call(selfOnly.secret, null, '/v1/me/usage')).status).toBe(200);
  });

  it('takes the key from Authorization: Bearer as well', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    expect((await call(null, ask('bearer'), '/v1/messages', { authorization: `Bearer ${secret}` })).status).toBe(200);
  });
});

describe('bad input', () => {
  let secret: string;
  beforeAll(async () => {
    secret = (await createKey((await createUser()).id)).secret;
  });

  it('answers broken JSON, a missing model and unknown routes in Anthropic’s error shape, and keeps serving', async () => {
    const broken = await fetch(`${agent.gatewayUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': secret, 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({
      error: { type: 'invalid_request_error' },
      code: 'GATEWAY_BODY_INVALID',
    });
    const noModel = await call(secret, { max_tokens: 5, messages: [] });
    expect(noModel.status).toBe(400);
    expect(noModel.body.error!.message).toMatch(/model/);
    const unknown = await call(secret, null, '/v1/complete');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: { type: 'not_found_error' }, code: 'GATEWAY_ROUTE_NOT_FOUND' });
    // The admin API is not on the public listener.
    expect((await call(secret, null, '/api/v1/users')).status).toBe(404);
    expect((await call(secret)).status).toBe(200);
  });

  it('refuses a body over the limit with 413 request_too_large, before reading it', async () => {
    // Only the headers go out: the gateway must answer from Content-Length alone, without waiting for 33 MB.
    const { status, body } = await headersOnly(`${agent.gatewayUrl}/v1/messages`, 'POST', {
      'x-api-key': secret,
      'content-type': 'application/json',
      'content-length': 33 * 1024 * 1024,
    });
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({ error: { type: 'request_too_large' }, code: 'GATEWAY_BODY_TOO_LARGE' });
  });
});

describe('rate limits', () => {
  it('lets a burst up to the per-minute limit through, then answers 429 with Retry-After', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id, { rateLimit: { requestsPerMinute: 3 } });
    const statuses: number[] = [];
    let last: CallResult | null = null;
    for (let i = 0; i < 4; i++) {
      last = await call(secret);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last!.body).toMatchObject({ error: { type: 'rate_limit_error' }, code: 'GATEWAY_RATE_LIMITED' });
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(last!.headers.get('x-ratelimit-limit')).toBe('3');
    expect(last!.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(last!.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
  });

  it('limits concurrent streams per key', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id, { rateLimit: { concurrentStreams: 1 } });
    const first = sdk(secret).messages.stream(ask('slow one !slow 100'));
    await new Promise<void>((resolve) => first.once('streamEvent', () => resolve()));
    const second = await call(secret, { ...ask('second'), stream: true });
    expect(second.status).toBe(429);
    expect(second.body.code).toBe('GATEWAY_STREAMS_EXHAUSTED');
    await first.finalMessage();
    // The stream's slot is free again once it ended.
    expect((await call(secret, { ...ask('third'), stream: true })).status).toBe(200);
  });
});

describe('quotas', () => {
  it('refuses requests once a daily token quota is used up, naming the quota and its reset', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    const set = await agent.request<{ quotas: QuotaStatus[] }>('PUT', `/api/v1/users/${user.id}/quotas`, {
      quotas: [{ window: 'day', maxTokens: 1000 }],
    });
    expect(set.status).toBe(200);
    expect((await call(secret, ask('!usage in=600 out=100 cw=0 cr=0'))).status).toBe(200);
    expect((await call(secret, ask('!usage in=300 out=100 cw=0 cr=0'))).status).toBe(200);
    const refused = await call(secret);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('GATEWAY_QUOTA_EXCEEDED');
    expect(refused.body.error!.message).toMatch(/[Dd]aily token quota/);
    expect(refused.body.error!.message).toMatch(/T00:00:00/);
    const quotas = await agent.request<{ quotas: QuotaStatus[] }>('GET', `/api/v1/users/${user.id}/quotas`);
    expect(quotas.body.quotas[0]).toMatchObject({ window: 'day', usedTokens: 1100, exceeded: true });
  });

  it('counts a streamed response in full, cache tokens included, so streaming cannot bypass a budget', async () => {
    const user = await createUser();
    const { key, secret } = await createKey(user.id);
    await agent.request('PUT', `/api/v1/keys/${key.id}/quotas`, { quotas: [{ window: '5h', maxTokens: 500 }] });
    const stream = sdk(secret).messages.stream(ask('!usage in=10 out=20 cw=200 cr=300'));
    await stream.finalMessage();
    const refused = await call(secret, { ...ask('more'), stream: true });
    expect(refused.status).toBe(429);
    expect(refused.body.error!.message).toMatch(/5-hour token quota/);
    const me = await call(secret, null, '/v1/me/quota');
    expect(me.body).toMatchObject({ quotas: [{ window: '5h', usedTokens: 530, remainingTokens: 0, exceeded: true }] });
  });

  it('counts a stream still running against the budget, so parallel streams cannot overrun it', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    await agent.request('PUT', `/api/v1/users/${user.id}/quotas`, { quotas: [{ window: 'day', maxTokens: 1000 }] });
    const running = sdk(secret).messages.stream(ask('big context !usage in=5000 out=10 cw=0 cr=0 !slow 100'));
    await new Promise<void>((resolve) => running.once('streamEvent', () => resolve()));
    // The first stream has not finished, but its 5000 input tokens are known: the budget is gone.
    const refused = await call(secret, { ...ask('second'), stream: true });
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('GATEWAY_QUOTA_EXCEEDED');
    await running.finalMessage();
    const quotas = await agent.request<{ quotas: QuotaStatus[] }>('GET', `/api/v1/users/${user.id}/quotas`);
    expect(quotas.body.quotas[0]).toMatchObject({ usedTokens: 5010, exceeded: true });
  });

  it('makes the official SDK fail at once on a used-up quota, retries on, with the reset in the answer', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    await agent.request('PUT', `/api/v1/users/${user.id}/quotas`, { quotas: [{ window: 'day', maxTokens: 10 }] });
    expect((await call(secret, ask('!usage in=50 out=5 cw=0 cr=0'))).status).toBe(200);
    let calls = 0;
    const client = new Anthropic({
      apiKey: secret,
      baseURL: agent.gatewayUrl,
      maxRetries: 3,
      fetch: (input, init) => {
        calls += 1;
        return fetch(input, init);
      },
    });
    // With a Retry-After until the reset, the SDK slept for hours before its first retry.
    const error = (await client.messages.create(ask('again')).catch((e: unknown) => e)) as InstanceType<
      typeof Anthropic.APIError
    >;
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(calls).toBe(1);
    expect(error.headers?.get('x-should-retry')).toBe('false');
    expect(error.headers?.get('retry-after')).toBeNull();
    expect(error.message).toContain(error.headers?.get('x-slotdeck-quota-reset'));
  });

  it('does not hand out a fresh budget when a key is rotated', async () => {
    const user = await createUser();
    const { key, secret } = await createKey(user.id);
    await agent.request('PUT', `/api/v1/keys/${key.id}/quotas`, { quotas: [{ window: 'day', maxTokens: 100 }] });
    expect((await call(secret, ask('!usage in=150 out=0 cw=0 cr=0'))).status).toBe(200);
    expect((await call(secret)).body.code).toBe('GATEWAY_QUOTA_EXCEEDED');
    const rotated = await agent.request<CreatedKey>('POST', `/api/v1/keys/${key.id}/rotate`, { graceSeconds: 60 });
    const refused = await call(rotated.body.secret);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('GATEWAY_QUOTA_EXCEEDED');
    const quotas = await agent.request<{ quotas: QuotaStatus[] }>('GET', `/api/v1/keys/${rotated.body.key.id}/quotas`);
    expect(quotas.body.quotas[0]).toMatchObject({ window: 'day', maxTokens: 100, usedTokens: 150 });
  });

  it('holds a cost quota too', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    await agent.request('PUT', `/api/v1/users/${user.id}/quotas`, { quotas: [{ window: 'month', maxCostUsd: 0.01 }] });
    // 1000 output tokens of Sonnet cost $0.015: over the budget after one request.
    expect((await call(secret, ask('!usage in=0 out=1000 cw=0 cr=0'))).status).toBe(200);
    const refused = await call(secret);
    expect(refused.status).toBe(429);
    expect(refused.body.error!.message).toMatch(/[Mm]onthly cost quota/);
  });
});

describe('self-service and legacy mode', () => {
  it('tells a user their usage, also as one status line', async () => {
    const user = await createUser();
    const { secret } = await createKey(user.id);
    await call(secret, ask('!usage in=1000 out=500 cw=0 cr=0'));
    const usage = await call(secret, null, '/v1/me/usage');
    expect(usage.body).toMatchObject({ user: { id: user.id }, today: { requests: 1, totalTokens: 1500 } });
    const line = await fetch(`${agent.gatewayUrl}/v1/me/usage?format=line`, { headers: { 'x-api-key': secret } });
    expect(await line.text()).toMatch(new RegExp(`^${user.username} · today 1\\.5k tok`));
  });

  it('attributes any key to the named user in legacy mode, and stops when it is switched off', async () => {
    const user = await createUser();
    const on = await agent.request('PATCH', '/api/v1/gateway', { legacyMode: { enabled: true, userId: user.id } });
    expect(on.body).toMatchObject({ legacyMode: { enabled: true, username: user.username } });
    expect((await call('any-old-key-string', ask('legacy'))).status).toBe(200);
    const [row] = await rowsOf(`userId=${user.id}`);
    expect(row).toMatchObject({ userId: user.id, keyId: null, status: 'success' });
    // A Slotdeck key that was stopped on purpose does not come back in under the legacy user.
    const disabled = await createUser();
    const { secret: disabledKey } = await createKey(disabled.id);
    await agent.request('PATCH', `/api/v1/users/${disabled.id}`, { active: false });
    expect((await call(disabledKey)).body.code).toBe('GATEWAY_USER_DISABLED');
    await agent.request('PATCH', '/api/v1/gateway', { legacyMode: { enabled: false, userId: null } });
    expect((await call('any-old-key-string')).status).toBe(401);
  });
});

describe('metered slots', () => {
  it('gives a metered slot a key of its owner and the gateway address, and meters its calls to the slot', async () => {
    const owner = await createUser();
    const slot = await agent.createSlot({ name: 'metered', ownerId: owner.id, metered: true, start: false });
    expect(slot.ownerId).toBe(owner.id);
    expect(slot.metered?.keyPrefix).toMatch(/^sk_user_/);
    await agent.request('POST', `/api/v1/slots/${slot.id}/start`);
    const env = readFileSync(join(agent.dataDir, 'slots', slot.id, 'env.sh'), 'utf8');
    expect(env).toContain(`export ANTHROPIC_BASE_URL='${agent.gatewayUrl}'`);
    const secret = /export ANTHROPIC_API_KEY='([^']+)'/.exec(env)?.[1];
    expect(secret).toMatch(/^sk_user_/);
    // The key is on disk for the slot only: the API never shows it.
    expect(JSON.stringify(await agent.slot(slot.id))).not.toContain(secret);
    expect((await call(secret!)).status).toBe(200);
    const [row] = await rowsOf(`userId=${owner.id}`);
    expect(row).toMatchObject({ slotId: slot.id, keyId: slot.metered!.keyId });
    const owned = await agent.request<{ slots: Array<{ id: string }> }>('GET', `/api/v1/slots?ownerId=${owner.id}`);
    expect(owned.body.slots.map((s) => s.id)).toEqual([slot.id]);
    await agent.request('DELETE', `/api/v1/slots/${slot.id}?workDir=remove`);
    expect((await call(secret!)).body.code).toBe('GATEWAY_KEY_REVOKED');
    const keys = await agent.request<{ keys: ApiKey[] }>('GET', `/api/v1/users/${owner.id}/keys`);
    expect(keys.body.keys[0]).toMatchObject({ slotId: slot.id, state: 'revoked' });
  });

  it('hands a rotated slot key to the slot, which uses it from its next start', async () => {
    const owner = await createUser();
    const slot = await agent.createSlot({ name: 'rotating', ownerId: owner.id, metered: true });
    const envFile = join(agent.dataDir, 'slots', slot.id, 'env.sh');
    const keyIn = (): string | undefined =>
      /export ANTHROPIC_API_KEY='([^']+)'/.exec(readFileSync(envFile, 'utf8'))?.[1];
    const before = keyIn();
    const rotated = await agent.request<CreatedKey>('POST', `/api/v1/keys/${slot.metered!.keyId}/rotate`, {
      graceSeconds: 0,
    });
    expect(rotated.status).toBe(201);
    expect((await agent.slot(slot.id)).metered?.keyId).toBe(rotated.body.key.id);
    await agent.request('POST', `/api/v1/slots/${slot.id}/restart`);
    expect(keyIn()).toBe(rotated.body.secret);
    expect(keyIn()).not.toBe(before);
    expect((await call(keyIn()!)).status).toBe(200);
    await agent.request('DELETE', `/api/v1/slots/${slot.id}?workDir=remove`);
  });

  it('refuses a disabled owner without leaving half a slot behind', async () => {
    const owner = await createUser();
    await agent.request('PATCH', `/api/v1/users/${owner.id}`, { active: false });
    const response = await agent.request<{ error: { code: string } }>('POST', '/api/v1/slots', {
      name: 'disabled-owner',
      ownerId: owner.id,
      metered: true,
    });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('USER_DISABLED');
    const slots = await agent.request<{ slots: Array<{ name: string }> }>('GET', '/api/v1/slots?name=disabled-owner');
    expect(slots.body.slots).toEqual([]);
  });

  it('refuses a metered slot without an owner', async () => {
    const response = await agent.request<{ error: { code: string; message: string } }>('POST', '/api/v1/slots', {
      name: 'no-owner',
      metered: true,
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/ownerId/);
  });
});

describe('a response delivered in full is on record', () => {
  it('keeps the usage row of a finished request when the agent is killed right after (kill -9)', async () => {
    const user = await createUser();
    const { key, secret } = await createKey(user.id);
    const stream = sdk(secret).messages.stream(ask('last words !usage in=42 out=24 cw=4 cr=2'));
    await stream.finalMessage();
    await agent.kill();
    await agent.launch();
    const rows = await rowsOf(`keyId=${key.id}`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ inputTokens: 42, outputTokens: 24, cacheCreationTokens: 4, cacheReadTokens: 2 });
  });
});
