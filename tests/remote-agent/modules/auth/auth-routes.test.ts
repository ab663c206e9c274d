/**
 * Sign-in on the public site (buildApp, the gateway's listener by inject): password sign-in by username or email,
 * one answer for unknown accounts and wrong passwords, missing / wrong / stolen credentials on every session route,
 * CSRF, revocation, disabled users, throttling and lockout, invites, the password policy and TOTP two-factor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionInfo, SignedIn } from '../../../../remote-agent/src/contract/index.js';
import { CookieJar, startAuthHarness, type Harness } from './harness.js';
import { totpFromUri } from './totp.js';

const A = '/api/public/auth';
const PASSWORD = 'violet lantern orbit 42';
let h: Harness;

beforeAll(async () => {
  h = await startAuthHarness();
});
afterAll(async () => {
  await h?.close();
});

const errorCode = (body: unknown): string | undefined => (body as { error?: { code?: string } }).error?.code;

/** Every route that needs a session, with a valid body. */
const SESSION_ROUTES: Array<[string, string, unknown]> = [
  ['POST', `${A}/sign-out`, undefined],
  ['POST', `${A}/sign-out-everywhere`, undefined],
  ['POST', `${A}/password`, { currentPassword: PASSWORD, newPassword: 'another violet lantern 43' }],
  ['POST', `${A}/two-factor/enable`, { password: PASSWORD }],
  ['POST', `${A}/two-factor/confirm`, { code: '123456' }],
  ['POST', `${A}/two-factor/disable`, { password: PASSWORD, code: '123456' }],
];

describe('password sign-in', () => {
  it('signs in by username or email, sets a __Host- cookie (Secure, HttpOnly, SameSite=Lax, Path=/) and answers no token', async () => {
    const { user } = await h.signedInUser('grace', PASSWORD);
    h.agent.users.update(user.id, { email: 'grace@example.com' });
    for (const login of ['grace', 'GRACE', 'grace@example.com']) {
      const jar = new CookieJar();
      const answer = await h.site('POST', `${A}/sign-in`, { jar, payload: { login, password: PASSWORD } });
      expect(answer.status, login).toBe(200);
      const body = SignedIn.parse(answer.body);
      expect(body.user).toMatchObject({ id: user.id, username: 'grace', email: 'grace@example.com' });
      expect(JSON.stringify(answer.body)).not.toMatch(/token"/);
      const cookie = ([] as string[])
        .concat(answer.headers['set-cookie'] ?? [])
        .find((c) => c.startsWith('__Host-slotdeck-session='));
      expect(cookie).toMatch(/; Path=\//);
      expect(cookie).toMatch(/; HttpOnly/);
      expect(cookie).toMatch(/; Secure/);
      expect(cookie).toMatch(/; SameSite=Lax/);
      expect(cookie).not.toMatch(/Domain=/i);
      const session = SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body);
      expect(session.user?.id).toBe(user.id);
      expect(session.csrfToken).toBe(body.csrfToken);
    }
  });

  it('answers an unknown account exactly like a wrong password', async () => {
    await h.signedInUser('hopper', PASSWORD);
    const wrong = await h.site('POST', `${A}/sign-in`, {
      payload: { login: 'hopper', password: 'not the password at all' },
    });
    const unknown = await h.site('POST', `${A}/sign-in`, {
      payload: { login: 'nobody-here', password: 'not the password at all' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(errorCode(wrong.body)).toBe('AUTH_CREDENTIALS_INVALID');
    // A user who never set a password (no invite accepted yet) answers the same.
    h.newUser('fresh');
    const fresh = await h.site('POST', `${A}/sign-in`, {
      payload: { login: 'fresh', password: 'not the password at all' },
    });
    expect(fresh.body).toEqual(wrong.body);
    // A disabled or pending account: a wrong password answers exactly the same; only the right one says why not.
    const { user: off } = await h.signedInUser('hopper-off', PASSWORD);
    await h.admin('PATCH', `/api/v1/users/${off.id}`, { active: false });
    const offWrong = await h.site('POST', `${A}/sign-in`, {
      payload: { login: 'hopper-off', password: 'not the password at all' },
    });
    expect(offWrong).toMatchObject({ status: 401, body: wrong.body });
    const offRight = await h.site('POST', `${A}/sign-in`, { payload: { login: 'hopper-off', password: PASSWORD } });
    expect(offRight.status).toBe(403);
    expect(errorCode(offRight.body)).toBe('AUTH_USER_DISABLED');
  });

  it('gives better-auth’s other cookies (two-factor pending) the __Host- prefix with Secure, HttpOnly, Path=/', async () => {
    const { jar, csrf } = await h.signedInUser('cookie-2fa', PASSWORD);
    const enrolled = await h.site<{ totpUri: string }>('POST', `${A}/two-factor/enable`, {
      jar,
      csrf,
      payload: { password: PASSWORD },
    });
    await h.site('POST', `${A}/two-factor/confirm`, {
      jar,
      csrf,
      payload: { code: totpFromUri(enrolled.body.totpUri) },
    });
    const pending = await h.site('POST', `${A}/sign-in`, { payload: { login: 'cookie-2fa', password: PASSWORD } });
    const cookies = ([] as string[]).concat(pending.headers['set-cookie'] ?? []);
    const twoFactor = cookies.find((c) => /two_factor=/.test(c) && !/Max-Age=0/i.test(c));
    expect(twoFactor).toMatch(/^__Host-slotdeck\.two_factor=/);
    expect(twoFactor).toMatch(/; Secure/i);
    expect(twoFactor).toMatch(/; HttpOnly/i);
    expect(twoFactor).toMatch(/; Path=\//i);
    expect(twoFactor).toMatch(/; SameSite=Lax/i);
    expect(twoFactor).not.toMatch(/Domain=/i);
  });

  it('refuses a sign-in posted from another site (login CSRF)', async () => {
    await h.signedInUser('lovelace', PASSWORD);
    const answer = await h.site('POST', `${A}/sign-in`, {
      payload: { login: 'lovelace', password: PASSWORD },
      headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(answer.status).toBe(403);
    expect(errorCode(answer.body)).toBe('AUTH_CSRF_REFUSED');
  });

  it('shows no user and no CSRF token without a session', async () => {
    const answer = await h.site('GET', `${A}/session`);
    expect(SessionInfo.parse(answer.body)).toMatchObject({ user: null, csrfToken: null, signUpEnabled: false });
  });
});

describe('missing, wrong and stolen credentials on the session routes', () => {
  it('needs a session (401 AUTH_SESSION_REQUIRED): none, or a made-up cookie', async () => {
    const forged = new CookieJar();
    forged.cookies.set('__Host-slotdeck-session', 'forged-token.forged-signature');
    for (const [method, url, payload] of SESSION_ROUTES) {
      for (const jar of [undefined, forged]) {
        const answer = await h.site(method, url, { jar, payload, csrf: 'x' });
        expect(answer.status, `${method} ${url}`).toBe(401);
        expect(errorCode(answer.body)).toBe('AUTH_SESSION_REQUIRED');
      }
    }
  });

  it('refuses a session cookie without the CSRF header, with a wrong one, or replayed from another Origin (403 AUTH_CSRF_REFUSED)', async () => {
    const { jar, csrf } = await h.signedInUser('turing', PASSWORD);
    for (const [method, url, payload] of SESSION_ROUTES) {
      const missing = await h.site(method, url, { jar, payload });
      const wrong = await h.site(method, url, { jar, payload, csrf: `${csrf}x` });
      const elsewhere = await h.site(method, url, {
        jar,
        payload,
        csrf,
        headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      });
      for (const answer of [missing, wrong, elsewhere]) {
        expect(answer.status, `${method} ${url}`).toBe(403);
        expect(errorCode(answer.body)).toBe('AUTH_CSRF_REFUSED');
      }
    }
    // Nothing happened: the session still works.
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user?.username).toBe('turing');
  });

  it('ends a session the admin revoked, and tells listeners (its terminals close)', async () => {
    const { user, jar, csrf } = await h.signedInUser('knuth', PASSWORD);
    const ended: string[][] = [];
    const stop = h.agent.sessionGuard.onSessionsEnded((ids) => ended.push(ids));
    const list = await h.admin<{ sessions: Array<{ id: string }> }>('GET', `/api/v1/users/${user.id}/sessions`);
    expect(list.body.sessions).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(jar.cookies.get('__Host-slotdeck-session')!.split('.')[0]);
    const revoked = await h.admin('DELETE', `/api/v1/users/${user.id}/sessions/${list.body.sessions[0]!.id}`);
    expect(revoked).toMatchObject({ status: 200, body: { ended: 1 } });
    expect(ended).toEqual([[list.body.sessions[0]!.id]]);
    stop();
    const answer = await h.site('POST', `${A}/sign-out-everywhere`, { jar, csrf });
    expect(answer.status).toBe(401);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user).toBeNull();
    const again = await h.admin('DELETE', `/api/v1/users/${user.id}/sessions/${list.body.sessions[0]!.id}`);
    expect(again.status).toBe(404);
    expect(errorCode(again.body)).toBe('AUTH_SESSION_NOT_FOUND');
  });

  it('ends every session of a user the admin disables, and refuses them until enabled again', async () => {
    const { user, jar, csrf } = await h.signedInUser('dijkstra', PASSWORD);
    const other = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: other, payload: { login: 'dijkstra', password: PASSWORD } });
    const ended: string[] = [];
    const stop = h.agent.sessionGuard.onSessionsEnded((ids) => ended.push(...ids));
    const disabled = await h.admin('PATCH', `/api/v1/users/${user.id}`, { active: false });
    expect(disabled.status).toBe(200);
    stop();
    expect(ended).toHaveLength(2);
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM auth_session WHERE userId = ?').get(user.id)).toEqual({ n: 0 });
    expect((await h.site('POST', `${A}/sign-out`, { jar, csrf })).status).toBe(401);
    const signIn = await h.site('POST', `${A}/sign-in`, { payload: { login: 'dijkstra', password: PASSWORD } });
    expect(signIn.status).toBe(403);
    expect(errorCode(signIn.body)).toBe('AUTH_USER_DISABLED');
    await h.admin('PATCH', `/api/v1/users/${user.id}`, { active: true });
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'dijkstra', password: PASSWORD } })).status).toBe(
      200,
    );
  });

  it('tells listeners when better-auth ends a session itself: idle expiry found on lookup, the two-factor session swap', async () => {
    const ended: string[] = [];
    const stop = h.agent.sessionGuard.onSessionsEnded((ids) => ended.push(...ids));
    const sessionOf = (userId: string) =>
      (h.db.prepare('SELECT id FROM auth_session WHERE userId = ?').all(userId) as Array<{ id: string }>).map(
        (r) => r.id,
      );
    // Idle expiry: better-auth finds it on lookup and deletes the row before our guard sees it.
    const idle = await h.signedInUser('idle-expiry', PASSWORD);
    const [idleId] = sessionOf(idle.user.id);
    h.db
      .prepare('UPDATE auth_session SET expiresAt = ? WHERE id = ?')
      .run(new Date(Date.now() - 1000).toISOString(), idleId);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: idle.jar })).body).user).toBeNull();
    expect(ended).toContain(idleId);
    // Two-factor confirm replaces the session: the old id ends (its terminals close), the new one lives.
    const swap = await h.signedInUser('tf-swap', PASSWORD);
    const [oldId] = sessionOf(swap.user.id);
    const enrolled = await h.site<{ totpUri: string }>('POST', `${A}/two-factor/enable`, {
      jar: swap.jar,
      csrf: swap.csrf,
      payload: { password: PASSWORD },
    });
    const confirmed = await h.site('POST', `${A}/two-factor/confirm`, {
      jar: swap.jar,
      csrf: swap.csrf,
      payload: { code: totpFromUri(enrolled.body.totpUri) },
    });
    expect(confirmed.status).toBe(200);
    expect(sessionOf(swap.user.id)).not.toContain(oldId);
    expect(ended).toContain(oldId);
    // Sign-out everywhere and the sweep tell too.
    const [newId] = sessionOf(swap.user.id);
    await h.site('POST', `${A}/sign-out-everywhere`, {
      jar: swap.jar,
      csrf: (confirmed.body as { csrfToken: string }).csrfToken,
    });
    expect(ended).toContain(newId);
    const swept = await h.signedInUser('swept', PASSWORD);
    const [sweptId] = sessionOf(swept.user.id);
    h.db.prepare("UPDATE auth_session SET createdAt = '2000-01-01T00:00:00.000Z' WHERE id = ?").run(sweptId);
    expect(h.agent.auth.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect(ended).toContain(sweptId);
    stop();
  });

  it('signs out one session, or every session of the user', async () => {
    const { user, jar, csrf } = await h.signedInUser('liskov', PASSWORD);
    const second = new CookieJar();
    const signed = await h.site<{ csrfToken: string }>('POST', `${A}/sign-in`, {
      jar: second,
      payload: { login: 'liskov', password: PASSWORD },
    });
    const out = await h.site('POST', `${A}/sign-out`, { jar, csrf });
    expect(out).toMatchObject({ status: 200, body: { ok: true } });
    expect(jar.cookies.has('__Host-slotdeck-session')).toBe(false);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: second })).body).user?.id).toBe(user.id);
    const third = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: third, payload: { login: 'liskov', password: PASSWORD } });
    const everywhere = await h.site('POST', `${A}/sign-out-everywhere`, { jar: second, csrf: signed.body.csrfToken });
    expect(everywhere).toMatchObject({ status: 200, body: { ended: 2 } });
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: third })).body).user).toBeNull();
  });
});

describe('throttling and lockout', () => {
  it('backs off from the 5th failure with 429 and Retry-After, for a real account and an unknown one alike', async () => {
    await h.signedInUser('backoff', PASSWORD);
    for (const login of ['backoff', 'no-such-account']) {
      const answers = [];
      for (let i = 0; i < 5; i += 1)
        answers.push(await h.site('POST', `${A}/sign-in`, { payload: { login, password: 'wrong password here' } }));
      expect(
        answers.map((a) => a.status),
        login,
      ).toEqual([401, 401, 401, 401, 401]);
      // The 5th failure started a backoff; make it long enough that this test never races it.
      h.db
        .prepare('UPDATE auth_throttle SET blocked_until = ? WHERE failures = 5')
        .run(new Date(Date.now() + 60_000).toISOString());
      // The right password waits too (no testing passwords during the backoff), and an unknown name answers alike.
      const next = await h.site('POST', `${A}/sign-in`, {
        payload: { login, password: login === 'backoff' ? PASSWORD : 'x'.repeat(12) },
      });
      expect(next.status, login).toBe(429);
      expect(errorCode(next.body)).toBe('AUTH_THROTTLED');
      expect(Number(next.headers['retry-after'])).toBeGreaterThanOrEqual(50);
    }
  });

  it('locks an account at 100 failures (423) until the admin unlocks it', async () => {
    const { user } = await h.signedInUser('locked', PASSWORD);
    // 99 failures already counted (their backoff over), then the 100th through the route.
    h.db
      .prepare(
        'INSERT INTO auth_throttle (subject, failures, last_failure_at, blocked_until, locked) VALUES (?, 99, ?, NULL, 0)',
      )
      .run(`user:${user.id}`, new Date().toISOString());
    const hundredth = await h.site('POST', `${A}/sign-in`, {
      payload: { login: 'locked', password: 'wrong password here' },
    });
    expect(hundredth.status).toBe(401);
    const right = await h.site('POST', `${A}/sign-in`, { payload: { login: 'locked', password: PASSWORD } });
    expect(right.status).toBe(423);
    expect(errorCode(right.body)).toBe('AUTH_ACCOUNT_LOCKED');
    const status = await h.admin<{ locked: boolean; failures: number }>('GET', `/api/v1/users/${user.id}/sign-in`);
    expect(status.body).toMatchObject({ locked: true, failures: 100 });
    const unlocked = await h.admin('POST', `/api/v1/users/${user.id}/unlock`);
    expect(unlocked.body).toMatchObject({ locked: false, failures: 0 });
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'locked', password: PASSWORD } })).status).toBe(
      200,
    );
  });
});

describe('invites', () => {
  it('is a single-use link of 43 base64url characters, shown once and stored only as SHA-256', async () => {
    const user = h.newUser('invitee');
    const created = await h.admin<{ link: string; invite: { expiresAt: string } }>(
      'POST',
      `/api/v1/users/${user.id}/invites`,
      {},
    );
    expect(created.status).toBe(201);
    expect(created.body.link).toMatch(new RegExp(`^${h.origin}/invite/[A-Za-z0-9_-]{43}$`));
    const token = created.body.link.split('/invite/')[1]!;
    expect(Date.parse(created.body.invite.expiresAt) - Date.now()).toBeGreaterThan(71 * 3_600_000);
    expect(JSON.stringify(h.db.prepare('SELECT * FROM auth_invites').all())).not.toContain(token);
    const info = await h.site('GET', `${A}/invites/${token}`);
    expect(info.body).toMatchObject({ username: 'invitee' });
    const jar = new CookieJar();
    const first = await h.site('POST', `${A}/invites/accept`, { jar, payload: { token, password: PASSWORD } });
    expect(first.status).toBe(200);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user?.username).toBe('invitee');
    const second = await h.site('POST', `${A}/invites/accept`, {
      payload: { token, password: 'a different long password' },
    });
    expect(second.status).toBe(410);
    expect(errorCode(second.body)).toBe('AUTH_INVITE_INVALID');
    expect((await h.site('GET', `${A}/invites/${token}`)).status).toBe(410);
  });

  it('refuses an expired invite, and one of another length', async () => {
    const user = h.newUser('late');
    const created = await h.admin<{ link: string; invite: { id: string } }>(
      'POST',
      `/api/v1/users/${user.id}/invites`,
      { expiresInHours: 1 },
    );
    h.db
      .prepare('UPDATE auth_invites SET expires_at = ? WHERE id = ?')
      .run(new Date(Date.now() - 1000).toISOString(), created.body.invite.id);
    const token = created.body.link.split('/invite/')[1]!;
    const answer = await h.site('POST', `${A}/invites/accept`, { payload: { token, password: PASSWORD } });
    expect(answer.status).toBe(410);
    expect(errorCode(answer.body)).toBe('AUTH_INVITE_INVALID');
    const short = await h.site('POST', `${A}/invites/accept`, {
      payload: { token: token.slice(1), password: PASSWORD },
    });
    expect(short.status).toBe(400);
    const tooLong = await h.admin('POST', `/api/v1/users/${user.id}/invites`, { expiresInHours: 24 * 31 });
    expect(tooLong.status).toBe(400);
  });

  it('lifts a lockout when the invite is used', async () => {
    const user = h.newUser('relock');
    h.db
      .prepare(
        'INSERT INTO auth_throttle (subject, failures, last_failure_at, blocked_until, locked) VALUES (?, 100, ?, NULL, 1)',
      )
      .run(`user:${user.id}`, new Date().toISOString());
    const created = await h.admin<{ link: string }>('POST', `/api/v1/users/${user.id}/invites`, {});
    const token = created.body.link.split('/invite/')[1]!;
    expect((await h.site('POST', `${A}/invites/accept`, { payload: { token, password: PASSWORD } })).status).toBe(200);
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'relock', password: PASSWORD } })).status).toBe(
      200,
    );
  });
});

describe('password policy', () => {
  it.each([
    ['short', 'AUTH_PASSWORD_WEAK'],
    ['1qaz2wsx3edc', 'AUTH_PASSWORD_COMMON'],
    ['q1w2e3r4t5y6', 'AUTH_PASSWORD_COMMON'],
    ['policyuser is my password', 'AUTH_PASSWORD_WEAK'],
    ['x'.repeat(257), 'VALIDATION_FAILED'],
  ])('refuses %j with %s, and the invite stays usable', async (password, code) => {
    const user =
      h.agent.users.list({ search: 'policyuser', includeDeleted: false, limit: 1, offset: 0 }).users[0] ??
      h.newUser('policyuser');
    const created = await h.admin<{ link: string }>('POST', `/api/v1/users/${user.id}/invites`, {});
    const token = created.body.link.split('/invite/')[1]!;
    const answer = await h.site('POST', `${A}/invites/accept`, { payload: { token, password } });
    expect(answer.status).toBe(400);
    expect(errorCode(answer.body)).toBe(code);
    expect((await h.site('GET', `${A}/invites/${token}`)).status).toBe(200);
  });

  it('changes the password with the current one (policy applies), ending the other sessions', async () => {
    const { jar, csrf } = await h.signedInUser('changer', PASSWORD);
    const other = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: other, payload: { login: 'changer', password: PASSWORD } });
    const wrong = await h.site('POST', `${A}/password`, {
      jar,
      csrf,
      payload: { currentPassword: 'wrong password here', newPassword: 'fresh meadow signal 77' },
    });
    expect(errorCode(wrong.body)).toBe('AUTH_CREDENTIALS_INVALID');
    const weak = await h.site('POST', `${A}/password`, {
      jar,
      csrf,
      payload: { currentPassword: PASSWORD, newPassword: '1qaz2wsx3edc' },
    });
    expect(errorCode(weak.body)).toBe('AUTH_PASSWORD_COMMON');
    const changed = await h.site('POST', `${A}/password`, {
      jar,
      csrf,
      payload: { currentPassword: PASSWORD, newPassword: 'fresh meadow signal 77' },
    });
    expect(changed).toMatchObject({ status: 200, body: { ok: true } });
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user?.username).toBe('changer');
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: other })).body).user).toBeNull();
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'changer', password: PASSWORD } })).status).toBe(
      401,
    );
    expect(
      (await h.site('POST', `${A}/sign-in`, { payload: { login: 'changer', password: 'fresh meadow signal 77' } }))
        .status,
    ).toBe(200);
  });
});

describe('TOTP two-factor', () => {
  it('enrols with the password, then sign-in needs a code from the app (computed here), and it turns off with the password and a code', async () => {
    const { jar, csrf } = await h.signedInUser('totp', PASSWORD);
    const badPassword = await h.site('POST', `${A}/two-factor/enable`, {
      jar,
      csrf,
      payload: { password: 'wrong password here' },
    });
    expect(errorCode(badPassword.body)).toBe('AUTH_CREDENTIALS_INVALID');
    const enrolled = await h.site<{ totpUri: string; backupCodes: string[] }>('POST', `${A}/two-factor/enable`, {
      jar,
      csrf,
      payload: { password: PASSWORD },
    });
    expect(enrolled.status).toBe(200);
    expect(enrolled.body.totpUri).toMatch(/^otpauth:\/\/totp\/Slotdeck%3Atotp\?secret=[A-Z2-7]+&/);
    expect(enrolled.body.backupCodes.length).toBeGreaterThanOrEqual(8);
    const wrongCode = await h.site('POST', `${A}/two-factor/confirm`, { jar, csrf, payload: { code: '000000' } });
    expect(errorCode(wrongCode.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    const confirmCode = totpFromUri(enrolled.body.totpUri);
    const confirmed = await h.site<{ enabled: boolean; csrfToken: string }>('POST', `${A}/two-factor/confirm`, {
      jar,
      csrf,
      payload: { code: confirmCode },
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.enabled).toBe(true);

    const browser = new CookieJar();
    const first = await h.site('POST', `${A}/sign-in`, {
      jar: browser,
      payload: { login: 'totp', password: PASSWORD },
    });
    expect(first.status).toBe(401);
    expect(errorCode(first.body)).toBe('AUTH_TWO_FACTOR_REQUIRED');
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: browser })).body).user).toBeNull();
    const bad = await h.site('POST', `${A}/two-factor/verify`, { jar: browser, payload: { code: '000000' } });
    expect(errorCode(bad.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    // The code that confirmed enrolment was spent: the sign-in needs a later one (the next step is accepted too).
    const spent = await h.site('POST', `${A}/two-factor/verify`, { jar: browser, payload: { code: confirmCode } });
    expect(errorCode(spent.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    const browserAgain = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: browserAgain, payload: { login: 'totp', password: PASSWORD } });
    const nextCode = totpFromUri(enrolled.body.totpUri, Date.now() + 30_000);
    const good = await h.site('POST', `${A}/two-factor/verify`, { jar: browserAgain, payload: { code: nextCode } });
    expect(good.status).toBe(200);
    const session = SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: browserAgain })).body);
    expect(session.user).toMatchObject({ username: 'totp', twoFactorEnabled: true });

    // The same code a second time (someone who saw it over the shoulder): refused, and no session is left behind.
    const replay = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: replay, payload: { login: 'totp', password: PASSWORD } });
    const sessionsBefore = h.db.prepare('SELECT COUNT(*) AS n FROM auth_session').get();
    const replayed = await h.site('POST', `${A}/two-factor/verify`, { jar: replay, payload: { code: nextCode } });
    expect(replayed.status).toBe(401);
    expect(errorCode(replayed.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM auth_session').get()).toEqual(sessionsBefore);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar: replay })).body).user).toBeNull();

    // A backup code works once.
    const backup = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: backup, payload: { login: 'totp', password: PASSWORD } });
    expect(
      (
        await h.site('POST', `${A}/two-factor/verify`, {
          jar: backup,
          payload: { code: enrolled.body.backupCodes[0]! },
        })
      ).status,
    ).toBe(200);
    const reused = new CookieJar();
    await h.site('POST', `${A}/sign-in`, { jar: reused, payload: { login: 'totp', password: PASSWORD } });
    expect(
      (
        await h.site('POST', `${A}/two-factor/verify`, {
          jar: reused,
          payload: { code: enrolled.body.backupCodes[0]! },
        })
      ).status,
    ).toBe(401);

    // Off takes the password and a code: the password alone (a stolen session + a phished password) is not enough,
    // nor a spent code; an unused backup code is.
    const disable = (payload: object) =>
      h.site<{ enabled: boolean }>('POST', `${A}/two-factor/disable`, {
        jar: browserAgain,
        csrf: session.csrfToken!,
        payload,
      });
    expect((await disable({ password: PASSWORD })).status).toBe(400);
    const spentCode = await disable({ password: PASSWORD, code: nextCode });
    expect(errorCode(spentCode.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    const wrongBackup = await disable({ password: PASSWORD, code: 'zzzzz-zzzzz' });
    expect(errorCode(wrongBackup.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    const off = await disable({ password: PASSWORD, code: enrolled.body.backupCodes[1]! });
    expect(off).toMatchObject({ status: 200, body: { enabled: false } });
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'totp', password: PASSWORD } })).status).toBe(200);
  });
});

describe('two-factor throttle', () => {
  it('slows wrong codes per account: another user at the same address is not held back', async () => {
    const enrol = async (name: string) => {
      const { jar, csrf } = await h.signedInUser(name, PASSWORD);
      const enrolled = await h.site<{ totpUri: string }>('POST', `${A}/two-factor/enable`, {
        jar,
        csrf,
        payload: { password: PASSWORD },
      });
      await h.site('POST', `${A}/two-factor/confirm`, {
        jar,
        csrf,
        payload: { code: totpFromUri(enrolled.body.totpUri) },
      });
      return enrolled.body.totpUri;
    };
    await enrol('tf-guessed');
    const uri = await enrol('tf-neighbour');
    const pending = async (login: string) => {
      const jar = new CookieJar();
      await h.site('POST', `${A}/sign-in`, { jar, payload: { login, password: PASSWORD } });
      return jar;
    };
    const guessed = await pending('tf-guessed');
    for (let n = 0; n < 5; n += 1)
      await h.site('POST', `${A}/two-factor/verify`, { jar: guessed, payload: { code: '000000' } });
    const held = await h.site('POST', `${A}/two-factor/verify`, {
      jar: await pending('tf-guessed'),
      payload: { code: '111111' },
    });
    expect(held.status).toBe(429);
    const neighbour = await h.site('POST', `${A}/two-factor/verify`, {
      jar: await pending('tf-neighbour'),
      payload: { code: totpFromUri(uri, Date.now() + 30_000) },
    });
    expect(neighbour.status).toBe(200);
  });
});

describe('admin routes', () => {
  it('refuses missing and wrong admin tokens on every sign-in admin route', async () => {
    const user = h.newUser('adminroutes');
    const routes: Array<[string, string, unknown]> = [
      ['GET', '/api/v1/auth/settings', undefined],
      ['PUT', '/api/v1/auth/settings', { signUpEnabled: true }],
      ['PUT', '/api/v1/auth/github', { clientId: 'Iv1.abcdef', clientSecret: 'secretsecret', enabled: true }],
      ['GET', `/api/v1/users/${user.id}/sign-in`, undefined],
      ['POST', `/api/v1/users/${user.id}/unlock`, undefined],
      ['POST', `/api/v1/users/${user.id}/invites`, {}],
      ['GET', `/api/v1/users/${user.id}/sessions`, undefined],
      ['DELETE', `/api/v1/users/${user.id}/sessions`, undefined],
      ['DELETE', `/api/v1/users/${user.id}/sessions/s_x`, undefined],
      ['POST', `/api/v1/users/${user.id}/approve`, undefined],
      ['PUT', `/api/v1/users/${user.id}/github`, { githubId: 1 }],
      ['DELETE', `/api/v1/users/${user.id}/github`, undefined],
      ['GET', '/api/v1/audit', undefined],
      ['GET', '/api/v1/audit?format=csv', undefined],
    ];
    for (const [method, url, payload] of routes) {
      const missing = await h.admin(method, url, payload, null);
      const wrong = await h.admin(method, url, payload, 'not-the-token');
      expect([missing.status, errorCode(missing.body)], `${method} ${url}`).toEqual([401, 'AUTH_TOKEN_MISSING']);
      expect([wrong.status, errorCode(wrong.body)], `${method} ${url}`).toEqual([401, 'AUTH_TOKEN_INVALID']);
    }
    // A portal session is no admin credential.
    const { jar } = await h.signedInUser('notadmin', PASSWORD);
    const withCookie = await h.agent.app.inject({
      method: 'GET',
      url: '/api/v1/auth/settings',
      headers: { cookie: jar.header()! },
    });
    expect(withCookie.statusCode).toBe(401);
  });

  it('keeps versioned settings, validated on write', async () => {
    const initial = await h.admin('GET', '/api/v1/auth/settings');
    expect(initial.body).toMatchObject({
      signUpEnabled: false,
      sessionIdleMinutes: 720,
      sessionAbsoluteHours: 168,
      portalKeyLimit: 5,
      portalKeyScopes: ['gateway', 'self'],
      ownersMayShare: false,
      github: { clientId: null, secretConfigured: false, enabled: false },
    });
    expect((await h.admin('PUT', '/api/v1/auth/settings', { sessionIdleMinutes: 1 })).status).toBe(400);
    expect((await h.admin('PUT', '/api/v1/auth/settings', { portalKeyScopes: ['admin'] })).status).toBe(400);
    expect((await h.admin('PUT', '/api/v1/auth/settings', {})).status).toBe(400);
    const changed = await h.admin('PUT', '/api/v1/auth/settings', { portalKeyLimit: 3, ownersMayShare: true });
    expect(changed.body).toMatchObject({ portalKeyLimit: 3, ownersMayShare: true, signUpEnabled: false });
    const stored = h.db.prepare('SELECT settings_json FROM auth_settings').get() as { settings_json: string };
    expect(JSON.parse(stored.settings_json)).toMatchObject({ version: 1, portalKeyLimit: 3 });
    await h.admin('PUT', '/api/v1/auth/settings', { portalKeyLimit: 5, ownersMayShare: false });
  });

  it('audits sign-ins, failures and admin actions, lists them by filter and exports CSV and JSON lines', async () => {
    const { user } = await h.signedInUser('audited', PASSWORD);
    await h.site('POST', `${A}/sign-in`, { payload: { login: 'audited', password: 'wrong password here' } });
    const page = await h.admin<{ entries: Array<{ action: string; detail: Record<string, unknown> }> }>(
      'GET',
      `/api/v1/audit?actor=${user.id}`,
    );
    const actions = page.body.entries.map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(['auth.sign_in', 'auth.sign_in_failed', 'auth.invite_used', 'auth.password_changed']),
    );
    const created = await h.admin<{ entries: unknown[] }>('GET', '/api/v1/audit?action=auth.invite_created&limit=1');
    expect(created.body.entries).toHaveLength(1);
    const csv = await h.admin('GET', `/api/v1/audit?format=csv&actor=${user.id}`);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(String(csv.body).split('\n')[0]).toBe(
      'id,at,actor_type,actor_id,action,target,outcome,ip,user_agent,detail',
    );
    const jsonl = await h.admin('GET', `/api/v1/audit?format=jsonl&actor=${user.id}`);
    expect(String(jsonl.body).trim().split('\n').length).toBe(page.body.entries.length);
    expect((await h.admin('GET', '/api/v1/audit?format=xml')).status).toBe(400);
    expect(JSON.stringify(page.body)).not.toContain(PASSWORD);
  });
});

describe('sign-up, expiry and user changes', () => {
  it('refuses the reserved .invalid domain (sign-up and admin), and a placeholder clash never breaks a sign-in', async () => {
    const victim = h.newUser('placeholder-victim');
    await h.admin('PUT', '/api/v1/auth/settings', { signUpEnabled: true });
    const signUp = await h.site('POST', `${A}/sign-up`, {
      payload: { username: 'squatter', email: `${victim.id}@users.slotdeck.invalid`, password: PASSWORD },
    });
    expect(signUp.status).toBe(400);
    expect(errorCode(signUp.body)).toBe('VALIDATION_FAILED');
    await h.admin('PUT', '/api/v1/auth/settings', { signUpEnabled: false });
    const adminSet = await h.admin('PATCH', `/api/v1/users/${victim.id}`, { email: 'nobody@users.slotdeck.invalid' });
    expect(adminSet.status).toBe(400);
    // A row made before the refusal existed holds the victim's placeholder and the unknown-login address: the
    // victim still signs in through the invite, and a made-up name with that row's password is simply wrong.
    const squatter = await h.signedInUser('squatter-old', PASSWORD);
    h.db
      .prepare('UPDATE auth_user SET email = ? WHERE id = ?')
      .run(`${victim.id}@users.slotdeck.invalid`, squatter.user.id);
    const invite = await h.admin<{ link: string }>('POST', `/api/v1/users/${victim.id}/invites`, {});
    const token = invite.body.link.split('/invite/')[1]!;
    const accepted = await h.site('POST', `${A}/invites/accept`, { payload: { token, password: PASSWORD } });
    expect(accepted.status).toBe(200);
    const other = await h.signedInUser('squatter-nobody', PASSWORD);
    h.db.prepare('UPDATE auth_user SET email = ? WHERE id = ?').run('nobody@users.slotdeck.invalid', other.user.id);
    const sessions = h.db.prepare('SELECT COUNT(*) AS n FROM auth_session').get();
    const made = await h.site('POST', `${A}/sign-in`, { payload: { login: 'made-up-name', password: PASSWORD } });
    expect(made.status).toBe(401);
    expect(errorCode(made.body)).toBe('AUTH_CREDENTIALS_INVALID');
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM auth_session').get()).toEqual(sessions);
  });

  it('refuses sign-up while it is off; when on, the new user waits for approval', async () => {
    const body = { username: 'joiner', email: 'joiner@example.com', password: 'saffron kettle river 31' };
    const off = await h.site('POST', `${A}/sign-up`, { payload: body });
    expect([off.status, errorCode(off.body)]).toEqual([403, 'AUTH_SIGNUP_DISABLED']);
    await h.admin('PUT', '/api/v1/auth/settings', { signUpEnabled: true });
    const weak = await h.site('POST', `${A}/sign-up`, { payload: { ...body, password: '1qaz2wsx3edc' } });
    expect(errorCode(weak.body)).toBe('AUTH_PASSWORD_COMMON');
    const on = await h.site('POST', `${A}/sign-up`, { payload: body });
    expect(on).toMatchObject({ status: 202, body: { pendingApproval: true } });
    const pending = await h.site('POST', `${A}/sign-in`, { payload: { login: 'joiner', password: body.password } });
    expect([pending.status, errorCode(pending.body)]).toEqual([403, 'AUTH_APPROVAL_PENDING']);
    // The same name again answers alike (no probing who has an account) and makes nobody.
    const again = await h.site('POST', `${A}/sign-up`, { payload: { ...body, password: 'another saffron kettle 32' } });
    expect(again.status).toBe(202);
    const row = h.db.prepare("SELECT id FROM users WHERE username = 'joiner'").all() as Array<{ id: string }>;
    expect(row).toHaveLength(1);
    expect(h.agent.users.get(row[0]!.id)).toMatchObject({ active: false });
    await h.admin('POST', `/api/v1/users/${row[0]!.id}/approve`);
    expect(
      (await h.site('POST', `${A}/sign-in`, { payload: { login: 'joiner', password: body.password } })).status,
    ).toBe(200);
    await h.admin('PUT', '/api/v1/auth/settings', { signUpEnabled: false });
  });

  it('ends a session past the absolute limit even while it is in use', async () => {
    const { user, jar } = await h.signedInUser('absolute', PASSWORD);
    const ended: string[] = [];
    const stop = h.agent.sessionGuard.onSessionsEnded((ids) => ended.push(...ids));
    // Created 169 hours ago (the default limit is 168), used a moment ago.
    h.db
      .prepare('UPDATE auth_session SET createdAt = ? WHERE userId = ?')
      .run(new Date(Date.now() - 169 * 3_600_000).toISOString(), user.id);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user).toBeNull();
    stop();
    expect(ended).toHaveLength(1);
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM auth_session WHERE userId = ?').get(user.id)).toEqual({ n: 0 });
  });

  it('follows a rename and a new email, and ends sessions when the user is deleted', async () => {
    const { user, jar } = await h.signedInUser('oldname', PASSWORD);
    h.agent.users.update(user.id, { username: 'newname', email: 'new@example.com' });
    await new Promise((resolve) => setImmediate(resolve));
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'newname', password: PASSWORD } })).status).toBe(
      200,
    );
    expect(
      (await h.site('POST', `${A}/sign-in`, { payload: { login: 'new@example.com', password: PASSWORD } })).status,
    ).toBe(200);
    expect((await h.site('POST', `${A}/sign-in`, { payload: { login: 'oldname', password: PASSWORD } })).status).toBe(
      401,
    );
    expect((await h.admin('DELETE', `/api/v1/users/${user.id}`)).status).toBe(200);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user).toBeNull();
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM auth_user WHERE id = ?').get(user.id)).toEqual({ n: 0 });
    // The name is free for a new user, who can be invited.
    await h.signedInUser('newname', PASSWORD);
  });
});
