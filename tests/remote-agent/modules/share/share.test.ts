import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  TerminalCloseCode,
  type CreatedShare,
  type Share,
  type ShareList,
  type ShareTicket,
} from '../../../../remote-agent/src/contract/index.js';

type ErrorBody = { error: { code: string; message: string } };
import { redactUrl } from '../../../../remote-agent/src/logger.js';
import { PUBLIC_URL, SITE_ORIGIN, startShares, type ShareHarness } from './harness.js';

let h: ShareHarness;
beforeEach(async () => {
  h = await startShares();
});
afterEach(async () => {
  await h.close();
});

const createBody = (overrides: Record<string, unknown> = {}) => ({
  mode: 'write',
  expiresInMinutes: 60,
  signInRequired: false,
  ...overrides,
});

async function createShare(slotId: string, overrides: Record<string, unknown> = {}) {
  const response = await h.admin.inject({
    method: 'POST',
    url: `/api/v1/slots/${slotId}/shares`,
    payload: createBody(overrides),
  });
  expect(response.statusCode, response.body).toBe(201);
  const created = response.json<CreatedShare>();
  const token = created.link.slice(`${PUBLIC_URL}/share/`.length);
  return { ...created, token };
}

const ticketFor = (token: string, headers: Record<string, string> = { origin: SITE_ORIGIN }) =>
  h.site.inject({ method: 'POST', url: `/api/public/share/${token}/ticket`, headers });

async function listen(): Promise<string> {
  await h.site.listen({ port: 0, host: '127.0.0.1' });
  const address = h.site.server.address() as { port: number };
  return `ws://127.0.0.1:${address.port}`;
}

function openSocket(
  url: string,
  origin: string | undefined,
): Promise<{ socket: WebSocket; closed: Promise<{ code: number; reason: string }>; output: () => string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, ['tty'], origin ? { origin } : {});
    let output = '';
    socket.on('message', (data: Buffer) => {
      if (data[0] === 0x30) output += data.subarray(1).toString('utf8');
    });
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      socket.on('close', (code, reason) => done({ code, reason: reason.toString() })),
    );
    socket.once('open', () => {
      socket.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 90, rows: 30 })));
      resolve({ socket, closed, output: () => output });
    });
    socket.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    socket.once('error', reject);
  });
}

describe('admin share routes', () => {
  it('creates a link shown once, with a 256-bit token, and lists the share without it', async () => {
    const slot = h.addSlot('demo');
    const created = await createShare(slot, {
      mode: 'read',
      label: 'for the review',
      frameAncestors: ['https://wiki.example.com'],
    });
    expect(created.link).toMatch(/^https:\/\/agent\.example\/share\/[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(created.token, 'base64url')).toHaveLength(32);
    expect(created.iframeSnippet).toBe(
      `<iframe src="${created.link}" width="100%" height="480" style="border:0" title="demo terminal"></iframe>`,
    );
    const list = await h.admin.inject({ method: 'GET', url: `/api/v1/slots/${slot}/shares` });
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(created.token);
    expect(list.json<ShareList>().shares).toEqual([
      expect.objectContaining({
        id: created.share.id,
        mode: 'read',
        label: 'for the review',
        state: 'active',
        viewersNow: 0,
        opens: 0,
        frameAncestors: ['https://wiki.example.com'],
        expiresAt: new Date(h.clock.now() + 3_600_000).toISOString(),
      }),
    ]);
  });

  it('gives writable shares clipboard-write in the iframe snippet (OSC 52), read-only ones none', async () => {
    const slot = h.addSlot('demo');
    expect((await createShare(slot, { mode: 'write' })).iframeSnippet).toContain('allow="clipboard-write"');
    expect((await createShare(slot, { mode: 'read' })).iframeSnippet).not.toContain('allow=');
  });

  it.each([
    [{ expiresInMinutes: 0 }, 'body.expiresInMinutes'],
    [{ expiresInMinutes: 43_201 }, 'body.expiresInMinutes'],
    [{ expiresInMinutes: undefined }, 'body.expiresInMinutes'],
    [{ maxViewers: 101 }, 'body.maxViewers'],
    [{ allowedUserIds: ['u_0123456789'] }, 'body.allowedUserIds'],
    [{ frameAncestors: ['https://*.example.com'] }, 'body.frameAncestors.0'],
    [{ frameAncestors: ['https://example.com/path'] }, 'body.frameAncestors.0'],
    [{ frameAncestors: ['ftp://example.com'] }, 'body.frameAncestors.0'],
    [{ frameAncestors: ["'self'"] }, 'body.frameAncestors.0'],
    [{ frameAncestors: ['https://a.example; script-src *'] }, 'body.frameAncestors.0'],
    [{ frameAncestors: Array.from({ length: 11 }, (_, i) => `https://e${i}.example`) }, 'body.frameAncestors'],
  ])('refuses %j with a coded 400 naming %s', async (overrides, path) => {
    const slot = h.addSlot('demo');
    const response = await h.admin.inject({
      method: 'POST',
      url: `/api/v1/slots/${slot}/shares`,
      payload: createBody(overrides),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json<ErrorBody>().error.code).toBe('VALIDATION_FAILED');
    expect(response.json<ErrorBody>().error.message).toContain(path);
  });

  it('answers 404 for an unknown slot or share', async () => {
    expect(
      (
        await h.admin.inject({ method: 'POST', url: '/api/v1/slots/zzzzzzzzzz/shares', payload: createBody() })
      ).json<ErrorBody>().error.code,
    ).toBe('SLOT_NOT_FOUND');
    expect(
      (await h.admin.inject({ method: 'DELETE', url: '/api/v1/shares/sh_0000000000' })).json<ErrorBody>().error.code,
    ).toBe('SHARE_NOT_FOUND');
  });

  it('needs the admin token on the agent (missing and wrong token refused)', async () => {
    const slot = h.addSlot('demo');
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }]) {
      for (const [method, url] of [
        ['POST', `/api/v1/slots/${slot}/shares`],
        ['GET', `/api/v1/slots/${slot}/shares`],
        ['DELETE', '/api/v1/shares/sh_0000000000'],
      ] as const) {
        const response = await h.agent.app.inject({
          method,
          url,
          headers,
          ...(method === 'POST' ? { payload: createBody() } : {}),
        });
        expect(response.statusCode, `${method} ${url}`).toBe(401);
      }
    }
  });
});

describe('the share page', () => {
  it('is served with no-referrer, unframeable by default, and its data without the token', async () => {
    const slot = h.addSlot('demo');
    const { token } = await createShare(slot, { mode: 'read' });
    const page = await h.site.inject({ method: 'GET', url: `/share/${token}` });
    expect(page.statusCode).toBe(200);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).not.toContain(token);
    expect(page.body).toContain('{"state":"active","slotName":"demo","mode":"read","signInRequired":false}');
  });

  it("lets only the share's listed origins frame it, also once revoked (the clear page shows in the frame)", async () => {
    const slot = h.addSlot('demo');
    const created = await createShare(slot, { frameAncestors: ['https://wiki.example.com', 'http://localhost:8080'] });
    const page = await h.site.inject({ method: 'GET', url: `/share/${created.token}` });
    expect(page.headers['content-security-policy']).toContain(
      'frame-ancestors https://wiki.example.com http://localhost:8080;',
    );
    expect(page.headers['x-frame-options']).toBeUndefined();
    await h.admin.inject({ method: 'DELETE', url: `/api/v1/shares/${created.share.id}` });
    const revoked = await h.site.inject({ method: 'GET', url: `/share/${created.token}` });
    expect(revoked.statusCode).toBe(410);
    expect(revoked.body).toContain('"state":"revoked"');
    expect(revoked.headers['content-security-policy']).toContain(
      'frame-ancestors https://wiki.example.com http://localhost:8080;',
    );
  });

  it('says expired (410) after the expiry, and not-found (404) for unknown and malformed tokens, unframeable', async () => {
    const slot = h.addSlot('demo');
    const { token } = await createShare(slot, { expiresInMinutes: 5, frameAncestors: ['https://wiki.example.com'] });
    h.clock.advance(5 * 60_000);
    const expired = await h.site.inject({ method: 'GET', url: `/share/${token}` });
    expect(expired.statusCode).toBe(410);
    expect(expired.body).toContain('"state":"expired"');
    for (const other of ['A'.repeat(43), 'short', `${token}x`]) {
      const page = await h.site.inject({ method: 'GET', url: `/share/${other}` });
      expect(page.statusCode).toBe(404);
      expect(page.body).toContain('"state":"not-found"');
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    }
  });
});

describe('the ticket exchange', () => {
  it('gives a public, read-only ticket leased to the share and bound to the page origin; counts and audits the open', async () => {
    const slot = h.addSlot('demo');
    const created = await createShare(slot, { mode: 'read' });
    const response = await ticketFor(created.token);
    expect(response.statusCode).toBe(201);
    const body = response.json<ShareTicket>();
    expect(body).toMatchObject({ mode: 'read', slotName: 'demo' });
    expect(body.url).toBe(`/api/public/terminal/${slot}?ticket=${encodeURIComponent(body.ticket)}`);
    expect(h.tickets.redeem(body.ticket)).toMatchObject({
      slotId: slot,
      mode: 'read-only',
      origin: SITE_ORIGIN,
      audience: 'public',
      lease: `share:${created.share.id}`,
    });
    const listed = (await h.admin.inject({ method: 'GET', url: `/api/v1/slots/${slot}/shares` })).json<ShareList>()
      .shares[0];
    expect(listed).toMatchObject({ opens: 1, lastOpenedAt: new Date(h.clock.now()).toISOString() });
    const audit = h.db.prepare("SELECT * FROM audit_log WHERE action = 'share.opened'").all() as Array<
      Record<string, string>
    >;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_type: 'anonymous', target: created.share.id, outcome: 'success' });
  });

  it('refuses unknown and malformed tokens alike, revoked and expired shares, and a stopped slot', async () => {
    const slot = h.addSlot('demo');
    const unknown = await ticketFor('B'.repeat(43));
    const malformed = await ticketFor('%00..%2f');
    expect([unknown.statusCode, malformed.statusCode]).toEqual([404, 404]);
    expect(unknown.json<ErrorBody>().error.code).toBe('SHARE_NOT_FOUND');
    expect(malformed.json<ErrorBody>().error).toEqual(unknown.json<ErrorBody>().error);

    const revoked = await createShare(slot);
    await h.admin.inject({ method: 'DELETE', url: `/api/v1/shares/${revoked.share.id}` });
    expect((await ticketFor(revoked.token)).json<ErrorBody>().error.code).toBe('SHARE_REVOKED');

    const expiring = await createShare(slot, { expiresInMinutes: 1 });
    h.clock.advance(60_000);
    const expired = await ticketFor(expiring.token);
    expect(expired.statusCode).toBe(410);
    expect(expired.json<ErrorBody>().error.code).toBe('SHARE_EXPIRED');

    const stopped = h.addSlot('stopped', { open: false });
    const stoppedShare = await createShare(stopped);
    expect((await ticketFor(stoppedShare.token)).json<ErrorBody>().error.code).toBe('SLOT_NOT_RUNNING');
  });

  it('lets a sign-in-required share open only for listed signed-in users', async () => {
    const slot = h.addSlot('demo');
    const alice = h.addUser('alice');
    const bob = h.addUser('bob');
    const { token } = await createShare(slot, { signInRequired: true, allowedUserIds: [alice] });
    const anonymous = await ticketFor(token);
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json<ErrorBody>().error.code).toBe('SHARE_SIGN_IN_REQUIRED');
    const asBob = await ticketFor(token, { origin: SITE_ORIGIN, cookie: h.sessions.signIn(bob).cookie });
    expect(asBob.statusCode).toBe(403);
    expect(asBob.json<ErrorBody>().error.code).toBe('SHARE_NOT_ALLOWED');
    const asAlice = await ticketFor(token, { origin: SITE_ORIGIN, cookie: h.sessions.signIn(alice).cookie });
    expect(asAlice.statusCode).toBe(201);
  });
});

describe('the public terminal route', () => {
  it('takes only public tickets of its slot, once, from their origin; admin tickets never', async () => {
    const slot = h.addSlot('demo');
    const other = h.addSlot('other');
    const { token } = await createShare(slot);
    const fresh = async () => (await ticketFor(token)).json<ShareTicket>().ticket;
    const upgrade = (slotId: string, ticket: string, origin = SITE_ORIGIN) =>
      h.site.inject({
        method: 'GET',
        url: `/api/public/terminal/${slotId}?ticket=${encodeURIComponent(ticket)}`,
        // Checked only on WebSocket upgrades (a plain GET uses nothing up); inject cannot upgrade, so the accepted
        // ticket ends at the handler's TERMINAL_NOT_WEBSOCKET.
        headers: { origin, upgrade: 'websocket', connection: 'Upgrade' },
      });

    // Accepted checks end at the handler, which wants a WebSocket upgrade.
    const ticket = await fresh();
    expect((await upgrade(slot, ticket)).json<ErrorBody>().error.code).toBe('TERMINAL_NOT_WEBSOCKET');
    const reused = await upgrade(slot, ticket);
    expect([reused.statusCode, reused.json<ErrorBody>().error.code]).toEqual([401, 'TERMINAL_TICKET_INVALID']);
    expect((await upgrade(other, await fresh())).json<ErrorBody>().error.code).toBe('TERMINAL_TICKET_INVALID');
    const stolen = await upgrade(slot, await fresh(), 'https://evil.example');
    expect([stolen.statusCode, stolen.json<ErrorBody>().error.code]).toEqual([403, 'TERMINAL_ORIGIN_REFUSED']);

    const admin = h.tickets.issue({ slotId: slot, mode: 'writable', origin: SITE_ORIGIN, audience: 'admin' }, 30_000);
    expect((await upgrade(slot, admin.ticket)).json<ErrorBody>().error.code).toBe('TERMINAL_TICKET_INVALID');
    // ...and the admin listener's route refuses public tickets.
    const onAdmin = await h.admin.inject({
      method: 'GET',
      url: `/api/v1/slots/${slot}/terminal?ticket=${encodeURIComponent(await fresh())}`,
      headers: { origin: SITE_ORIGIN, upgrade: 'websocket', connection: 'Upgrade' },
    });
    expect(onAdmin.json<ErrorBody>().error.code).toBe('TERMINAL_TICKET_INVALID');

    // A ticket handed out just before a revoke opens nothing after it.
    const beforeRevoke = await fresh();
    const shareId = (await h.admin.inject({ method: 'GET', url: `/api/v1/slots/${slot}/shares` })).json<ShareList>()
      .shares[0]!.id;
    await h.admin.inject({ method: 'DELETE', url: `/api/v1/shares/${shareId}` });
    expect((await upgrade(slot, beforeRevoke)).json<ErrorBody>().error.code).toBe('TERMINAL_TICKET_INVALID');
  });

  it('refuses a socket without ?ticket= at the upgrade (no AuthToken path on the public route)', async () => {
    const slot = h.addSlot('demo');
    const base = await listen();
    const admin = h.tickets.issue({ slotId: slot, mode: 'writable', origin: SITE_ORIGIN, audience: 'admin' }, 30_000);
    await expect(openSocket(`${base}/api/public/terminal/${slot}`, SITE_ORIGIN)).rejects.toThrow('HTTP 401');
    // The admin ticket was never looked at: it still works on its own route.
    expect(h.tickets.redeem(admin.ticket)).toMatchObject({ audience: 'admin' });
  });

  it('closes open viewers at once on revoke, and counts them (viewersNow, viewer limit)', async () => {
    const slot = h.addSlot('demo');
    const base = await listen();
    const created = await createShare(slot, { maxViewers: 1 });
    const first = await openSocket(`${base}${(await ticketFor(created.token)).json<ShareTicket>().url}`, SITE_ORIGIN);
    await expect.poll(() => h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(1);
    expect(
      (await h.admin.inject({ method: 'GET', url: `/api/v1/slots/${slot}/shares` })).json<ShareList>().shares[0]
        ?.viewersNow,
    ).toBe(1);
    const limited = await ticketFor(created.token);
    expect([limited.statusCode, limited.json<ErrorBody>().error.code]).toEqual([429, 'SHARE_VIEWER_LIMIT']);

    const revoke = await h.admin.inject({ method: 'DELETE', url: `/api/v1/shares/${created.share.id}` });
    expect(revoke.json()).toMatchObject({ state: 'revoked', viewersNow: 0 });
    expect(await first.closed).toEqual({ code: TerminalCloseCode.ACCESS_ENDED, reason: 'this share link was revoked' });
    const audit = h.db
      .prepare('SELECT action, outcome FROM audit_log WHERE target = ? ORDER BY id')
      .all(created.share.id);
    expect(audit).toEqual([
      { action: 'share.created', outcome: 'success' },
      { action: 'share.opened', outcome: 'success' },
      { action: 'share.opened', outcome: 'failure' },
      { action: 'share.revoked', outcome: 'success' },
    ]);
  });

  it('closes viewers of a share that expired while they watched (the sweep)', async () => {
    const slot = h.addSlot('demo');
    const base = await listen();
    const created = await createShare(slot, { expiresInMinutes: 1 });
    const viewer = await openSocket(`${base}${(await ticketFor(created.token)).json<ShareTicket>().url}`, SITE_ORIGIN);
    await expect.poll(() => h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(1);
    expect(h.shares.sweepExpired()).toBe(0);
    h.clock.advance(60_000);
    expect(h.shares.sweepExpired()).toBe(1);
    expect((await viewer.closed).code).toBe(TerminalCloseCode.ACCESS_ENDED);
  });
});

describe('owner shares in the portal', () => {
  it('lets the signed-in owner share, list and revoke (CSRF checked), nobody else, and only when the admin allows', async () => {
    const alice = h.addUser('alice');
    const bob = h.addUser('bob');
    const slot = h.addSlot('alices', { ownerId: alice });
    const a = h.sessions.signIn(alice);
    const b = h.sessions.signIn(bob);
    const post = (session: { cookie: string; csrf: string }, headers: Record<string, string> = {}) =>
      h.site.inject({
        method: 'POST',
        url: `/api/public/portal/slots/${slot}/shares`,
        headers: {
          cookie: session.cookie,
          'x-slotdeck-csrf': session.csrf,
          origin: SITE_ORIGIN,
          host: 'share.test',
          ...headers,
        },
        payload: createBody(),
      });
    expect(
      (
        await h.site.inject({ method: 'POST', url: `/api/public/portal/slots/${slot}/shares`, payload: createBody() })
      ).json<ErrorBody>().error.code,
    ).toBe('AUTH_SESSION_REQUIRED');
    // A cookie replayed from another site without the CSRF header.
    expect(
      (await post(a, { origin: 'https://evil.example', 'x-slotdeck-csrf': '' })).json<ErrorBody>().error.code,
    ).toBe('AUTH_CSRF_REFUSED');
    expect((await post(b)).json<ErrorBody>().error.code).toBe('PORTAL_SLOT_NOT_YOURS');
    const created = await post(a);
    expect(created.statusCode).toBe(201);
    const share = created.json<CreatedShare>().share as { id: string; createdBy: string };
    expect(share.createdBy).toBe(alice);
    const listByBob = await h.site.inject({
      method: 'GET',
      url: `/api/public/portal/slots/${slot}/shares`,
      headers: { cookie: b.cookie },
    });
    expect(listByBob.statusCode).toBe(404);
    const revokeByBob = await h.site.inject({
      method: 'DELETE',
      url: `/api/public/portal/shares/${share.id}`,
      headers: { cookie: b.cookie, 'x-slotdeck-csrf': b.csrf, origin: SITE_ORIGIN, host: 'share.test' },
    });
    expect(revokeByBob.json<ErrorBody>().error.code).toBe('SHARE_NOT_FOUND');
    const revoke = await h.site.inject({
      method: 'DELETE',
      url: `/api/public/portal/shares/${share.id}`,
      headers: { cookie: a.cookie, 'x-slotdeck-csrf': a.csrf, origin: SITE_ORIGIN, host: 'share.test' },
    });
    expect(revoke.json<Share>().state).toBe('revoked');
    h.settings.ownersMayShare = false;
    expect((await post(a)).json<ErrorBody>().error.code).toBe('SHARE_NOT_ALLOWED');
  });
});

describe('the share token stays secret', () => {
  it('is never in SQLite (database and WAL), the logs, the audit log or the list answers', async () => {
    const slot = h.addSlot('demo');
    const { token, share } = await createShare(slot);
    await h.site.inject({ method: 'GET', url: `/share/${token}` });
    await ticketFor(token);
    await h.site.inject({
      method: 'POST',
      url: `/api/public/share/${token}/ticket`,
      headers: { 'content-type': 'application/json' },
      payload: '{bad',
    });
    // The agent's admin listener logs every request URL.
    await h.agent.app.inject({ method: 'GET', url: `/share/${token}?ticket=${token}` });
    const list = await h.admin.inject({ method: 'GET', url: `/api/v1/slots/${slot}/shares` });
    expect(list.body).not.toContain(token);
    h.db.pragma('wal_checkpoint(PASSIVE)');
    for (const file of ['agent.db', 'agent.db-wal']) {
      const path = join(h.dir, file);
      if (existsSync(path)) expect(readFileSync(path).includes(Buffer.from(token))).toBe(false);
    }
    expect(h.logs.join('\n')).toContain('[redacted]');
    expect(h.logs.join('\n')).not.toContain(token);
    const audit = JSON.stringify(h.db.prepare('SELECT * FROM audit_log').all());
    expect(audit).toContain(share.id);
    expect(audit).not.toContain(token);
  });

  it('is redacted from logged URLs of the page and the ticket route', () => {
    const token = 'x'.repeat(43);
    expect(redactUrl(`/share/${token}`)).toBe('/share/[redacted]');
    expect(redactUrl(`/api/public/share/${token}/ticket`)).toBe('/api/public/share/[redacted]/ticket');
    expect(redactUrl(`/api/public/terminal/abc?ticket=${token}`)).toBe('/api/public/terminal/abc?ticket=[redacted]');
    expect(redactUrl('/api/v1/slots/abc/shares')).toBe('/api/v1/slots/abc/shares');
  });
});
