/**
 * Sign-in secrets stay where they belong: the password, an invite token, a session token, the TOTP secret, the
 * GitHub client secret and GitHub's access tokens never appear in the SQLite file or its WAL (except the session
 * token in better-auth's own auth_session.token column, its design), in the agent's logs, or in admin answers.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthSecrets } from '../../../../remote-agent/src/modules/auth/secrets.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeGithub, type FakeGithub } from '../../../fixtures/fake-github.js';
import { CookieJar, startAuthHarness, type Harness } from './harness.js';
import { totpFromUri, totpSecretFromUri } from './totp.js';

const A = '/api/public/auth';
const PASSWORD = 'quartz heron melody 58';
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

it('keeps every sign-in secret out of SQLite, the WAL, the logs and admin answers', async () => {
  const adminAnswers: string[] = [];
  const admin = async (method: string, url: string, payload?: unknown) => {
    const answer = await h.admin(method, url, payload);
    adminAnswers.push(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    return answer;
  };
  // GitHub app, invite, password, TOTP, a GitHub sign-in.
  await admin('PUT', '/api/v1/auth/github', {
    clientId: github.clientId,
    clientSecret: github.clientSecret,
    enabled: true,
  });
  const user = h.newUser('keeper', { email: 'keeper@example.com' });
  const invite = await h.admin<{ link: string }>('POST', `/api/v1/users/${user.id}/invites`, {});
  const inviteToken = invite.body.link.split('/invite/')[1]!;
  const jar = new CookieJar();
  const accepted = await h.site<{ csrfToken: string }>('POST', `${A}/invites/accept`, {
    jar,
    payload: { token: inviteToken, password: PASSWORD },
  });
  expect(accepted.status).toBe(200);
  const enrolled = await h.site<{ totpUri: string; backupCodes: string[] }>('POST', `${A}/two-factor/enable`, {
    jar,
    csrf: accepted.body.csrfToken,
    payload: { password: PASSWORD },
  });
  await h.site('POST', `${A}/two-factor/confirm`, {
    jar,
    csrf: accepted.body.csrfToken,
    payload: { code: totpFromUri(enrolled.body.totpUri) },
  });
  const totpSecret = totpSecretFromUri(enrolled.body.totpUri);
  // Turning two-factor on replaced the session: the jar holds the new one.
  const sessionToken = decodeURIComponent(jar.cookies.get('__Host-slotdeck-session')!).split('.')[0]!;
  await admin('PUT', `/api/v1/users/${user.id}/github`, { githubId: 777 });
  github.nextUser = { id: 777, login: 'keeper-gh', emails: [] };
  const githubBrowser = new CookieJar();
  const start = await h.site<{ url: string }>('POST', `${A}/github/sign-in`, {
    jar: githubBrowser,
    payload: { returnTo: '/' },
  });
  const back = new URL((await fetch(start.body.url, { redirect: 'manual' })).headers.get('location')!);
  const landed = await h.site('GET', `${back.pathname}${back.search}`, { jar: githubBrowser });
  // The user has two-factor on: GitHub's sign-in still needs the code (it ends on the sign-in page).
  expect(landed.status).toBe(302);
  expect(github.issuedTokens.length).toBeGreaterThan(0);
  // A failed sign-in with the password typed into the login field too (a common slip).
  await h.site('POST', `${A}/sign-in`, { payload: { login: PASSWORD, password: PASSWORD } });
  for (const url of [
    '/api/v1/auth/settings',
    `/api/v1/users/${user.id}/sign-in`,
    `/api/v1/users/${user.id}/sessions`,
    '/api/v1/audit?limit=500',
    '/api/v1/audit?format=jsonl',
    '/api/v1/audit?format=csv',
  ])
    await admin('GET', url);

  const secrets: Record<string, string> = {
    password: PASSWORD,
    inviteToken,
    totpSecret,
    backupCode: enrolled.body.backupCodes[0]!,
    githubClientSecret: github.clientSecret,
    ...Object.fromEntries(github.issuedTokens.map((t, i) => [`githubAccessToken${i}`, t])),
  };
  h.db.pragma('wal_checkpoint(PASSIVE)');
  const files = [join(h.dir, 'agent.db'), join(h.dir, 'agent.db-wal')].map((f) => {
    try {
      return readFileSync(f).toString('latin1');
    } catch {
      return '';
    }
  });
  const logs = h.logs.join('\n');
  for (const [name, secret] of Object.entries(secrets)) {
    for (const content of files) expect(content.includes(secret), `${name} in the database`).toBe(false);
    expect(logs.includes(secret), `${name} in the logs`).toBe(false);
    for (const answer of adminAnswers) expect(answer.includes(secret), `${name} in an admin answer`).toBe(false);
  }
  // The session token: only in better-auth's auth_session.token, never in logs or admin answers.
  const tables = (
    h.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>
  ).map((t) => t.name);
  const holders: string[] = [];
  for (const table of tables) {
    const columns = (h.db.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name);
    for (const column of columns) {
      const hit = h.db
        .prepare(`SELECT 1 FROM "${table}" WHERE CAST("${column}" AS TEXT) LIKE ? LIMIT 1`)
        .get(`%${sessionToken}%`);
      if (hit) holders.push(`${table}.${column}`);
    }
  }
  expect(holders).toEqual(['auth_session.token']);
  expect(logs.includes(sessionToken)).toBe(false);
  for (const answer of adminAnswers) expect(answer.includes(sessionToken)).toBe(false);

  // The secrets on disk: private files, the GitHub secret sealed.
  const sealed = readFileSync(join(h.dir, 'secrets', 'github-client-secret'), 'utf8');
  expect(sealed).not.toContain(github.clientSecret);
  expect(sealed).toMatch(/^v1\./);
  for (const file of ['auth-secret', 'github-client-secret'])
    expect(statSync(join(h.dir, 'secrets', file)).mode & 0o777, file).toBe(0o600);
});

it('tightens a secrets folder that already exists (made 0755 by hand or by a restore) to 0700', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sd-secrets-'));
  try {
    mkdirSync(join(dataDir, 'secrets'));
    chmodSync(join(dataDir, 'secrets'), 0o755);
    new AuthSecrets(dataDir).secret();
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
