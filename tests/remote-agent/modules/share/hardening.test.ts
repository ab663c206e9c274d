import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  TerminalCloseCode,
  type CreatedShare,
  type Share,
  type ShareList,
  type ShareTicket,
} from '../../../../remote-agent/src/contract/index.js';
import { redactUrl } from '../../../../remote-agent/src/logger.js';
import { PUBLIC_URL, SITE_ORIGIN, startShares, type ShareHarness } from './harness.js';

type ErrorBody = { error: { code: string; message: string } };

let h: ShareHarness;
afterEach(async () => {
  await h.close();
});

async function createShare(slotId: string, overrides: Record<string, unknown> = {}) {
  const response = await h.admin.inject({
    method: 'POST',
    url: `/api/v1/slots/${slotId}/shares`,
    payload: { mode: 'write', expiresInMinutes: 60, signInRequired: false, ...overrides },
  });
  expect(response.statusCode, response.body).toBe(201);
  const created = response.json<CreatedShare>();
  return { ...created, token: created.link.slice(`${PUBLIC_URL}/share/`.length) };
}

const ticketFor = (token: string, headers: Record<string, string> = { origin: SITE_ORIGIN }) =>
  h.site.inject({ method: 'POST', url: `/api/public/share/${token}/ticket`, headers });

async function listen(): Promise<string> {
  await h.site.listen({ port: 0, host: '127.0.0.1' });
  return `ws://127.0.0.1:${(h.site.server.address() as { port: number }).port}`;
}

/** An upgraded socket that has not sent its opening message yet (`open()` sends it). */
function upgraded(url: string) {
  const socket = new WebSocket(url, ['tty'], { origin: SITE_ORIGIN });
  const closed = new Promise<{ code: number; reason: string }>((done) =>
    socket.on('close', (code, reason) => done({ code, reason: reason.toString() })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    socket.once('error', reject);
  });
  const open = () => socket.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 90, rows: 30 })));
  return { socket, closed, ready, open };
}

async function viewer(base: string, token: string, cookie?: string) {
  const response = await ticketFor(token, { origin: SITE_ORIGIN, ...(cookie ? { cookie } : {}) });
  expect(response.statusCode, response.body).toBe(201);
  const socket = upgraded(`${base}${response.json<ShareTicket>().url}`);
  await socket.ready;
  socket.open();
  return socket;
}

const auditRows = (shareId: string) =>
  h.db.prepare('SELECT action, outcome FROM audit_log WHERE target = ? ORDER BY id').all(shareId);

describe('access is checked again when the viewer opens (review-share 1, 4, 15)', () => {
  it('closes a socket upgraded before a revoke that sends its opening after it', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    const base = await listen();
    const created = await createShare(slot);
    const waiting = upgraded(`${base}${(await ticketFor(created.token)).json<ShareTicket>().url}`);
    await waiting.ready;
    await h.admin.inject({ method: 'DELETE', url: `/api/v1/shares/${created.share.id}` });
    waiting.open();
    expect((await waiting.closed).code).toBe(TerminalCloseCode.ACCESS_ENDED);
    expect(h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(0);
  });

  it('closes a socket upgraded before the expiry that sends its opening after the sweep', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    const base = await listen();
    const created = await createShare(slot, { expiresInMinutes: 1 });
    const waiting = upgraded(`${base}${(await ticketFor(created.token)).json<ShareTicket>().url}`);
    await waiting.ready;
    h.clock.advance(60_000);
    expect(h.shares.sweepExpired()).toBe(0);
    waiting.open();
    expect((await waiting.closed).code).toBe(TerminalCloseCode.ACCESS_ENDED);
    // Still watched after the first sweep that found it ended.
    expect(h.shares.sweepExpired()).toBe(0);
    expect(h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(0);
  });

  it("closes a signed-in viewer of a sign-in-required share when their session ends, not others'", async () => {
    h = await startShares();
    const alice = h.addUser('alice');
    const slot = h.addSlot('demo');
    const base = await listen();
    const created = await createShare(slot, { signInRequired: true, allowedUserIds: [alice] });
    const first = h.sessions.signIn(alice);
    const second = h.sessions.signIn(alice);
    const signedOut = await viewer(base, created.token, first.cookie);
    const stays = await viewer(base, created.token, second.cookie);
    await expect.poll(() => h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(2);
    // What the portal does when the guard reports ended sessions.
    h.tickets.revokeLease(`session:${first.sessionId}`);
    expect(h.agent.terminals.disconnectLease(`session:${first.sessionId}`, 'your session ended; sign in again')).toBe(
      1,
    );
    expect((await signedOut.closed).code).toBe(TerminalCloseCode.ACCESS_ENDED);
    expect(h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(1);
    // A ticket of that session taken a moment before opens nothing.
    const third = h.sessions.signIn(alice);
    const pending = await ticketFor(created.token, { origin: SITE_ORIGIN, cookie: third.cookie });
    h.tickets.revokeLease(`session:${third.sessionId}`);
    await expect(
      (async () => {
        const socket = upgraded(`${base}${pending.json<ShareTicket>().url}`);
        await socket.ready;
      })(),
    ).rejects.toThrow('HTTP 401');
    stays.socket.close();
  });
});

describe('places (review-share 5)', () => {
  it('allows 20 viewers per share without maxViewers, and keeps 8 of the slot’s 64 places from public viewers', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    const base = await listen();
    const shares = [await createShare(slot), await createShare(slot), await createShare(slot)];
    const sockets = [];
    for (let i = 0; i < 20; i += 1) sockets.push(await viewer(base, shares[0]!.token));
    await expect.poll(() => h.agent.terminals.leaseViewers(`share:${shares[0]!.share.id}`)).toBe(20);
    const limited = await ticketFor(shares[0]!.token);
    expect([limited.statusCode, limited.json<ErrorBody>().error.code]).toEqual([429, 'SHARE_VIEWER_LIMIT']);
    for (let i = 0; i < 20; i += 1) sockets.push(await viewer(base, shares[1]!.token));
    for (let i = 0; i < 16; i += 1) sockets.push(await viewer(base, shares[2]!.token));
    await expect.poll(() => h.agent.terminals.viewers(slot).writable).toBe(56);
    const refused = await viewer(base, shares[2]!.token);
    expect((await refused.closed).code).toBe(1013);
    // The admin still gets in.
    const admin = h.tickets.issue({ slotId: slot, mode: 'writable', origin: null, audience: 'admin' }, 30_000);
    await h.admin.listen({ port: 0, host: '127.0.0.1' });
    const adminPort = (h.admin.server.address() as { port: number }).port;
    const console = new WebSocket(`ws://127.0.0.1:${adminPort}/api/v1/slots/${slot}/terminal?ticket=${admin.ticket}`, [
      'tty',
    ]);
    await new Promise((resolve) => console.once('open', resolve));
    console.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 80, rows: 24 })));
    await expect.poll(() => h.agent.terminals.viewers(slot).writable).toBe(57);
    console.close();
    for (const socket of sockets) socket.socket.close();
  }, 60_000);
});

describe('the ticket exchange refuses floods and pages that cannot open (review-share 7, 8, 13)', () => {
  it('throttles per address with 429 SHARE_THROTTLED and Retry-After', async () => {
    h = await startShares({
      exchangeLimits: { perAddress: { burst: 3, refillMs: 60_000 }, perShare: { burst: 100, refillMs: 1 } },
    });
    const slot = h.addSlot('demo');
    const created = await createShare(slot);
    for (let i = 0; i < 3; i += 1) expect((await ticketFor(created.token)).statusCode).toBe(201);
    const refused = await ticketFor(created.token);
    expect([refused.statusCode, refused.json<ErrorBody>().error.code]).toEqual([429, 'SHARE_THROTTLED']);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Unknown tokens count too: guessing is throttled the same way.
    expect((await ticketFor('C'.repeat(43))).statusCode).toBe(429);
  });

  it('throttles per share, whatever the address', async () => {
    h = await startShares({
      exchangeLimits: { perAddress: { burst: 100, refillMs: 1 }, perShare: { burst: 2, refillMs: 60_000 } },
    });
    const slot = h.addSlot('demo');
    const created = await createShare(slot);
    const other = await createShare(slot);
    for (let i = 0; i < 2; i += 1) expect((await ticketFor(created.token)).statusCode).toBe(201);
    expect((await ticketFor(created.token)).json<ErrorBody>().error.code).toBe('SHARE_THROTTLED');
    expect((await ticketFor(other.token)).statusCode).toBe(201);
  });

  it('writes one failure audit row per share and address a minute, however often an old link is tried', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    const created = await createShare(slot);
    await h.admin.inject({ method: 'DELETE', url: `/api/v1/shares/${created.share.id}` });
    for (let i = 0; i < 10; i += 1) expect((await ticketFor(created.token)).statusCode).toBe(410);
    expect(auditRows(created.share.id)).toEqual([
      { action: 'share.created', outcome: 'success' },
      { action: 'share.revoked', outcome: 'success' },
      { action: 'share.opened', outcome: 'failure' },
    ]);
    h.clock.advance(60_000);
    await ticketFor(created.token);
    expect(auditRows(created.share.id)).toHaveLength(4);
  });

  it('refuses Origin: null and a missing Origin before minting: no ticket, no open counted or audited', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    const created = await createShare(slot);
    for (const headers of [{ origin: 'null' }, {}] as Array<Record<string, string>>) {
      const refused = await ticketFor(created.token, headers);
      expect([refused.statusCode, refused.json<ErrorBody>().error.code]).toEqual([403, 'SHARE_NOT_ALLOWED']);
    }
    const listed = (await h.admin.inject({ method: 'GET', url: `/api/v1/slots/${slot}/shares` })).json<ShareList>();
    expect(listed.shares[0]).toMatchObject({ opens: 0, lastOpenedAt: null });
    expect(auditRows(created.share.id)).toEqual([{ action: 'share.created', outcome: 'success' }]);
  });

  it('does not use a ticket up on a plain GET (a link preview)', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    const base = await listen();
    const created = await createShare(slot);
    const url = (await ticketFor(created.token)).json<ShareTicket>().url;
    const plain = await h.site.inject({ method: 'GET', url, headers: { origin: SITE_ORIGIN } });
    expect(plain.json<ErrorBody>().error.code).toBe('TERMINAL_NOT_WEBSOCKET');
    const socket = upgraded(`${base}${url}`);
    await socket.ready;
    socket.open();
    await expect.poll(() => h.agent.terminals.leaseViewers(`share:${created.share.id}`)).toBe(1);
    socket.socket.close();
  });

  it('refuses bodies over 64 KiB on the public site with a coded 413', async () => {
    h = await startShares();
    const response = await h.site.inject({
      method: 'POST',
      url: `/api/public/share/${'D'.repeat(43)}/ticket`,
      headers: { origin: SITE_ORIGIN, 'content-type': 'application/json' },
      payload: JSON.stringify({ padding: 'x'.repeat(100 * 1024) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.json<ErrorBody>().error.code).toMatch(/^[A-Z_]+$/);
  });

  it('allows 50 active share links per slot', async () => {
    h = await startShares();
    const slot = h.addSlot('demo');
    for (let i = 0; i < 50; i += 1) await createShare(slot);
    const refused = await h.admin.inject({
      method: 'POST',
      url: `/api/v1/slots/${slot}/shares`,
      payload: { mode: 'read', expiresInMinutes: 60, signInRequired: false },
    });
    expect([refused.statusCode, refused.json<ErrorBody>().error.code]).toEqual([409, 'SHARE_LIMIT']);
  });
});

describe("owners' shares follow the owner's rights (review-share 10)", () => {
  it('stop opening when sharing is turned off, the slot changes owner or the owner is disabled; owners still list and revoke theirs, not the admin’s', async () => {
    h = await startShares();
    const alice = h.addUser('alice');
    const slot = h.addSlot('alices', { ownerId: alice });
    const a = h.sessions.signIn(alice);
    const headers = { cookie: a.cookie, 'x-slotdeck-csrf': a.csrf, origin: SITE_ORIGIN, host: 'share.test' };
    const made = await h.site.inject({
      method: 'POST',
      url: `/api/public/portal/slots/${slot}/shares`,
      headers,
      payload: { mode: 'read', expiresInMinutes: 60, signInRequired: false },
    });
    expect(made.statusCode, made.body).toBe(201);
    const created = made.json<CreatedShare>();
    const token = created.link.slice(`${PUBLIC_URL}/share/`.length);
    expect((await ticketFor(token)).statusCode).toBe(201);

    h.settings.ownersMayShare = false;
    expect((await ticketFor(token)).json<ErrorBody>().error.code).toBe('SHARE_REVOKED');
    const listed = await h.site.inject({ method: 'GET', url: `/api/public/portal/slots/${slot}/shares`, headers });
    expect(listed.json<ShareList>().shares[0]).toMatchObject({ id: created.share.id, state: 'revoked' });
    h.settings.ownersMayShare = true;
    expect((await ticketFor(token)).statusCode).toBe(201);

    h.db.prepare('UPDATE users SET active = 0 WHERE id = ?').run(alice);
    expect((await ticketFor(token)).json<ErrorBody>().error.code).toBe('SHARE_REVOKED');
    h.db.prepare('UPDATE users SET active = 1 WHERE id = ?').run(alice);

    const adminShare = await createShare(slot);
    const revokeAdmins = await h.site.inject({
      method: 'DELETE',
      url: `/api/public/portal/shares/${adminShare.share.id}`,
      headers,
    });
    expect([revokeAdmins.statusCode, revokeAdmins.json<ErrorBody>().error.code]).toEqual([403, 'SHARE_NOT_ALLOWED']);
    h.settings.ownersMayShare = false;
    const revoked = await h.site.inject({
      method: 'DELETE',
      url: `/api/public/portal/shares/${created.share.id}`,
      headers,
    });
    expect(revoked.json<Share>().state).toBe('revoked');
    h.settings.ownersMayShare = true;
    expect((await ticketFor(token)).json<ErrorBody>().error.code).toBe('SHARE_REVOKED');
  });

  it('a slot given to another user stops its old owner’s links', async () => {
    h = await startShares();
    const alice = h.addUser('alice');
    const slot = h.addSlot('alices', { ownerId: alice });
    const a = h.sessions.signIn(alice);
    const made = await h.site.inject({
      method: 'POST',
      url: `/api/public/portal/slots/${slot}/shares`,
      headers: { cookie: a.cookie, 'x-slotdeck-csrf': a.csrf, origin: SITE_ORIGIN, host: 'share.test' },
      payload: { mode: 'read', expiresInMinutes: 60, signInRequired: false },
    });
    const token = made.json<CreatedShare>().link.slice(`${PUBLIC_URL}/share/`.length);
    expect((await ticketFor(token)).statusCode).toBe(201);
    h.setSlotOwner(slot, h.addUser('bob'));
    expect((await ticketFor(token)).json<ErrorBody>().error.code).toBe('SHARE_REVOKED');
  });
});

describe('log redaction (review-share 11)', () => {
  it('redacts share tokens in percent-encoded paths too', () => {
    const token = 'y'.repeat(43);
    expect(redactUrl(`/%73hare/${token}`)).not.toContain(token);
    expect(redactUrl(`/api/public/%73%68are/${token}/ticket`)).not.toContain(token);
    expect(redactUrl(`/%73hare/${token}%ZZ`)).not.toContain(token);
    expect(redactUrl(`/api/public/terminal/abc?%74icket=${token}`)).not.toContain(token);
  });
});
