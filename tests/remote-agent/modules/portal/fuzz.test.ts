/**
 * Fuzz (fast-check) of every portal route on the agent's public listener, with a session from the real sign-in:
 * hostile paths, queries, bodies, headers and sessions never get a 5xx, and every refusal is `{error: {code,
 * message}}` with a known code.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentErrorCode, CreateSlotBody, ErrorBody } from '../../../../remote-agent/src/contract/index.js';
import { startPortal, type PortalHarness, type PortalSession } from './harness.js';

let h: PortalHarness;
let session: PortalSession;
let slotId: string;
let keyId: string;
const KNOWN = new Set<string>(Object.values(AgentErrorCode));

beforeAll(async () => {
  h = await startPortal();
  expect((await h.admin('PUT', '/api/v1/auth/settings', { portalKeyLimit: 100 })).status).toBe(200);
  const ada = await h.newUser('ada');
  session = await h.signIn('ada');
  slotId = (await h.agent.slots.create(CreateSlotBody.parse({ name: 'fuzz', ownerId: ada.id, start: false }))).id;
  keyId = h.agent.users.createKey(ada.id, { name: 'k', scopes: ['self'] }).key.id;
});

afterAll(async () => {
  await h?.close();
});

const segment = fc.oneof(
  fc.constantFrom('aaaaaaaaaa', 'k_aaaaaaaaaa', '%00', '..', '%2e%2e', 'ÿ', '', 'x'.repeat(300)),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);

const path = fc.oneof(
  fc.constantFrom(
    '/api/public/portal/me',
    '/api/public/portal/slots',
    '/api/public/portal/keys',
    '/api/public/portal/usage',
    '/api/public/portal/quota',
    '/api/public/portal/prefs',
  ),
  fc
    .tuple(fc.oneof(fc.constant(null), segment), fc.constantFrom('start', 'stop', 'restart', 'ticket', 'x', ''))
    .map(([id, action]) => `/api/public/portal/slots/${id ?? '__SLOT__'}/${action}`),
  fc
    .tuple(fc.oneof(fc.constant(null), segment), fc.constantFrom('', '/revoke', '/rotate', '/x'))
    .map(([id, action]) => `/api/public/portal/keys/${id ?? '__KEY__'}${action}`),
  segment.map((s) => `/api/public/portal/${s}`),
);

const query = fc.oneof(
  fc.constant(''),
  fc
    .record(
      {
        from: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string({ maxLength: 30 }),
        ),
        to: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string({ maxLength: 30 }),
        ),
        groupBy: fc.constantFrom('day', 'model', 'user', ''),
        userId: fc.constantFrom('u_aaaaaaaaaa'),
      },
      { requiredKeys: [] },
    )
    .map((q) => `?${new URLSearchParams(q as Record<string, string>).toString()}`),
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 50 }),
  fc
    .record(
      {
        name: fc.oneof(fc.string({ maxLength: 80 }), fc.integer()),
        scopes: fc.oneof(fc.array(fc.constantFrom('gateway', 'self', 'admin')), fc.string()),
        expiresAt: fc.oneof(
          fc.constant(null),
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string({ maxLength: 30 }),
        ),
        graceSeconds: fc.oneof(fc.integer(), fc.double()),
        version: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.string({ maxLength: 3 })),
        theme: fc.constantFrom('light', 'dark', 'system', 'x'),
        terminalFontSize: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.double()),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
);

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
  path,
  query,
  body,
  contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', null),
  credentials: fc.constantFrom('valid', 'valid', 'valid', 'none', 'forged', 'no-csrf', 'other-origin'),
});

describe('portal routes under fuzz', () => {
  it('never answer 5xx, always a coded error (10,000 requests)', async () => {
    let reachedHandlers = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const url = r.path.replace('__SLOT__', slotId).replace('__KEY__', keyId) + r.query;
        const headers: Record<string, string> = {};
        const forged = `${session.cookie.split('=')[0]!}=forged.value`;
        if (r.credentials !== 'none') headers.cookie = r.credentials === 'forged' ? forged : session.cookie;
        if (r.credentials !== 'no-csrf') headers['x-slotdeck-csrf'] = session.csrf;
        headers.origin = r.credentials === 'other-origin' ? 'https://evil.example' : h.site;
        if (r.contentType && r.body !== undefined) headers['content-type'] = r.contentType;
        // Starting a slot would run it: the fuzz keeps to everything else on the slot routes.
        const safeUrl = url.replace(/\/(start|restart)(\?|$)/, '/stop$2');
        const response = await h.inject({
          method: r.method,
          url: safeUrl,
          headers,
          ...(r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD' ? { payload: r.body } : {}),
        });
        expect(response.statusCode).toBeLessThan(500);
        if (response.statusCode >= 400 && r.method !== 'HEAD') {
          const parsed = ErrorBody.safeParse(response.json());
          expect(parsed.success).toBe(true);
          expect(KNOWN.has(parsed.data!.error.code)).toBe(true);
          expect(parsed.data!.error.message.length).toBeGreaterThan(0);
        } else if (response.statusCode < 400) reachedHandlers++;
      }),
      { numRuns: 10_000 },
    );
    // The fuzz got past the session and validation often enough to exercise the handlers themselves.
    expect(reachedHandlers).toBeGreaterThan(200);
    expect(h.errorLogs).toEqual([]);
  }, 300_000);
});
