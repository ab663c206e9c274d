/**
 * GitHub sign-in through a local stand-in of GitHub's OAuth endpoints (tests/fixtures/fake-github.ts): linked only
 * by GitHub's numeric id (by the admin, or by the signed-in user), never by a matching email; an email counts only
 * when GitHub says it is verified; sign-up (when on) waits for approval; GitHub's tokens are not kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionInfo } from '../../../../remote-agent/src/contract/index.js';
import { totpFromUri } from './totp.js';
import { startFakeGithub, type FakeGithub, type FakeGithubUser } from '../../../fixtures/fake-github.js';
import { CookieJar, startAuthHarness, type Harness } from './harness.js';

const A = '/api/public/auth';
const PASSWORD = 'violet lantern orbit 42';
let h: Harness;
let github: FakeGithub;

beforeAll(async () => {
  github = await startFakeGithub();
  h = await startAuthHarness({ 'portal.githubUrl': github.url, 'portal.githubApiUrl': github.url });
});
afterAll(async () => {
  await h?.close();
  await github?.close();
});

const errorCode = (body: unknown): string | undefined => (body as { error?: { code?: string } }).error?.code;

/** The browser's trip: start on the portal, GitHub approves (the stand-in), back to the agent's callback. */
async function throughGithub(
  jar: CookieJar,
  user: FakeGithubUser,
  options: { mode?: 'sign-in' | 'link'; csrf?: string } = {},
): Promise<string> {
  github.nextUser = user;
  const start = await h.site<{ url: string }>('POST', `${A}/github/${options.mode ?? 'sign-in'}`, {
    jar,
    payload: { returnTo: '/slots' },
    ...(options.csrf ? { csrf: options.csrf } : {}),
  });
  expect(start.status, JSON.stringify(start.body)).toBe(200);
  expect(start.body.url.startsWith(`${github.url}/login/oauth/authorize?`)).toBe(true);
  // PKCE: a per-sign-in S256 challenge (its verifier stays with the agent's state).
  const authorize = new URL(start.body.url);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const approved = await fetch(start.body.url, { redirect: 'manual' });
  const back = new URL(approved.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(`${h.origin}${A}/callback/github`);
  const callback = await h.site('GET', `${back.pathname}${back.search}`, { jar });
  expect(callback.status).toBe(302);
  return String(callback.headers.location);
}

const ghUser = (id: number, login: string, emails: FakeGithubUser['emails'] = []): FakeGithubUser => ({
  id,
  login,
  emails,
});

describe('GitHub sign-in (stand-in)', () => {
  it('is refused until the admin sets the OAuth app, whose secret is write-only', async () => {
    const answer = await h.site('POST', `${A}/github/sign-in`, { payload: { returnTo: '/' } });
    expect(answer.status).toBe(409);
    expect(errorCode(answer.body)).toBe('AUTH_GITHUB_NOT_CONFIGURED');
    const set = await h.admin('PUT', '/api/v1/auth/github', {
      clientId: github.clientId,
      clientSecret: github.clientSecret,
      enabled: true,
    });
    expect(set.body).toMatchObject({
      github: {
        clientId: github.clientId,
        secretConfigured: true,
        enabled: true,
        callbackUrl: `${h.origin}${A}/callback/github`,
      },
    });
    expect(JSON.stringify(set.body)).not.toContain(github.clientSecret);
    const session = SessionInfo.parse((await h.site('GET', `${A}/session`)).body);
    expect(session.githubEnabled).toBe(true);
  });

  it('signs in the user the admin linked by numeric GitHub id, whatever the GitHub login and email', async () => {
    const user = h.newUser('octo');
    const linked = await h.admin('PUT', `/api/v1/users/${user.id}/github`, { githubId: 1001 });
    expect(linked.body).toMatchObject({ githubId: 1001 });
    const jar = new CookieJar();
    const location = await throughGithub(
      jar,
      ghUser(1001, 'renamed-on-github', [{ email: 'x@example.org', primary: true, verified: true }]),
    );
    expect(location).toBe('/slots');
    const session = SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body);
    expect(session.user).toMatchObject({ id: user.id, username: 'octo', githubLinked: true });
    // GitHub's access token was used and dropped.
    const accounts = JSON.stringify(h.db.prepare("SELECT * FROM auth_account WHERE providerId = 'github'").all());
    for (const token of github.issuedTokens) expect(accounts).not.toContain(token);
    const row = h.db
      .prepare("SELECT accessToken, refreshToken, idToken FROM auth_account WHERE accountId = '1001'")
      .get();
    expect(row).toEqual({ accessToken: null, refreshToken: null, idToken: null });
  });

  it('asks a user who turned two-factor on for the code after GitHub too: no session until the code', async () => {
    const password = 'violet lantern orbit 42';
    const { user, jar: own, csrf } = await h.signedInUser('octo-2fa', password);
    await h.admin('PUT', `/api/v1/users/${user.id}/github`, { githubId: 2042 });
    const enrolled = await h.site<{ totpUri: string }>('POST', `${A}/two-factor/enable`, {
      jar: own,
      csrf,
      payload: { password },
    });
    const confirmCode = totpFromUri(enrolled.body.totpUri);
    await h.site('POST', `${A}/two-factor/confirm`, { jar: own, csrf, payload: { code: confirmCode } });
    const sessionsBefore = h.db.prepare('SELECT COUNT(*) AS n FROM auth_session WHERE userId = ?').get(user.id);
    const jar = new CookieJar();
    expect(await throughGithub(jar, ghUser(2042, 'octo-2fa-gh'))).toBe('/sign-in?step=two-factor');
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user).toBeNull();
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM auth_session WHERE userId = ?').get(user.id)).toEqual(
      sessionsBefore,
    );
    // The portal's code step finishes it, like after a password.
    const wrong = await h.site('POST', `${A}/two-factor/verify`, { jar, payload: { code: '000000' } });
    expect(errorCode(wrong.body)).toBe('AUTH_TWO_FACTOR_INVALID');
    const verified = await h.site('POST', `${A}/two-factor/verify`, {
      jar,
      payload: { code: totpFromUri(enrolled.body.totpUri, Date.now() + 30_000) },
    });
    expect(verified.status).toBe(200);
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user?.id).toBe(user.id);
  });

  it('audits made-up callbacks from one address only a few times, and logs them as warnings at most once a minute', async () => {
    const githubFailures = () =>
      h.db
        .prepare(
          "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'auth.sign_in_failed' AND detail_json LIKE '%github%'",
        )
        .get() as { n: number };
    const before = githubFailures().n;
    const logsBefore = h.logs.length;
    for (let n = 0; n < 30; n += 1) {
      const answer = await h.site('GET', `${A}/callback/github?code=x&state=made-up-${n}`);
      expect(answer.status).toBe(302);
      expect(String(answer.headers.location)).toMatch(/^\/sign-in\?error=/);
    }
    expect(githubFailures().n - before).toBeLessThanOrEqual(5);
    const newLines = h.logs.slice(logsBefore);
    expect(newLines.filter((line) => /"level":50/.test(line))).toEqual([]);
    expect(newLines.filter((line) => /state/i.test(line)).length).toBeLessThanOrEqual(2);
  });

  it('does NOT link by a matching (verified) email: the login is refused as not linked', async () => {
    const victim = h.newUser('victim', { email: 'victim@example.com' });
    await h.signedInUser('victim-helper', PASSWORD);
    // The victim has a sign-in record with that email (as after their first password).
    const invite = await h.admin<{ link: string }>('POST', `/api/v1/users/${victim.id}/invites`, {});
    await h.site('POST', `${A}/invites/accept`, {
      payload: { token: invite.body.link.split('/invite/')[1], password: PASSWORD },
    });
    const jar = new CookieJar();
    const location = await throughGithub(
      jar,
      ghUser(2002, 'attacker', [{ email: 'victim@example.com', primary: true, verified: true }]),
    );
    expect(location).toBe('/sign-in?error=AUTH_GITHUB_NOT_LINKED');
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user).toBeNull();
    expect(h.db.prepare("SELECT COUNT(*) AS n FROM auth_account WHERE accountId = '2002'").get()).toEqual({ n: 0 });
  });

  it('answers an unknown GitHub account with sign-up off as not linked, creating nobody', async () => {
    const before = h.db.prepare('SELECT COUNT(*) AS n FROM users').get();
    const location = await throughGithub(
      new CookieJar(),
      ghUser(2500, 'stranger', [{ email: 'stranger@example.com', primary: true, verified: true }]),
    );
    expect(location).toBe('/sign-in?error=AUTH_GITHUB_NOT_LINKED');
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM users').get()).toEqual(before);
  });

  it('with sign-up on, makes a pending user (an unverified email ignored) who waits for approval', async () => {
    await h.admin('PUT', '/api/v1/auth/settings', { signUpEnabled: true });
    const newbie = ghUser(3003, 'Newbie', [{ email: 'unverified@example.com', primary: true, verified: false }]);
    const first = await throughGithub(new CookieJar(), newbie);
    expect(first).toBe('/sign-in?error=AUTH_APPROVAL_PENDING');
    const row = h.db
      .prepare("SELECT id, username, email, active, pending_approval FROM users WHERE username = 'newbie'")
      .get() as {
      id: string;
      email: string | null;
      active: number;
      pending_approval: number;
    };
    expect(row).toMatchObject({ email: null, active: 0, pending_approval: 1 });
    expect(JSON.stringify(h.db.prepare('SELECT email FROM auth_user').all())).not.toContain('unverified@example.com');
    expect(await throughGithub(new CookieJar(), newbie)).toBe('/sign-in?error=AUTH_APPROVAL_PENDING');
    const approved = await h.admin('POST', `/api/v1/users/${row.id}/approve`);
    expect(approved.body).toMatchObject({ id: row.id, active: true });
    const jar = new CookieJar();
    expect(await throughGithub(jar, newbie)).toBe('/slots');
    expect(SessionInfo.parse((await h.site('GET', `${A}/session`, { jar })).body).user?.id).toBe(row.id);
    await h.admin('PUT', '/api/v1/auth/settings', { signUpEnabled: false });
  });

  it('lets a signed-in user link their own GitHub (session + CSRF), not one linked to someone else', async () => {
    const { user, jar, csrf } = await h.signedInUser('selflink', PASSWORD);
    const noCsrf = await h.site('POST', `${A}/github/link`, { jar, payload: { returnTo: '/settings' } });
    expect(errorCode(noCsrf.body)).toBe('AUTH_CSRF_REFUSED');
    const location = await throughGithub(jar, ghUser(4004, 'selflinker'), { mode: 'link', csrf });
    expect(location).toBe('/slots');
    const status = await h.admin('GET', `/api/v1/users/${user.id}/sign-in`);
    expect(status.body).toMatchObject({ githubId: 4004 });
    const other = await h.signedInUser('selflink2', PASSWORD);
    const taken = await throughGithub(other.jar, ghUser(4004, 'selflinker'), { mode: 'link', csrf: other.csrf });
    expect(taken).toMatch(/^\/settings\?error=AUTH_GITHUB_/);
    const admin = await h.admin('PUT', `/api/v1/users/${other.user.id}/github`, { githubId: 4004 });
    expect(admin.status).toBe(409);
    expect(errorCode(admin.body)).toBe('AUTH_GITHUB_TAKEN');
  });
});
