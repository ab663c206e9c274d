import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startHarness, type Harness, type UsageRowRecord } from './harness.js';

const MODEL = 'claude-sonnet-4-6';
const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  max_tokens: 64,
  messages: [{ role: 'user', content: text }],
  ...extra,
});

interface ErrorBody {
  type: string;
  error: { type: string; message: string };
  code: string;
}

/** A POST's head with a declared body size, for uploads sent (or not) by hand. */
const postHead = (path: string, key: string | null, length: number): string =>
  `POST ${path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n` +
  `${key ? `x-api-key: ${key}\r\n` : ''}\r\n`;

/** How long a raw exchange may wait for the server; well above the timeouts configured here, never asserted. */
const PATIENCE_MS = 5000;

describe('checks before the body is read (fake upstream)', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness({ config: { bodyTimeoutMs: 300 } });
    url = await h.listen();
  });
  afterAll(() => h.close());

  const bigUpload = 32 * 1024 * 1024 - 1;

  it.each([
    ['no key', () => null, 'GATEWAY_KEY_MISSING'],
    ['a wrong key', () => 'sk_user_AAAAAAAAAAAAAAAAAAAAAA000000', 'GATEWAY_KEY_MALFORMED'],
    [
      'a revoked key',
      () => {
        const { created } = h.newKey();
        h.users.revokeKey(created.key.id);
        return created.secret;
      },
      'GATEWAY_KEY_REVOKED',
    ],
  ])('answers a 32 MB upload with %s 401 at once and closes it without reading the body', async (_what, key, code) => {
    const before = h.upstream!.requests.length;
    // Only the first 64 KiB of the declared 32 MB go out: the answer must not wait for the rest.
    const exchange = await rawExchange(
      url,
      postHead('/v1/messages', key(), bigUpload),
      Buffer.alloc(64 * 1024, 0x20),
      PATIENCE_MS,
    );
    expect(exchange.status).toBe(401);
    expect(exchange.body).toMatchObject({ type: 'error', error: { type: 'authentication_error' }, code });
    expect(exchange.response.toLowerCase()).toContain('connection: close');
    expect(exchange.closed).toBe(true);
    expect(h.upstream!.requests.length).toBe(before);
  });

  it('refuses an unauthenticated upload to an unknown route the same way', async () => {
    const exchange = await rawExchange(url, postHead('/v1/anything', null, bigUpload), Buffer.alloc(1024), PATIENCE_MS);
    expect(exchange.status).toBe(401);
    expect(exchange.closed).toBe(true);
  });

  it('closes a stalled upload of a valid key after the body timeout, with a 408 in Anthropic’s shape', async () => {
    const { created } = h.newKey();
    const before = h.upstream!.requests.length;
    const exchange = await rawExchange(
      url,
      postHead('/v1/messages', created.secret, 1000),
      Buffer.from('{"model": "claude'),
      PATIENCE_MS,
    );
    expect(exchange.status).toBe(408);
    expect(exchange.body).toMatchObject({
      type: 'error',
      error: { type: 'timeout_error' },
      code: 'GATEWAY_BODY_TIMEOUT',
    });
    expect((exchange.body as ErrorBody).error.message).toMatch(/send the request again/);
    expect(exchange.closed).toBe(true);
    expect(h.upstream!.requests.length).toBe(before);
  });

  it('still takes a whole upload of a valid key, sent in pieces', async () => {
    const { created } = h.newKey();
    const body = Buffer.from(JSON.stringify(ask('pieces')));
    const exchange = await rawExchange(
      url,
      postHead('/v1/messages', created.secret, body.length).replace('Host:', 'Connection: close\r\nHost:'),
      body,
      PATIENCE_MS,
    );
    expect(exchange.status).toBe(200);
    expect(exchange.body).toMatchObject({ type: 'message', content: [{ type: 'text' }] });
  });
});

describe('keys on every route (fake upstream)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  const routes: Array<[string, string, unknown]> = [
    ['POST', '/v1/messages', ask('hello')],
    ['POST', '/v1/messages/count_tokens', { model: MODEL, messages: [{ role: 'user', content: 'x' }] }],
    ['GET', '/v1/models', undefined],
    ['GET', `/v1/models/${MODEL}`, undefined],
    ['GET', '/v1/me/usage', undefined],
    ['GET', '/v1/me/quota', undefined],
    ['POST', '/v1/no-such-route', { any: 'thing' }],
  ];

  const send = (method: string, url: string, key: string | null, body: unknown) =>
    h.gateway.app.inject({
      method: method as 'GET' | 'POST',
      url,
      headers: { ...(key ? { 'x-api-key': key } : {}), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });

  it.each(routes)(
    '%s %s refuses a missing, a wrong, an unknown and a revoked key, and a disabled user',
    async (method, url, body) => {
      const before = h.upstream!.requests.length;
      const revoked = h.newKey();
      h.users.revokeKey(revoked.created.key.id);
      const disabled = h.newKey();
      h.users.update(disabled.userId, { active: false });
      const cases: Array<[string | null, string]> = [
        [null, 'GATEWAY_KEY_MISSING'],
        ['sk-ant-api03-someone-elses-anthropic-key', 'GATEWAY_KEY_MALFORMED'],
        [`${revoked.created.secret.slice(0, 12)}${'A'.repeat(revoked.created.secret.length - 12)}`, 'GATEWAY_KEY_'],
        [revoked.created.secret, 'GATEWAY_KEY_REVOKED'],
        [disabled.created.secret, 'GATEWAY_USER_DISABLED'],
      ];
      for (const [key, code] of cases) {
        const response = await send(method, url, key, body);
        expect(response.statusCode, `${key} on ${url}`).toBe(401);
        const error = response.json<ErrorBody>();
        expect(error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
        expect(error.code.startsWith(code)).toBe(true);
        // A refused key is never echoed back: it may be someone else's real key pasted by mistake.
        if (key) expect(response.body).not.toContain(key);
      }
      expect(h.upstream!.requests.length).toBe(before);
    },
  );

  it('shows each key its own user’s usage only, never another user’s', async () => {
    const alice = h.newKey();
    const bob = h.newKey();
    expect((await send('POST', '/v1/messages', alice.created.secret, ask('!usage in=100 out=50'))).statusCode).toBe(
      200,
    );
    const own = (await send('GET', '/v1/me/usage', bob.created.secret, undefined)).json<{
      user: { id: string };
      today: { requests: number };
    }>();
    expect(own.user.id).toBe(bob.userId);
    expect(own.today.requests).toBe(0);
    const alices = (await send('GET', '/v1/me/usage', alice.created.secret, undefined)).json<{
      user: { id: string };
      today: { requests: number };
    }>();
    expect(alices).toMatchObject({ user: { id: alice.userId }, today: { requests: 1 } });
  });

  it('answers 403 for a key without the route’s scope, before reading its body', async () => {
    const selfOnly = h.newKey({ scopes: ['self'] });
    const refused = await send('POST', '/v1/messages', selfOnly.created.secret, ask('hi'));
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: { type: 'permission_error' }, code: 'GATEWAY_SCOPE_MISSING' });
    const gatewayOnly = h.newKey({ scopes: ['gateway'] });
    expect((await send('GET', '/v1/me/quota', gatewayOnly.created.secret, undefined)).statusCode).toBe(403);
  });

  it('answers /health without a key', async () => {
    expect((await h.gateway.app.inject({ method: 'GET', url: '/health' })).json()).toEqual({ ok: true });
  });
});

describe('a request that declares a body on a route that reads none', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness();
    url = await h.listen();
  });
  afterAll(() => h.close());

  /** A GET (or HEAD) with a body of 100 MB announced and never sent. */
  const withBody = (method: string, path: string, key: string | null): string =>
    `${method} ${path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100000000\r\n` +
    `${key ? `x-api-key: ${key}\r\n` : ''}\r\n`;

  it.each([
    ['GET', '/health', false],
    ['HEAD', '/health', false],
    ['GET', '/v1/me/quota', true],
    ['GET', '/v1/models', true],
  ])('answers %s %s and then closes the connection instead of waiting for the body', async (method, path, keyed) => {
    const key = keyed ? h.newKey().created.secret : null;
    // A few bytes of the body arrive, then nothing: the server must not keep the socket for the rest.
    const exchange = await rawExchange(url, withBody(method, path, key), Buffer.from('{"a":'), PATIENCE_MS);
    expect(exchange.status).toBe(200);
    expect(exchange.response.toLowerCase()).toContain('connection: close');
    expect(exchange.closed).toBe(true);
  });

  it('keeps the connection of a GET without a body open for the next request', async () => {
    const exchange = await rawExchange(url, 'GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n', null, 300);
    expect(exchange.status).toBe(200);
    expect(exchange.response.toLowerCase()).not.toContain('connection: close');
    expect(exchange.closed).toBe(false);
  });
});

describe('the stream field and what upstream sends (fake upstream)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it.each([1, 'true', 'yes', null, {}])(
    'refuses "stream": %j with 400 invalid_request_error, as Anthropic does',
    async (stream) => {
      const { created } = h.newKey();
      const before = h.upstream!.requests.length;
      const response = await h.gateway.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
        payload: JSON.stringify(ask('hi', { stream })),
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        type: 'error',
        error: { type: 'invalid_request_error' },
        code: 'GATEWAY_BODY_INVALID',
      });
      expect(response.json<ErrorBody>().error.message).toMatch(/stream: must be true or false/);
      expect(h.upstream!.requests.length).toBe(before);
      expect(h.rows()).toHaveLength(0);
    },
  );

  it('refuses a second stream over the key’s limit, also when "stream" is the last of two', async () => {
    const { created } = h.newKey({ rateLimit: { concurrentStreams: 1 } });
    const url = await h.listen();
    const first = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      body: JSON.stringify(ask('slow !slow 100', { stream: true })),
    });
    const reader = first.body!.getReader();
    await reader.read();
    const second = await h.gateway.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      payload: `{"stream": false, "model": "${MODEL}", "max_tokens": 5, "messages": [], "stream": true}`,
    });
    expect(second.statusCode).toBe(429);
    expect(second.json()).toMatchObject({ code: 'GATEWAY_STREAMS_EXHAUSTED' });
    while (!(await reader.read()).done);
  });
});

describe('an upstream that answers with an event stream', () => {
  let h: Harness;
  let sse: Server;
  afterEach(async () => {
    await h?.close();
    await new Promise((resolve) => sse?.close(resolve));
  });

  it('is metered as a stream even when the request did not ask for one (stubbed upstream)', async () => {
    sse = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'request-id': 'req_sse' });
        const event = (type: string, data: object): string =>
          `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
        res.end(
          event('message_start', {
            message: { model: MODEL, usage: { input_tokens: 400, output_tokens: 1 } },
          }) +
            event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hi' } }) +
            event('message_delta', { usage: { output_tokens: 70 } }) +
            event('message_stop', {}),
        );
      });
    });
    await new Promise<void>((resolve) => sse.listen(0, '127.0.0.1', resolve));
    h = await startHarness({
      upstream: false,
      config: { upstreamBaseUrl: `http://127.0.0.1:${(sse.address() as AddressInfo).port}` },
    });
    const { created } = h.newKey();
    const response = await h.gateway.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      payload: JSON.stringify(ask('hi', { stream: false })),
    });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('message_stop');
    expect(h.rows()).toMatchObject([{ input_tokens: 400, output_tokens: 70, status: 'success' }]);
  });
});

describe('a client that leaves a stream early (fake upstream)', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness();
    url = await h.listen();
  });
  afterAll(() => h.close());

  it('is metered for the content it received, marked as an estimate, and counted in its quotas', async () => {
    const { userId, created } = h.newKey();
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: 1_000_000, maxCostUsd: null }]);
    const abort = new AbortController();
    const response = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      // Upstream holds message_delta back until the client is gone: the output count never arrives.
      body: JSON.stringify(ask('long answer !usage in=25 out=400 cw=0 cr=0 !stall-before-delta', { stream: true })),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    let seen = '';
    while (!seen.includes('content_block_stop')) seen += new TextDecoder().decode((await reader.read()).value);
    expect(seen).not.toContain('message_delta');
    abort.abort();
    await expect.poll(() => h.rows().length, { timeout: PATIENCE_MS }).toBe(1);
    const [row] = h.rows();
    // "Hello from the fake upstream." is 29 characters: at 3 characters a token, 10 output tokens, not the 1 that
    // message_start said.
    expect(row).toMatchObject({
      status: 'client_abort',
      error_type: 'client_abort_output_estimated',
      input_tokens: 25,
      output_tokens: 10,
    });
    expect(row!.cost_usd).toBeCloseTo((25 * 3 + 10 * 15) / 1e6, 12);
    expect(h.quotas.status('user', userId)[0]).toMatchObject({ usedTokens: 35 });
    // Mid-stream, the rest of the answer is of no use to anyone: upstream is stopped.
    await expect.poll(() => h.upstream!.requests.at(-1)?.aborted, { timeout: PATIENCE_MS }).toBe(true);
  });
});

describe('a client that leaves before upstream answered (fake upstream)', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness();
    url = await h.listen();
  });
  afterAll(() => h.close());

  const OPUS = 'claude-opus-4-6';
  /** Opus 4.6 list prices, USD per token. */
  const opusCost = (input: number, output: number, cacheWrite = 0, cacheRead = 0): number =>
    (input * 5 + output * 25 + cacheWrite * 6.25 + cacheRead * 0.5) / 1e6;

  /** Sends the request, and leaves as soon as upstream has it (long before upstream answers); its usage row. */
  async function leaveEarly(secret: string, body: unknown): Promise<UsageRowRecord> {
    const rows = h.rows().length;
    const before = h.upstream!.requests.length;
    const abort = new AbortController();
    const sent = fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': secret, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: abort.signal,
    }).catch((error: unknown) => error);
    await expect.poll(() => h.upstream!.requests.length, { timeout: PATIENCE_MS }).toBe(before + 1);
    abort.abort();
    expect(await sent).toBeInstanceOf(Error);
    await expect.poll(() => h.rows().length, { timeout: PATIENCE_MS }).toBe(rows + 1);
    return h.rows()[rows]!;
  }

  it('meters a non-streaming answer in full, lets upstream finish it, and counts it in the quotas', async () => {
    const { userId, created } = h.newKey();
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: 10_000_000, maxCostUsd: null }]);
    const row = await leaveEarly(created.secret, {
      ...ask('a very long prompt !usage in=100000 out=50 cw=0 cr=0 !wait 700'),
      model: OPUS,
    });
    expect(row).toMatchObject({ status: 'client_abort', input_tokens: 100_000, output_tokens: 50, http_status: 200 });
    expect(row.cost_usd).toBeCloseTo(opusCost(100_000, 50), 12);
    expect(h.upstream!.requests.at(-1)!.aborted).toBe(false);
    expect(h.quotas.status('user', userId)[0]).toMatchObject({ usedTokens: 100_050 });
  });

  it('meters a stream left before message_start for its input and cache tokens, then stops upstream', async () => {
    const { userId, created } = h.newKey();
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: 10_000_000, maxCostUsd: null }]);
    const row = await leaveEarly(created.secret, {
      ...ask('a very long prompt !usage in=100000 out=400 cw=7 cr=9 !wait 700 !slow 150', { stream: true }),
      model: OPUS,
    });
    // No content reached the client: output is what message_start said (1).
    expect(row).toMatchObject({
      status: 'client_abort',
      input_tokens: 100_000,
      output_tokens: 1,
      cache_creation_tokens: 7,
      cache_read_tokens: 9,
    });
    expect(row.cost_usd).toBeCloseTo(opusCost(100_000, 1, 7, 9), 12);
    expect(h.quotas.status('user', userId)[0]).toMatchObject({ usedTokens: 100_017 });
    // The rest of the stream is not read: upstream is stopped once message_start said the input.
    await expect.poll(() => h.upstream!.requests.at(-1)?.aborted, { timeout: PATIENCE_MS }).toBe(true);
  });
});

describe('prices and cost quotas (fake upstream)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  const send = (key: string, model: string) =>
    h.gateway.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      payload: JSON.stringify({ ...ask('!usage in=1000 out=1000'), model }),
    });

  it.each(['user', 'key'] as const)(
    'refuses a model without a price to a %s with a cost quota, saying the admin must price it',
    async (subject) => {
      const { userId, created } = h.newKey();
      h.setQuotas(subject, subject === 'user' ? userId : created.key.id, [
        { window: 'month', maxTokens: null, maxCostUsd: 5 },
      ]);
      const before = h.upstream!.requests.length;
      const response = await send(created.secret, 'claude-future-9');
      expect(response.statusCode).toBe(403);
      const body = response.json<ErrorBody>();
      expect(body).toMatchObject({ error: { type: 'permission_error' }, code: 'GATEWAY_MODEL_UNPRICED' });
      expect(body.error.message).toContain('claude-future-9');
      expect(body.error.message).toMatch(/admin/);
      expect(body.error.message).toContain('gateway.prices');
      expect(h.upstream!.requests.length).toBe(before);
      // Priced models still go through.
      expect((await send(created.secret, MODEL)).statusCode).toBe(200);
    },
  );

  it('lets a model without a price through for token quotas, and lists it in the gateway status', async () => {
    const { userId, created } = h.newKey();
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: 1_000_000, maxCostUsd: null }]);
    expect(h.gateway.status().unpricedModels).not.toContain('claude-unpriced-1');
    expect((await send(created.secret, 'claude-unpriced-1')).statusCode).toBe(200);
    expect(h.gateway.status().unpricedModels).toContain('claude-unpriced-1');
  });

  it('prices unknown models at the configured default price, so cost quotas hold for them', async () => {
    const priced = await startHarness({
      prices: { '*': { input: 10, output: 50, cacheWrite: 12.5, cacheRead: 1 } },
    });
    try {
      const { userId, created } = priced.newKey();
      priced.setQuotas('user', userId, [{ window: 'month', maxTokens: null, maxCostUsd: 0.05 }]);
      const response = await priced.gateway.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
        payload: JSON.stringify({ ...ask('!usage in=1000 out=1000 cw=0 cr=0'), model: 'claude-future-9' }),
      });
      expect(response.statusCode).toBe(200);
      expect(priced.rows()[0]!.cost_usd).toBeCloseTo((1000 * 10 + 1000 * 50) / 1e6, 12);
      expect(priced.gateway.status().unpricedModels).toEqual([]);
    } finally {
      await priced.close();
    }
  });
});

describe('upstream failures (fake upstream)', () => {
  it('answers 502 without the upstream URL or host, and logs them for the admin', async () => {
    const h = await startHarness({
      upstream: false,
      config: { upstreamBaseUrl: 'http://upstream-secret-host.invalid:8443/base' },
    });
    try {
      const { created } = h.newKey();
      for (const [url, payload] of [
        ['/v1/messages', JSON.stringify(ask('hi'))],
        ['/v1/messages', JSON.stringify(ask('hi', { stream: true }))],
        ['/v1/messages/count_tokens', JSON.stringify(ask('hi'))],
      ] as const) {
        const response = await h.gateway.app.inject({
          method: 'POST',
          url,
          headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
          payload,
        });
        expect(response.statusCode).toBe(502);
        expect(response.json()).toMatchObject({ error: { type: 'api_error' }, code: 'GATEWAY_UPSTREAM_UNREACHABLE' });
        expect(response.body).not.toMatch(/upstream-secret-host|\.invalid|8443|\/base|ENOTFOUND|getaddrinfo/);
      }
      expect(h.logs.join('\n')).toContain('upstream-secret-host.invalid');
    } finally {
      await h.close();
    }
  });

  it('answers 504 without the upstream URL or host', async () => {
    const h = await startHarness({ config: { upstreamTimeoutMs: 1000 } });
    try {
      const { created } = h.newKey();
      const response = await h.gateway.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
        payload: JSON.stringify(ask('wait !hang')),
      });
      expect(response.statusCode).toBe(504);
      expect(response.json()).toMatchObject({ error: { type: 'timeout_error' }, code: 'GATEWAY_UPSTREAM_TIMEOUT' });
      const { host, port } = new URL(h.upstream!.url);
      expect(response.body).not.toContain(host);
      expect(response.body).not.toContain(port);
    } finally {
      await h.close();
    }
  });
});
