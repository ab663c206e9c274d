/**
 * fast-check over every public sign-in route (10,000+ cases): any method, path variant, body, cookie, CSRF header and
 * Origin. Never a 5xx; every refusal is `{error: {code, message}}` with a code the contract knows.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AgentErrorCode } from '../../../../remote-agent/src/contract/index.js';
import { startAuthHarness, type Harness } from './harness.js';

const A = '/api/public/auth';
const KNOWN = new Set<string>(Object.values(AgentErrorCode));
let h: Harness;
let cookie: string;
let csrf: string;

beforeAll(async () => {
  h = await startAuthHarness();
  const signedIn = await h.signedInUser('fuzzed', 'violet lantern orbit 42');
  cookie = signedIn.jar.header()!;
  csrf = signedIn.csrf;
});
afterAll(async () => {
  await h?.close();
});

const paths = [
  `${A}/session`,
  `${A}/sign-in`,
  `${A}/sign-up`,
  `${A}/sign-out`,
  `${A}/sign-out-everywhere`,
  `${A}/two-factor/verify`,
  `${A}/two-factor/enable`,
  `${A}/two-factor/confirm`,
  `${A}/two-factor/disable`,
  `${A}/invites/accept`,
  `${A}/password`,
  `${A}/github/sign-in`,
  `${A}/github/link`,
  `${A}/callback/github`,
  `${A}/invites/`,
  `${A}/`,
  `${A}/get-session`,
  `${A}/sign-in/email`,
];

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const body = fc.oneof(
  jsonValue,
  fc.record(
    {
      login: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('fuzzed'), jsonValue),
      password: fc.oneof(fc.string({ maxLength: 300 }), jsonValue),
      code: fc.oneof(fc.stringMatching(/^\d{6}$/), fc.string({ maxLength: 30 })),
      token: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{43}$/), fc.string({ maxLength: 50 })),
      returnTo: fc.oneof(fc.constant('/'), fc.string({ maxLength: 60 })),
      currentPassword: fc.string({ maxLength: 40 }),
      newPassword: fc.string({ maxLength: 40 }),
      username: fc.string({ maxLength: 40 }),
      email: fc.string({ maxLength: 40 }),
    },
    { requiredKeys: [] },
  ),
);

it('never answers 5xx and always with a known code (10,000 cases)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
      fc.constantFrom(...paths),
      fc.oneof(fc.constant(''), fc.webSegment(), fc.string({ maxLength: 20 }).map(encodeURIComponent)),
      fc.oneof(
        fc.constant(''),
        fc.webQueryParameters().map((q) => `?${q}`),
      ),
      body,
      fc.constantFrom('valid', 'none', 'garbage'),
      fc.option(fc.oneof(fc.constant(csrf), fc.string({ maxLength: 50 }))),
      fc.constantFrom('same', 'other', 'none'),
      async (method, path, suffix, query, payload, cookieKind, csrfHeader, originKind) => {
        const headers: Record<string, string> = {};
        if (cookieKind === 'valid') headers.cookie = cookie;
        if (cookieKind === 'garbage') headers.cookie = '__Host-slotdeck-session=abc.def%ZZ; x=1';
        if (csrfHeader !== null) headers['x-slotdeck-csrf'] = csrfHeader;
        if (originKind === 'same') Object.assign(headers, { origin: h.origin, 'sec-fetch-site': 'same-origin' });
        if (originKind === 'other')
          Object.assign(headers, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
        // Never sign out the session the other cases use.
        const target = `${path}${suffix}${query}`;
        const harmless =
          !/sign-out|password|two-factor\/(disable|enable|confirm)/.test(target) ||
          cookieKind !== 'valid' ||
          csrfHeader !== csrf;
        const response = await h.agent.gateway!.app.inject({
          method: method as 'GET',
          url: harmless ? target : `${A}/session${query}`,
          headers,
          ...(method === 'GET' || method === 'DELETE'
            ? {}
            : { payload: JSON.stringify(payload), headers: { ...headers, 'content-type': 'application/json' } }),
        });
        expect(response.statusCode, `${method} ${target}`).toBeLessThan(500);
        if (response.statusCode >= 400) {
          const parsed = response.json<{ error: { code: string; message: string } }>();
          expect(KNOWN.has(parsed.error.code), parsed.error.code).toBe(true);
          expect(parsed.error.message.length).toBeGreaterThan(0);
        }
      },
    ),
    { numRuns: 10_000 },
  );
}, 600_000);
