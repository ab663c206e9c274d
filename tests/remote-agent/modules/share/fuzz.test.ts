import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../../../../remote-agent/src/contract/index.js';
import { SITE_ORIGIN, startShares, type ShareHarness } from './harness.js';

let h: ShareHarness;
let slot: string;
let token: string;
let shareId: string;
let session: { cookie: string; csrf: string };

beforeAll(async () => {
  h = await startShares();
  const owner = h.addUser('owner');
  slot = h.addSlot('fuzzed', { ownerId: owner });
  session = h.sessions.signIn(owner);
  const created = h.shares.create(
    slot,
    { mode: 'read', expiresInMinutes: 60, signInRequired: false, frameAncestors: [] },
    'admin',
    { actor: { type: 'admin', id: null }, ip: null, userAgent: null },
  );
  token = created.link.split('/share/')[1]!;
  shareId = created.share.id;
});
afterAll(async () => {
  await h.close();
});

const KNOWN_CODES = new Set<string>(Object.values(AgentErrorCode));

/** Strings that are often almost right: the real token, a slot id or share id, mangled, or anything at all. */
const segment = fc.oneof(
  fc.constant('TOKEN'),
  fc.constant('SLOT'),
  fc.constant('SHARE'),
  fc.string({ maxLength: 60 }),
  fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
  fc.constantFrom('..', '%2e%2e', '%00', '%ff', 'sh_', '', ' ', '\u2028', '<script>'),
);
const fill = (value: string): string => value.replace('TOKEN', token).replace('SLOT', slot).replace('SHARE', shareId);

const route = fc.oneof(
  fc.record({
    method: fc.constantFrom('GET', 'HEAD', 'POST'),
    path: segment.map((s) => `/share/${encodeURIComponent(fill(s))}`),
  }),
  fc.record({
    method: fc.constantFrom('POST', 'GET', 'PUT'),
    path: segment.map((s) => `/api/public/share/${encodeURIComponent(fill(s))}/ticket`),
  }),
  fc.record({
    method: fc.constantFrom('GET', 'POST', 'DELETE'),
    path: segment.map((s) => `/api/public/portal/slots/${encodeURIComponent(fill(s))}/shares`),
  }),
  fc.record({
    method: fc.constantFrom('DELETE', 'GET'),
    path: segment.map((s) => `/api/public/portal/shares/${encodeURIComponent(fill(s))}`),
  }),
  fc.record({
    method: fc.constant('GET'),
    path: fc
      .tuple(segment, segment)
      .map(([s, t]) => `/api/public/terminal/${encodeURIComponent(fill(s))}?ticket=${encodeURIComponent(fill(t))}`),
  }),
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.json().map((json) => ({ type: 'application/json', payload: json })),
  fc
    .record({
      mode: fc.constantFrom('read', 'write', 'admin', 1),
      expiresInMinutes: fc.oneof(fc.integer(), fc.double(), fc.string()),
      signInRequired: fc.oneof(fc.boolean(), fc.string()),
      maxViewers: fc.option(fc.integer({ min: -5, max: 200 })),
      frameAncestors: fc.array(fc.oneof(fc.webUrl(), fc.string()), { maxLength: 12 }),
      allowedUserIds: fc.option(fc.array(fc.string(), { maxLength: 3 })),
    })
    .map((value) => ({ type: 'application/json', payload: JSON.stringify(value) })),
  fc.string({ maxLength: 200 }).map((text) => ({ type: 'text/plain', payload: text })),
);

const headers = fc.record(
  {
    origin: fc.constantFrom(SITE_ORIGIN, 'null', 'https://evil.example', 'not a url'),
    cookie: fc.constantFrom('SESSION', 'sid=00', 'sid='),
    'x-slotdeck-csrf': fc.constantFrom('CSRF', 'wrong'),
  },
  { requiredKeys: [] },
);

describe('public share routes under fuzz', () => {
  it('never answer 5xx, and every JSON error has a known code and a message', async () => {
    await fc.assert(
      fc.asyncProperty(route, body, headers, async (target, content, extra) => {
        const requestHeaders: Record<string, string> = { host: 'share.test' };
        for (const [name, value] of Object.entries(extra))
          requestHeaders[name] = value === 'SESSION' ? session.cookie : value === 'CSRF' ? session.csrf : value;
        if (content) requestHeaders['content-type'] = content.type;
        const response = await h.site.inject({
          method: target.method as 'GET',
          url: target.path,
          headers: requestHeaders,
          ...(content && target.method !== 'GET' && target.method !== 'HEAD' ? { payload: content.payload } : {}),
        });
        expect(response.statusCode, `${target.method} ${target.path}: ${response.body}`).toBeLessThan(500);
        // Pages answer HTML; the API answers coded JSON errors.
        if (response.statusCode >= 400 && target.path.startsWith('/api/public/') && target.method !== 'HEAD') {
          const error = response.json<{ error: { code: string; message: string } }>().error;
          expect(KNOWN_CODES.has(error.code), `${target.method} ${target.path}: ${response.body}`).toBe(true);
          expect(error.message.length).toBeGreaterThan(10);
        }
      }),
      { numRuns: 10_000 },
    );
  }, 600_000);
});
