/**
 * Arbitrary requests against the public listener: whatever comes in, the answer is a well-formed Anthropic-shaped
 * error or success, never a 500, and the process keeps serving.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayErrorBody } from '../../../../remote-agent/src/contract/index.js';
import { rawExchange, startHarness, type Harness } from './harness.js';

const MODEL = 'claude-sonnet-4-6';

let h: Harness;
let url: string;
let validKey: string;
let revokedKey: string;
let otherUsersKey: string;

beforeAll(async () => {
  h = await startHarness({ config: { bodyTimeoutMs: 2000, upstreamTimeoutMs: 2000 } });
  url = await h.listen();
  validKey = h.newKey({ rateLimit: { requestsPerMinute: 1_000_000, concurrentStreams: 10_000 } }).created.secret;
  const revoked = h.newKey();
  h.users.revokeKey(revoked.created.key.id);
  revokedKey = revoked.created.secret;
  const other = h.newKey({ scopes: ['self'] });
  otherUsersKey = other.created.secret;
});
afterAll(() => h.close());

/** Printable ASCII without control characters: what inject lets through in a URL or header value. */
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});
const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);

const method = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  fc.constantFrom('SEARCH', 'PROPFIND', 'TRACE'),
);
const path = fc.oneof(
  fc.constantFrom(
    '/v1/messages',
    '/v1/messages/count_tokens',
    '/v1/models',
    `/v1/models/${MODEL}`,
    '/v1/me/usage',
    '/v1/me/usage?format=line',
    '/v1/me/quota',
    '/health',
    '/api/v1/users',
    '/',
  ),
  printable.map((s) => `/${encodeURI(s)}`),
  fc
    .tuple(fc.constantFrom('/v1/models/', '/v1/me/usage?format=', '/v1/messages?'), printable)
    .map(([prefix, rest]) => `${prefix}${encodeURIComponent(rest)}`),
);
/** Which key a request carries; resolved when it runs (the keys exist only once beforeAll made them). */
const key = fc.option(
  fc.oneof(
    fc.constantFrom('valid', 'valid', 'revoked', 'other-user-self-scope', 'wrong'),
    printable.map((text) => `raw:${text}`),
  ),
  { nil: undefined },
);
const keyOf = (tag: string): string =>
  tag === 'valid'
    ? validKey
    : tag === 'revoked'
      ? revokedKey
      : tag === 'other-user-self-scope'
        ? otherUsersKey
        : tag === 'wrong'
          ? 'sk_user_AAAAAAAAAAAAAAAAAAAAAA000000'
          : tag.slice(4);
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const messagesBody = fc
  .record(
    {
      model: fc.oneof(fc.constant(MODEL), fc.constant('claude-unknown-9'), jsonValue),
      max_tokens: fc.oneof(fc.constant(16), jsonValue),
      messages: fc.oneof(fc.constant([{ role: 'user', content: 'hi' }]), jsonValue),
      stream: fc.oneof(fc.boolean(), jsonValue),
    },
    { requiredKeys: [] },
  )
  .map((body) => JSON.stringify(body));
const wellFormed = fc
  .boolean()
  .map((stream) =>
    JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream }),
  );
const body = fc.option(
  fc.oneof(
    wellFormed,
    wellFormed,
    messagesBody,
    messagesBody,
    jsonValue.map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    messagesBody.map((b) => b.slice(0, Math.floor(b.length / 2))),
  ),
  { nil: undefined },
);
const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'x/y'),
    'anthropic-version': fc.oneof(fc.constant('2023-06-01'), printable),
    'anthropic-beta': printable,
    accept: fc.constantFrom('application/json', 'text/event-stream', '*/*'),
    extra: fc.tuple(token, printable),
  },
  { requiredKeys: [] },
);

function assertAnthropicShaped(status: number, contentType: string | undefined, text: string): void {
  expect(status).not.toBe(500);
  expect(status).toBeGreaterThanOrEqual(200);
  expect(status).toBeLessThan(600);
  if (status >= 400) {
    const parsed = GatewayErrorBody.safeParse(JSON.parse(text));
    expect(parsed.success, text).toBe(true);
    expect(parsed.data!.error.message.length).toBeGreaterThan(0);
    if (parsed.data!.code !== undefined) expect(parsed.data!.code).toMatch(/^GATEWAY_[A-Z_]+$/);
    return;
  }
  if (contentType?.startsWith('application/json')) expect(() => JSON.parse(text) as unknown).not.toThrow();
  else if (text !== '') expect(contentType).toMatch(/^(text\/event-stream|text\/plain)/);
}

/**
 * The answers on one connection, each with its status and its body (by Content-Length, which counts bytes: `text` is
 * read one byte a character; none for HEAD).
 */
function splitResponses(text: string, firstIsHead: boolean): Array<{ status: number; body: string }> {
  const answers: Array<{ status: number; body: string }> = [];
  let at = 0;
  while (at < text.length) {
    const status = /^HTTP\/1\.1 (\d{3})/.exec(text.slice(at));
    expect(status, text).not.toBeNull();
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const declared = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(at, headEnd))?.[1] ?? 0);
    // An answer to HEAD declares a length but has no body: the next answer (or nothing) follows its head at once.
    const length = firstIsHead && answers.length === 0 && !text.startsWith('{', headEnd + 4) ? 0 : declared;
    answers.push({ status: Number(status![1]), body: text.slice(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
  return answers;
}

describe('the public listener under arbitrary requests (fake upstream)', () => {
  it('answers 10,000 arbitrary requests in Anthropic’s shape, never with a 500', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(method, path, key, headers, body, async (m, p, k, hs, b) => {
        const { extra, ...named } = hs;
        const response = await h.gateway.app.inject({
          method: m as 'GET',
          url: p,
          headers: {
            ...named,
            ...(extra ? { [`x-${extra[0]}`]: extra[1] } : {}),
            ...(k === undefined ? {} : { 'x-api-key': keyOf(k) }),
          },
          ...(b === undefined || m === 'HEAD' ? {} : { payload: b }),
        });
        statuses.add(response.statusCode);
        if (m === 'HEAD') {
          expect(response.statusCode).not.toBe(500);
          return;
        }
        assertAnthropicShaped(
          response.statusCode,
          response.headers['content-type'] as string | undefined,
          response.body,
        );
      }),
      { numRuns: 10_000 },
    );
    // The runs reached every stage: refused keys and scopes, bad bodies, unknown routes, and upstream itself.
    for (const status of [200, 400, 401, 403, 404]) expect(statuses).toContain(status);
    // How many runs reach upstream varies with fast-check's seed (16 to 40 seen); a handful proves the stage ran.
    expect(h.upstream!.requests.length).toBeGreaterThan(5);
  }, 120_000);

  it('answers arbitrary bytes on a raw connection with Anthropic-shaped errors, and keeps serving', async () => {
    const requestLine = fc.oneof(
      fc.tuple(method, path).map(([m, p]) => `${m} ${p} HTTP/1.1\r\n`),
      fc.string({ maxLength: 80 }).map((s) => `${s}\r\n`),
    );
    const headerLines = fc.array(
      fc.oneof(
        fc.tuple(token, printable).map(([n, v]) => `${n}: ${v}\r\n`),
        fc.string({ maxLength: 60 }).map((s) => `${s}\r\n`),
        fc.constantFrom('Content-Length: 5\r\n', 'Content-Length: -1\r\n', 'Transfer-Encoding: chunked\r\n', 'KEY'),
      ),
      { maxLength: 6 },
    );
    await fc.assert(
      fc.asyncProperty(requestLine, headerLines, fc.uint8Array({ maxLength: 100 }), async (line, lines, tail) => {
        const withKey = lines.map((l) => (l === 'KEY' ? `x-api-key: ${validKey}\r\n` : l));
        const head = Buffer.concat([
          Buffer.from(`${line}Host: fuzz\r\n${withKey.join('')}\r\n`, 'latin1'),
          Buffer.from(tail),
        ]);
        const exchange = await rawExchange(url, head, null, 3000, { end: true });
        for (const answer of splitResponses(
          Buffer.from(exchange.response, 'utf8').toString('latin1'),
          line.startsWith('HEAD '),
        )) {
          expect(answer.status).not.toBe(500);
          if (answer.status >= 400 && answer.body !== '') {
            expect(GatewayErrorBody.safeParse(JSON.parse(answer.body)).success, exchange.response).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
    const alive = await fetch(`${url}/health`);
    expect(alive.status).toBe(200);
  }, 120_000);
});
