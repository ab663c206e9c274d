/**
 * What clients rely on beyond the body of an answer: whether to retry (x-should-retry, Retry-After), the rate
 * headers on every answer, errors in Anthropic's shape, and the points of Anthropic's LLM-gateway protocol for Claude
 * Code (query strings, headers both ways, exact bytes, streams unbuffered with their pings). Real gateway and SQLite;
 * upstream is the fake Messages API or, where a test must see exactly what upstream received or send headers the
 * fake does not, a recording stand-in.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startHarness, type Harness } from './harness.js';

const MODEL = 'claude-sonnet-4-6';
const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  max_tokens: 64,
  messages: [{ role: 'user', content: text }],
  ...extra,
});
const PATIENCE_MS = 5000;

interface ErrorBody {
  type: string;
  error: { type: string; message: string };
  code: string;
}

/** Answers of the gateway as a client sees them: status, headers, body. */
interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

describe('retries, rate headers and error shapes (fake upstream)', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness({ config: { bodyLimitBytes: 4096 } });
    url = await h.listen();
  });
  afterAll(() => h.close());

  async function call(
    key: string | null,
    options: { path?: string; method?: string; body?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const method = options.method ?? 'POST';
    const response = await fetch(`${url}${options.path ?? '/v1/messages'}`, {
      method,
      headers: {
        ...(key ? { 'x-api-key': key } : {}),
        ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      ...(method === 'POST' ? { body: options.body ?? JSON.stringify(ask('hello')) } : {}),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  const revokedKey = (): string => {
    const { created } = h.newKey();
    h.users.revokeKey(created.key.id);
    return created.secret;
  };

  /** A user whose daily quota of 10 tokens is used up. */
  async function spentKey(): Promise<{ userId: string; keyId: string; secret: string }> {
    const { userId, created } = h.newKey();
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: 10, maxCostUsd: null }]);
    expect((await call(created.secret, { body: JSON.stringify(ask('!usage in=50 out=5')) })).status).toBe(200);
    return { userId, keyId: created.key.id, secret: created.secret };
  }

  it('tells clients not to retry a used-up quota, with no Retry-After and the reset in a header and the message', async () => {
    const { secret } = await spentKey();
    const answer = await call(secret);
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.text)).toMatchObject({
      error: { type: 'rate_limit_error' },
      code: 'GATEWAY_QUOTA_EXCEEDED',
    });
    expect(answer.headers.get('x-should-retry')).toBe('false');
    // A Retry-After until the reset made the official SDK sleep for hours (it honours any value).
    expect(answer.headers.get('retry-after')).toBeNull();
    const reset = answer.headers.get('x-slotdeck-quota-reset')!;
    expect(new Date(reset).toISOString()).toBe(reset);
    expect((JSON.parse(answer.text) as ErrorBody).error.message).toContain(reset);
  });

  it('makes the official SDK fail at once on a used-up quota and on a revoked key, even with retries on', async () => {
    const { secret } = await spentKey();
    for (const apiKey of [secret, revokedKey()]) {
      let calls = 0;
      const client = new Anthropic({
        apiKey,
        baseURL: url,
        maxRetries: 3,
        fetch: (input, init) => {
          calls += 1;
          return fetch(input, init);
        },
      });
      await expect(client.messages.create(ask('hi') as Anthropic.MessageCreateParamsNonStreaming)).rejects.toThrow();
      expect(calls).toBe(1);
    }
  });

  it('says x-should-retry: false wherever a retry cannot help', async () => {
    const selfOnly = h.newKey({ scopes: ['self'] }).created.secret;
    const valid = h.newKey().created.secret;
    const priced = h.newKey();
    h.setQuotas('user', priced.userId, [{ window: 'month', maxTokens: null, maxCostUsd: 5 }]);
    const cases: Array<[string, Promise<Answer>, number]> = [
      ['no key', call(null), 401],
      ['a revoked key', call(revokedKey()), 401],
      ['a missing scope', call(selfOnly), 403],
      ['an invalid body', call(valid, { body: '{"model": 1}' }), 400],
      ['an unknown route', call(valid, { path: '/v1/complete' }), 404],
      ['a body over the limit', call(valid, { body: JSON.stringify(ask('x'.repeat(5000))) }), 413],
      [
        'a model without a price under a cost quota',
        call(priced.created.secret, { body: JSON.stringify({ ...ask('hi'), model: 'claude-future-9' }) }),
        403,
      ],
    ];
    for (const [what, answer, status] of cases) {
      const { status: got, headers } = await answer;
      expect(got, what).toBe(status);
      expect(headers.get('x-should-retry'), what).toBe('false');
    }
  });

  it('lets clients retry a rate-limited request after a Retry-After of whole seconds, at most 60', async () => {
    const { created } = h.newKey({ rateLimit: { requestsPerMinute: 1 } });
    expect((await call(created.secret)).status).toBe(200);
    const limited = await call(created.secret);
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.text)).toMatchObject({ code: 'GATEWAY_RATE_LIMITED' });
    expect(limited.headers.get('x-should-retry')).toBe('true');
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    const seconds = Number(limited.headers.get('retry-after'));
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(60);
  });

  it('puts X-RateLimit-* on every answer: refused, not found, too large, self-service and health too', async () => {
    const { created } = h.newKey({ rateLimit: { requestsPerMinute: 7 } });
    const valid = created.secret;
    const answers: Array<[string, Answer, string]> = [
      ['200', await call(valid), '7'],
      ['401 without a key (default limit)', await call(null), '60'],
      ['401 of a revoked key', await call(revokedKey()), '60'],
      ['404', await call(valid, { path: '/v1/complete' }), '7'],
      ['413', await call(valid, { body: JSON.stringify(ask('x'.repeat(5000))) }), '7'],
      ['400', await call(valid, { body: '{"model": ' }), '7'],
      ['/v1/me/quota', await call(valid, { path: '/v1/me/quota', method: 'GET' }), '7'],
      ['/health', await call(null, { path: '/health', method: 'GET' }), '60'],
    ];
    for (const [what, answer, limit] of answers) {
      expect(answer.headers.get('x-ratelimit-limit'), what).toBe(limit);
      expect(answer.headers.get('x-ratelimit-remaining'), what).toMatch(/^\d+$/);
      expect(Number(answer.headers.get('x-ratelimit-reset')), what).toBeGreaterThan(0);
    }
    // Routes that take no request from the bucket (404, self-service) show it as it stands: 200, 413 and 400 took
    // three of seven.
    expect((await call(valid, { path: '/v1/me/quota', method: 'GET' })).headers.get('x-ratelimit-remaining')).toBe('4');
  });

  it('answers what the HTTP layer refuses in Anthropic’s shape, with a stable code and the usual headers', async () => {
    const valid = h.newKey().created.secret;
    const badUrl = await call(valid, { path: '/v1/models/%zz', method: 'GET' });
    expect(badUrl.status).toBe(400);
    expect(JSON.parse(badUrl.text)).toMatchObject({
      type: 'error',
      error: { type: 'invalid_request_error' },
      code: 'GATEWAY_REQUEST_MALFORMED',
    });
    expect(badUrl.headers.get('x-slotdeck-overhead-ms')).toMatch(/^\d+\.\d\d$/);

    const hugeHeaders = await rawExchange(
      url,
      `GET /v1/models HTTP/1.1\r\nHost: gateway\r\nx-api-key: ${valid}\r\nx-filler: ${'a'.repeat(20_000)}\r\n\r\n`,
      null,
      PATIENCE_MS,
    );
    expect(hugeHeaders.status).toBe(431);
    expect(hugeHeaders.body).toMatchObject({
      type: 'error',
      error: { type: 'request_too_large' },
      code: 'GATEWAY_HEADERS_TOO_LARGE',
    });
    const head = hugeHeaders.response.toLowerCase();
    expect(head).toContain('x-slotdeck-overhead-ms:');
    expect(head).toContain('x-ratelimit-limit:');
    expect(head).toContain('x-should-retry: false');

    const notHttp = await rawExchange(url, 'HELLO\r\n\r\n', null, PATIENCE_MS);
    expect(notHttp.status).toBe(400);
    expect(notHttp.body).toMatchObject({ type: 'error', code: 'GATEWAY_REQUEST_MALFORMED' });

    const badContentType = await call(valid, { headers: { 'content-type': ';;;' } });
    expect(badContentType.status).toBe(415);
    expect(JSON.parse(badContentType.text)).toMatchObject({ type: 'error', code: 'GATEWAY_BODY_INVALID' });
    expect((JSON.parse(badContentType.text) as ErrorBody).error.message).toContain('Content-Type: application/json');

    const badJson = await call(valid, { body: '{"model": ' });
    expect(JSON.parse(badJson.text)).toMatchObject({ type: 'error', code: 'GATEWAY_BODY_INVALID' });
  });

  it('puts x-slotdeck-overhead-ms on answers, streamed, refused and failed ones too', async () => {
    const valid = h.newKey().created.secret;
    const answers: Array<[string, Answer]> = [
      ['200', await call(valid)],
      ['stream', await call(valid, { body: JSON.stringify(ask('hi', { stream: true })) })],
      ['count_tokens', await call(valid, { path: '/v1/messages/count_tokens' })],
      ['models', await call(valid, { path: '/v1/models', method: 'GET' })],
      ['me', await call(valid, { path: '/v1/me/usage', method: 'GET' })],
      ['401', await call(null)],
      ['404', await call(valid, { path: '/nowhere', method: 'GET' })],
      ['413', await call(valid, { body: JSON.stringify(ask('x'.repeat(5000))) })],
      ['upstream 529', await call(valid, { body: JSON.stringify(ask('!error 529 overloaded_error')) })],
    ];
    for (const [what, answer] of answers) {
      expect(answer.headers.get('x-slotdeck-overhead-ms'), what).toMatch(/^\d+\.\d\d$/);
    }
  });

  it('passes a stream on without buffering, pings included, each before the next content event', async () => {
    const valid = h.newKey().created.secret;
    const response = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': valid, 'content-type': 'application/json' },
      // 100 ms between events upstream: a buffering gateway would hand them on together.
      body: JSON.stringify(ask('!slow 100', { stream: true })),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('event: ping')) {
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      seen += decoder.decode(value);
    }
    // Claude Code gives up after 300 s without a byte: a ping must reach it on its own, not with the next delta.
    expect(seen).not.toContain('content_block_delta');
    while (!(await reader.read()).done);
  });

  describe('the request log hook', () => {
    it('reports a revoked key’s 401 once, naming its user and key, never the key', async () => {
      const { userId, created } = h.newKey();
      h.users.revokeKey(created.key.id);
      const before = h.refusals.length;
      expect((await call(created.secret)).status).toBe(401);
      const reported = h.refusals.slice(before);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({
        status: 401,
        code: 'GATEWAY_KEY_REVOKED',
        userId,
        keyId: created.key.id,
        keyPrefix: null,
        method: 'POST',
        path: '/v1/messages',
      });
      expect(JSON.stringify(reported)).not.toContain(created.secret);
    });

    it('reports a used-up quota’s 429 once, with the user, the key and the model', async () => {
      const { userId, keyId, secret } = await spentKey();
      const before = h.refusals.length;
      expect((await call(secret, { path: '/v1/messages?beta=true' })).status).toBe(429);
      const reported = h.refusals.slice(before);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({
        status: 429,
        code: 'GATEWAY_QUOTA_EXCEEDED',
        userId,
        keyId,
        model: MODEL,
        path: '/v1/messages',
      });
      expect(reported[0]!.message).toMatch(/[Dd]aily token quota/);
    });

    it('reports a key it does not know by its first characters only', async () => {
      const before = h.refusals.length;
      const someoneElses = 'sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
      expect((await call(someoneElses)).status).toBe(401);
      const reported = h.refusals.slice(before);
      expect(reported).toMatchObject([
        { code: 'GATEWAY_KEY_MALFORMED', userId: null, keyId: null, keyPrefix: 'sk-ant-api03' },
      ]);
      expect(JSON.stringify(reported)).not.toContain(someoneElses);
    });

    it('reports nothing for an answered request or an unknown route', async () => {
      const valid = h.newKey().created.secret;
      const before = h.refusals.length;
      expect((await call(valid)).status).toBe(200);
      expect((await call(valid, { path: '/v1/complete' })).status).toBe(404);
      expect(h.refusals.length).toBe(before);
    });
  });
});

/** What the recording stand-in received, and how it answers. */
interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe('what reaches upstream and what comes back (recording stand-in upstream)', () => {
  let h: Harness;
  let stub: Server;
  const received: Received[] = [];
  let respond: (res: ServerResponse) => void = () => undefined;

  beforeAll(async () => {
    stub = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        respond(res);
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    h = await startHarness({
      upstream: false,
      config: { upstreamBaseUrl: `http://127.0.0.1:${(stub.address() as AddressInfo).port}` },
    });
  });
  afterAll(async () => {
    await h.close();
    stub.closeAllConnections();
    await new Promise((resolve) => stub.close(resolve));
  });

  const json =
    (status: number, body: unknown, headers: Record<string, string> = {}) =>
    (res: ServerResponse) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_stub', ...headers });
      res.end(text);
    };
  const message = { type: 'message', model: MODEL, content: [], usage: { input_tokens: 3, output_tokens: 2 } };

  const post = (path: string, payload: string | Buffer, headers: Record<string, string>) =>
    h.gateway.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/json', ...headers },
      payload,
    });

  it('forwards the query string (Claude Code sends /v1/messages?beta=true)', async () => {
    respond = json(200, message);
    const { created } = h.newKey();
    expect(
      (await post('/v1/messages?beta=true', JSON.stringify(ask('hi')), { 'x-api-key': created.secret })).statusCode,
    ).toBe(200);
    expect(received.at(-1)!.url).toBe('/v1/messages?beta=true');
    await post('/v1/messages/count_tokens?beta=true', JSON.stringify(ask('hi')), { 'x-api-key': created.secret });
    expect(received.at(-1)!.url).toBe('/v1/messages/count_tokens?beta=true');
  });

  it('sends upstream the exact bytes the client sent, key order and whitespace included', async () => {
    respond = json(200, message);
    const { created } = h.newKey();
    const body = Buffer.from(
      `{ "messages" :[ {"content":"hi",   "role":"user"} ],\n\t"max_tokens":  64 , "model":"${MODEL}", "z":1.50, "a" : {"y":2,"x":1} }`,
    );
    expect(JSON.stringify(JSON.parse(body.toString()))).not.toBe(body.toString());
    expect((await post('/v1/messages', body, { 'x-api-key': created.secret })).statusCode).toBe(200);
    expect(received.at(-1)!.body.equals(body)).toBe(true);
  });

  it('forwards every anthropic-* request header, and never the caller’s key in any header', async () => {
    respond = json(200, message);
    const { created } = h.newKey();
    const response = await post('/v1/messages', JSON.stringify(ask('hi')), {
      'x-api-key': created.secret,
      authorization: `Bearer ${created.secret}`,
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14',
      'anthropic-dangerous-direct-browser-access': 'true',
      'anthropic-some-future-option': 'on',
      'x-claude-code-session-id': 'session-123',
    });
    expect(response.statusCode).toBe(200);
    const { headers } = received.at(-1)!;
    expect(headers).toMatchObject({
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14',
      'anthropic-dangerous-direct-browser-access': 'true',
      'anthropic-some-future-option': 'on',
      'x-claude-code-session-id': 'session-123',
      'x-api-key': 'sk-ant-fake-upstream-key-0123456789',
    });
    expect(headers.authorization).toBeUndefined();
    expect(JSON.stringify(headers)).not.toContain(created.secret);
  });

  it.each([
    ['an upstream 429', 429, { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }],
    ['an upstream 529', 529, { type: 'error', error: { type: 'overloaded_error', message: 'overloaded' } }],
    ['a success', 200, message],
  ])('passes upstream’s retry and rate-limit headers back unchanged on %s', async (_what, status, body) => {
    const upstreamHeaders = {
      'retry-after': '17',
      'x-should-retry': status === 200 ? 'false' : 'true',
      'anthropic-ratelimit-requests-limit': '4000',
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-tokens-reset': '2026-12-01T11:00:00Z',
      'anthropic-ratelimit-unified-status': 'allowed',
    };
    respond = json(status, body, upstreamHeaders);
    const { created } = h.newKey();
    const response = await post('/v1/messages', JSON.stringify(ask('hi')), { 'x-api-key': created.secret });
    expect(response.statusCode).toBe(status);
    expect(response.headers).toMatchObject(upstreamHeaders);
    expect(response.json()).toEqual(body);
    expect(response.headers['x-slotdeck-overhead-ms']).toMatch(/^\d+\.\d\d$/);
  });
});
