/**
 * The portal API's rules on the agent's public listener, with users signed in through the real sign-in routes: who
 * may read and change what, the admin's key limits, preferences, and that every refusal is a coded error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreatedPortalKey,
  CreateSlotBody,
  ErrorBody,
  PortalKey,
  PortalKeyList,
  PortalMe,
  PortalQuota,
  PortalSlotList,
  PortalUsage,
  type User,
} from '../../../../remote-agent/src/contract/index.js';
import { hashApiKey } from '../../../../remote-agent/src/modules/users/keys.js';
import { startPortal, type PortalHarness, type PortalSession } from './harness.js';

let h: PortalHarness;
let ada: User;
let bob: User;
let adaSession: PortalSession;
let bobSession: PortalSession;
let adaSlot: string;
let bobSlot: string;

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH';

interface Call {
  session?: { cookie: string; csrf: string } | null;
  /** Send the CSRF header (default true for state-changing methods). */
  csrf?: boolean | string;
  origin?: string | null;
  body?: unknown;
}

async function call(method: Method, url: string, options: Call = {}) {
  const session = options.session === undefined ? adaSession : options.session;
  const changing = method !== 'GET';
  const origin = options.origin === undefined ? (changing ? h.site : null) : options.origin;
  const csrf = options.csrf === undefined ? changing : options.csrf;
  const response = await h.inject({
    method,
    url,
    headers: {
      ...(session ? { cookie: session.cookie } : {}),
      ...(origin ? { origin } : {}),
      ...(session && csrf ? { 'x-slotdeck-csrf': typeof csrf === 'string' ? csrf : session.csrf } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(options.body !== undefined ? { payload: JSON.stringify(options.body) } : {}),
  });
  return { status: response.statusCode, body: response.json<unknown>(), headers: response.headers };
}

const codeOf = (body: unknown): string => ErrorBody.parse(body).error.code;

/** The admin's sign-in settings (what end users may do with keys). */
async function setLimits(changes: Record<string, unknown>): Promise<void> {
  const response = await h.admin('PUT', '/api/v1/auth/settings', changes);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

async function signOut(session: PortalSession): Promise<void> {
  const response = await h.inject({
    method: 'POST',
    url: '/api/public/auth/sign-out',
    headers: { cookie: session.cookie, 'x-slotdeck-csrf': session.csrf, origin: h.site },
  });
  expect(response.statusCode).toBe(200);
}

beforeAll(async () => {
  h = await startPortal();
  ada = await h.newUser('ada', { email: 'ada@example.com', displayName: 'Ada' });
  bob = await h.newUser('bob');
  adaSession = await h.signIn('ada');
  bobSession = await h.signIn('bob');
  await setLimits({ portalKeyLimit: 3, portalKeyScopes: ['gateway', 'self'] });
  adaSlot = (await h.agent.slots.create(CreateSlotBody.parse({ name: 'ada-dev', ownerId: ada.id, start: false }))).id;
  bobSlot = (await h.agent.slots.create(CreateSlotBody.parse({ name: 'bob-dev', ownerId: bob.id, start: false }))).id;
});

afterAll(async () => {
  await h?.close();
});

/** Every portal route with a valid body, for the credential tests. */
const ROUTES: Array<[Method, string, unknown?]> = [
  ['GET', '/api/public/portal/me'],
  ['GET', '/api/public/portal/slots'],
  ['POST', '/api/public/portal/slots/aaaaaaaaaa/start'],
  ['POST', '/api/public/portal/slots/aaaaaaaaaa/stop'],
  ['POST', '/api/public/portal/slots/aaaaaaaaaa/restart'],
  ['POST', '/api/public/portal/slots/aaaaaaaaaa/ticket'],
  ['GET', '/api/public/portal/keys'],
  ['POST', '/api/public/portal/keys', { name: 'x' }],
  ['PATCH', '/api/public/portal/keys/k_aaaaaaaaaa', { name: 'y' }],
  ['POST', '/api/public/portal/keys/k_aaaaaaaaaa/revoke'],
  ['POST', '/api/public/portal/keys/k_aaaaaaaaaa/rotate'],
  ['GET', '/api/public/portal/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z'],
  ['GET', '/api/public/portal/quota'],
  ['GET', '/api/public/portal/prefs'],
  ['PUT', '/api/public/portal/prefs', { version: 1, theme: 'dark', terminalFontSize: 14 }],
];

describe('credentials on every portal route', () => {
  it.each(ROUTES)('%s %s: no session is 401 AUTH_SESSION_REQUIRED', async (method, url, body) => {
    const response = await call(method, url, { session: null, body });
    expect(response.status).toBe(401);
    expect(codeOf(response.body)).toBe('AUTH_SESSION_REQUIRED');
  });

  it.each(ROUTES)('%s %s: a made-up or signed-out session is 401', async (method, url, body) => {
    const name = adaSession.cookie.split('=')[0]!;
    const forged = await call(method, url, { session: { cookie: `${name}=AAAA.BBBB`, csrf: 'x' }, body });
    expect(forged.status).toBe(401);
    const ended = await h.signIn('ada');
    await signOut(ended);
    const response = await call(method, url, { session: ended, body });
    expect(response.status).toBe(401);
    expect(codeOf(response.body)).toBe('AUTH_SESSION_REQUIRED');
  });

  const changing = ROUTES.filter(([method]) => method !== 'GET');
  it.each(changing)(
    '%s %s: a stolen cookie without the CSRF header, or from another Origin, is 403',
    async (m, url, body) => {
      const noHeader = await call(m, url, { csrf: false, body });
      expect(noHeader.status).toBe(403);
      expect(codeOf(noHeader.body)).toBe('AUTH_CSRF_REFUSED');
      const otherOrigin = await call(m, url, { origin: 'https://evil.example', body });
      expect(otherOrigin.status).toBe(403);
      expect(codeOf(otherOrigin.body)).toBe('AUTH_CSRF_REFUSED');
      const wrongToken = await call(m, url, { csrf: 'f'.repeat(32), body });
      expect(wrongToken.status).toBe(403);
      // Another user's CSRF token does not go with this cookie either.
      const bobsToken = await call(m, url, { csrf: bobSession.csrf, body });
      expect(bobsToken.status).toBe(403);
    },
  );
});

describe('me and preferences', () => {
  it('shows the signed-in user, the admin’s limits, preferences and the gateway URL of this page', async () => {
    const response = await call('GET', '/api/public/portal/me', { origin: null });
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const me = PortalMe.parse(response.body);
    expect(me.user).toEqual({ id: ada.id, username: 'ada', displayName: 'Ada', email: 'ada@example.com' });
    expect(me.limits).toEqual({ keyLimit: 3, allowedScopes: ['gateway', 'self'], mayShare: false });
    expect(me.prefs).toEqual({ version: 1, theme: 'system', terminalFontSize: 14 });
    expect(me.gatewayBaseUrl).toBe(h.site);
  });

  it('keeps preferences per user, and refuses an unknown version or a bad value saying what to send', async () => {
    const saved = await call('PUT', '/api/public/portal/prefs', {
      body: { version: 1, theme: 'dark', terminalFontSize: 18 },
    });
    expect(saved.status).toBe(200);
    expect((await call('GET', '/api/public/portal/prefs')).body).toEqual({
      version: 1,
      theme: 'dark',
      terminalFontSize: 18,
    });
    expect((await call('GET', '/api/public/portal/prefs', { session: bobSession })).body).toMatchObject({
      theme: 'system',
    });
    for (const body of [
      { version: 2, theme: 'dark', terminalFontSize: 18 },
      { version: 1, theme: 'neon', terminalFontSize: 18 },
      { version: 1, theme: 'dark', terminalFontSize: 30 },
      { version: 1, theme: 'dark', terminalFontSize: 14, extra: true },
      [1, 2],
      'dark',
    ]) {
      const refused = await call('PUT', '/api/public/portal/prefs', { body });
      expect(refused.status).toBe(400);
      const error = ErrorBody.parse(refused.body).error;
      expect(error.code).toBe('PORTAL_PREFS_INVALID');
      expect(error.message).toContain('"version": 1');
    }
    const future = await call('PUT', '/api/public/portal/prefs', { body: { version: 2, theme: 'dark' } });
    expect(ErrorBody.parse(future.body).error.message).toContain('version 2 is unknown');
    // Nothing refused was stored.
    expect((await call('GET', '/api/public/portal/prefs')).body).toMatchObject({ terminalFontSize: 18 });
  });
});

describe('my slots', () => {
  it('lists only the caller’s slots, without their command, env or folders', async () => {
    const response = await call('GET', '/api/public/portal/slots');
    const { slots } = PortalSlotList.parse(response.body);
    expect(slots.map((s) => s.id)).toEqual([adaSlot]);
    expect(slots[0]).toMatchObject({ name: 'ada-dev', state: 'stopped', claude: 'signed-out', metered: false });
    expect(Object.keys(slots[0]!)).not.toContain('env');
    expect(JSON.stringify(response.body)).not.toContain(h.dir);
  });

  it('reads Claude Code’s sign-in from the slot’s own config folder: presence of the credentials file, or an oauthAccount', async () => {
    const slot = await h.agent.slots.get(adaSlot);
    const configDir = join(slot.homeDir, '.claude');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, '.claude.json'), JSON.stringify({ numStartups: 3, oauthAccount: null }));
    const before = PortalSlotList.parse((await call('GET', '/api/public/portal/slots')).body).slots[0]!;
    expect(before.claude).toBe('signed-out');
    writeFileSync(
      join(configDir, '.claude.json'),
      JSON.stringify({ oauthAccount: { emailAddress: 'ada@example.com', organizationName: 'Ada' } }),
    );
    const after = PortalSlotList.parse((await call('GET', '/api/public/portal/slots')).body).slots[0]!;
    expect(after.claude).toBe('signed-in');
    // The account's details stay in the slot: the answer only says "signed-in".
    expect(JSON.stringify(after)).not.toContain('ada@example.com');
  });

  it('answers another user’s slot exactly like a missing one, for every action', async () => {
    for (const action of ['start', 'stop', 'restart', 'ticket']) {
      const theirs = await call('POST', `/api/public/portal/slots/${bobSlot}/${action}`);
      const missing = await call('POST', `/api/public/portal/slots/zzzzzzzzzz/${action}`);
      expect(theirs.status).toBe(404);
      expect(codeOf(theirs.body)).toBe('PORTAL_SLOT_NOT_YOURS');
      expect(missing.status).toBe(404);
      expect(ErrorBody.parse(theirs.body).error.message.replace(bobSlot, 'ID')).toBe(
        ErrorBody.parse(missing.body).error.message.replace('zzzzzzzzzz', 'ID'),
      );
    }
    expect((await h.agent.slots.get(bobSlot)).state).toBe('stopped');
  });

  it('stops the caller’s own slot, records who did it, and refuses a ticket for a stopped slot', async () => {
    const stopped = await call('POST', `/api/public/portal/slots/${adaSlot}/stop`);
    expect(stopped.status).toBe(200);
    expect(h.agent.slots.events(adaSlot, 5)[0]!.message).toBe('stopped by ada (portal)');
    const audit = h.db.prepare("SELECT actor_id, target FROM audit_log WHERE action = 'slot.stopped'").all();
    expect(audit).toEqual([{ actor_id: ada.id, target: adaSlot }]);
    const ticket = await call('POST', `/api/public/portal/slots/${adaSlot}/ticket`);
    expect(ticket.status).toBe(409);
    expect(codeOf(ticket.body)).toBe('SLOT_NOT_RUNNING');
  });
});

describe('my keys', () => {
  it('creates keys within the admin’s limit and scopes, shows the secret once with the lines to paste, audits it', async () => {
    const first = await call('POST', '/api/public/portal/keys', { body: { name: 'laptop' } });
    expect(first.status).toBe(201);
    const created = CreatedPortalKey.parse(first.body);
    expect(created.key).toMatchObject({ name: 'laptop', scopes: ['gateway', 'self'], editable: true, userId: ada.id });
    expect(created.shellLines).toBe(`export ANTHROPIC_BASE_URL=${h.site}\nexport ANTHROPIC_API_KEY=${created.secret}`);
    const list = PortalKeyList.parse((await call('GET', '/api/public/portal/keys')).body);
    expect(JSON.stringify(list)).not.toContain(created.secret);
    expect(list.activeOwnKeys).toBe(1);
    const audit = h.db
      .prepare("SELECT actor_id, target, detail_json FROM audit_log WHERE action = 'key.created'")
      .all();
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(created.secret);
    // Stored only as a hash.
    const row = h.db.prepare('SELECT hash FROM api_keys WHERE id = ?').get(created.key.id) as { hash: Buffer };
    expect(row.hash.equals(hashApiKey(created.secret))).toBe(true);

    await setLimits({ portalKeyScopes: ['self'] });
    const scope = await call('POST', '/api/public/portal/keys', { body: { name: 'x', scopes: ['gateway'] } });
    expect(scope.status).toBe(403);
    expect(codeOf(scope.body)).toBe('PORTAL_SCOPE_NOT_ALLOWED');
    const defaulted = CreatedPortalKey.parse(
      (await call('POST', '/api/public/portal/keys', { body: { name: 'status line' } })).body,
    );
    expect(defaulted.key.scopes).toEqual(['self']);
    await setLimits({ portalKeyScopes: ['gateway', 'self'] });

    await call('POST', '/api/public/portal/keys', { body: { name: 'third' } });
    const over = await call('POST', '/api/public/portal/keys', { body: { name: 'fourth' } });
    expect(over.status).toBe(409);
    expect(codeOf(over.body)).toBe('PORTAL_KEY_LIMIT');
    expect(PortalKeyList.parse((await call('GET', '/api/public/portal/keys')).body).activeOwnKeys).toBe(3);
    // Revoking one makes room again.
    await call('POST', `/api/public/portal/keys/${defaulted.key.id}/revoke`);
    expect((await call('POST', '/api/public/portal/keys', { body: { name: 'fourth' } })).status).toBe(201);
  });

  it('renames, changes the expiry, rotates and revokes only the caller’s own keys', async () => {
    const mine = CreatedPortalKey.parse(
      (await call('POST', '/api/public/portal/keys', { session: bobSession, body: { name: 'bob key' } })).body,
    );
    // Ada cannot touch Bob's key: it answers like a missing one.
    for (const [method, path, body] of [
      ['PATCH', '', { name: 'mine now' }],
      ['POST', '/revoke', undefined],
      ['POST', '/rotate', undefined],
    ] as const) {
      const theirs = await call(method, `/api/public/portal/keys/${mine.key.id}${path}`, { body });
      expect(theirs.status).toBe(404);
      expect(codeOf(theirs.body)).toBe('KEY_NOT_FOUND');
    }
    expect(h.agent.users.getKey(mine.key.id)).toMatchObject({ name: 'bob key', state: 'active' });

    const asBob = { session: bobSession };
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const renamed = await call('PATCH', `/api/public/portal/keys/${mine.key.id}`, {
      ...asBob,
      body: { name: 'bob laptop', expiresAt },
    });
    expect(renamed.status).toBe(200);
    expect(PortalKey.parse(renamed.body)).toMatchObject({ name: 'bob laptop', expiresAt });
    const past = await call('PATCH', `/api/public/portal/keys/${mine.key.id}`, {
      ...asBob,
      body: { expiresAt: '2020-01-01T00:00:00Z' },
    });
    expect(past.status).toBe(400);
    const rotated = CreatedPortalKey.parse(
      (await call('POST', `/api/public/portal/keys/${mine.key.id}/rotate`, { ...asBob, body: { graceSeconds: 0 } }))
        .body,
    );
    expect(rotated.secret).not.toBe(mine.secret);
    expect(rotated.shellLines).toContain(rotated.secret);
    const revoked = await call('POST', `/api/public/portal/keys/${rotated.key.id}/revoke`, asBob);
    expect(PortalKey.parse(revoked.body).state).toBe('revoked');
    const actions = h.db
      .prepare("SELECT action FROM audit_log WHERE actor_id = ? AND action LIKE 'key.%' ORDER BY id")
      .all(bob.id)
      .map((r) => (r as { action: string }).action);
    expect(actions).toEqual(['key.created', 'key.updated', 'key.rotated', 'key.revoked']);
  });

  it('keeps rotation within the admin’s key limit and scopes, and never lifts an expiry the admin set', async () => {
    const carol = await h.newUser('carol');
    const asCarol = { session: await h.signIn('carol') };
    await setLimits({ portalKeyLimit: 1, portalKeyScopes: ['gateway', 'self'] });
    try {
      const first = CreatedPortalKey.parse(
        (await call('POST', '/api/public/portal/keys', { ...asCarol, body: { name: 'only' } })).body,
      );
      const rotate = (id: string) =>
        call('POST', `/api/public/portal/keys/${id}/rotate`, { ...asCarol, body: { graceSeconds: 3600 } });
      const rotated = await rotate(first.key.id);
      expect(rotated.status).toBe(201);
      // The old key is rotating now: rotating it again would add another active key.
      const again = await rotate(first.key.id);
      expect(again.status).toBe(409);
      expect(codeOf(again.body)).toBe('KEY_NOT_ACTIVE');
      const list = PortalKeyList.parse((await call('GET', '/api/public/portal/keys', asCarol)).body);
      expect(list.activeOwnKeys).toBe(1);
      // The admin narrowed the scopes: the replacement gets only what is allowed now.
      await setLimits({ portalKeyScopes: ['self'] });
      const narrowed = CreatedPortalKey.parse((await rotate(CreatedPortalKey.parse(rotated.body).key.id)).body);
      expect(narrowed.key.scopes).toEqual(['self']);
      // The admin lowered the limit below what the user holds: no rotation adds to it.
      const adminKey = h.agent.users.createKey(carol.id, {
        name: 'from the admin',
        scopes: ['self'],
        expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      });
      expect((await rotate(narrowed.key.id)).status).toBe(409);
      await setLimits({ portalKeyLimit: 3 });
      // A key the admin issued with an expiry: sooner is fine, later or never is refused.
      const patch = (expiresAt: string | null) =>
        call('PATCH', `/api/public/portal/keys/${adminKey.key.id}`, { ...asCarol, body: { expiresAt } });
      for (const later of [null, new Date(Date.now() + 30 * 86_400_000).toISOString()]) {
        const refused = await patch(later);
        expect(refused.status).toBe(403);
        expect(codeOf(refused.body)).toBe('PORTAL_KEY_READ_ONLY');
      }
      const sooner = new Date(Date.now() + 86_400_000).toISOString();
      expect((await patch(sooner)).status).toBe(200);
      expect(h.agent.users.getKey(adminKey.key.id).expiresAt).toBe(sooner);
      // The user's own key (made in the portal, then rotated) may still be extended.
      const own = await call('PATCH', `/api/public/portal/keys/${narrowed.key.id}`, {
        ...asCarol,
        body: { expiresAt: null },
      });
      expect(own.status).toBe(200);
    } finally {
      await setLimits({ portalKeyLimit: 3, portalKeyScopes: ['gateway', 'self'] });
    }
  });

  it('lists the key the admin issued for a metered slot read-only', async () => {
    const slotKey = h.agent.users.createKey(bob.id, { name: 'slot bob-dev', scopes: ['gateway'] }, { slotId: bobSlot });
    const list = PortalKeyList.parse((await call('GET', '/api/public/portal/keys', { session: bobSession })).body);
    expect(list.keys.find((k) => k.id === slotKey.key.id)).toMatchObject({ editable: false, slotId: bobSlot });
    const refused = await call('POST', `/api/public/portal/keys/${slotKey.key.id}/revoke`, { session: bobSession });
    expect(refused.status).toBe(403);
    expect(codeOf(refused.body)).toBe('PORTAL_KEY_READ_ONLY');
    expect(h.agent.users.getKey(slotKey.key.id).state).toBe('active');
  });
});

describe('my usage and quota', () => {
  it('sums only the caller’s usage, per day or per model', async () => {
    const insert = h.db.prepare(
      `INSERT INTO usage_daily (bucket, user_id, key_id, model, provider, requests, errors, input_tokens,
         output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd) VALUES (?, ?, '', ?, 'anthropic', 1, 0, ?, 0, 0, 0, ?)`,
    );
    const day = Date.UTC(2026, 10, 20);
    insert.run(day, ada.id, 'claude-sonnet-4-5', 100, 0.5);
    insert.run(day, ada.id, 'claude-haiku-4-5', 50, 0.1);
    insert.run(day + 86_400_000, ada.id, 'claude-sonnet-4-5', 10, 0.05);
    insert.run(day, bob.id, 'claude-opus-4-1', 9999, 99);
    const url = (groupBy: string) =>
      `/api/public/portal/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&groupBy=${groupBy}`;
    const byDay = PortalUsage.parse((await call('GET', url('day'))).body);
    expect(byDay.totals.inputTokens).toBe(160);
    expect(byDay.groups.map((g) => [g.label, g.totals.inputTokens])).toEqual([
      ['2026-11-20', 150],
      ['2026-11-21', 10],
    ]);
    const byModel = PortalUsage.parse((await call('GET', url('model'))).body);
    expect(byModel.groups.map((g) => g.key)).toEqual(['claude-sonnet-4-5', 'claude-haiku-4-5']);
    expect(JSON.stringify(byModel)).not.toContain('opus');
    const reversed = await call('GET', '/api/public/portal/usage?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z');
    expect(codeOf(reversed.body)).toBe('USAGE_RANGE_INVALID');
    const userFilter = await call('GET', `${url('day')}&userId=${bob.id}`);
    expect(userFilter.status).toBe(400);
  });

  it('shows what each of the caller’s quotas and keys’ quotas leaves and when it resets, not other users’', async () => {
    const quotas = async (path: string, list: unknown[]) =>
      expect((await h.admin('PUT', path, { quotas: list })).status).toBe(200);
    await quotas(`/api/v1/users/${ada.id}/quotas`, [{ window: 'month', maxTokens: 1000 }]);
    await quotas(`/api/v1/users/${bob.id}/quotas`, [{ window: 'day', maxTokens: 5 }]);
    const key = CreatedPortalKey.parse(
      (await call('POST', '/api/public/portal/keys', { session: bobSession, body: { name: 'quota key' } })).body,
    );
    await quotas(`/api/v1/keys/${key.key.id}/quotas`, [{ window: '5h', maxCostUsd: 2 }]);
    const adas = PortalQuota.parse((await call('GET', '/api/public/portal/quota')).body);
    expect(adas.quotas).toHaveLength(1);
    expect(adas.quotas[0]).toMatchObject({ subject: 'user', window: 'month', remainingTokens: 1000, key: null });
    expect(Date.parse(adas.quotas[0]!.resetsAt)).toBeGreaterThan(Date.now());
    const bobs = PortalQuota.parse((await call('GET', '/api/public/portal/quota', { session: bobSession })).body);
    expect(bobs.quotas.map((q) => [q.subject, q.window, q.key?.name ?? null])).toEqual([
      ['user', 'day', null],
      ['key', '5h', 'quota key'],
    ]);
    expect(bobs.quotas[1]).toMatchObject({ remainingCostUsd: 2, remainingTokens: null });
  });
});
