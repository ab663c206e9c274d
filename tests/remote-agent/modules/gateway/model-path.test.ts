import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startHarness, type Harness } from './harness.js';

/** How long a raw exchange may wait for the server; never asserted. */
const PATIENCE_MS = 5000;

describe('GET /v1/models/<id> path (fake upstream stand-in)', () => {
  let h: Harness;
  let url: string;
  let secret: string;
  beforeAll(async () => {
    h = await startHarness();
    url = await h.listen();
    secret = h.newKey().created.secret;
  });
  afterAll(() => h.close());

  /** Sent on a raw socket: fetch would resolve `..` in the URL before it left. */
  const get = (path: string, key: string | null = secret) =>
    rawExchange(
      url,
      `GET ${path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n${key ? `x-api-key: ${key}\r\n` : ''}\r\n`,
      null,
      PATIENCE_MS,
    );

  it.each([
    '/v1/models/..',
    '/v1/models/.',
    '/v1/models/%2e%2e',
    '/v1/models/%2E',
    '/v1/models/..%3F',
    '/v1/models/a%2Fb',
  ])('refuses %s with a 404 in Anthropic’s shape and sends nothing upstream', async (path) => {
    const before = h.upstream!.requests.length;
    const exchange = await get(path);
    expect(exchange.status).toBe(404);
    expect(exchange.body).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error' },
      code: 'GATEWAY_MODEL_ID_INVALID',
    });
    expect((exchange.body as { error: { message: string } }).error.message).toContain('GET /v1/models');
    expect(h.upstream!.requests.length).toBe(before);
  });

  it('still passes a real model id upstream, and one with dots and @ as upstream spells it', async () => {
    expect((await get('/v1/models/claude-sonnet-4-6')).status).toBe(200);
    expect(h.upstream!.requests.at(-1)!.path).toBe('/v1/models/claude-sonnet-4-6');
    // Not a model the stand-in knows: upstream's own 404, but it got there.
    const before = h.upstream!.requests.length;
    await get('/v1/models/claude-3.5-sonnet@20241022');
    expect(h.upstream!.requests.length).toBe(before + 1);
    expect(h.upstream!.requests.at(-1)!.path).toBe('/v1/models/claude-3.5-sonnet%4020241022');
  });

  it('asks for a key before it looks at the model id', async () => {
    const exchange = await get('/v1/models/..', null);
    expect(exchange.status).toBe(401);
  });
});
