/**
 * End-user sign-in against a real agent process over real HTTP (fetch, cookies carried by hand as a browser would):
 * an invite link sets the first password, password sign-in and the session's CSRF token, GitHub through a local
 * stand-in of its OAuth endpoints (stand-in), and revocation by the admin ending the session at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGithub, type FakeGithub } from '../../fixtures/fake-github.js';
import { AgentProcess } from '../helpers/agent.js';

const A = '/api/public/auth';
const PASSWORD = 'amber glacier tunnel 19';
let agent: AgentProcess;
let github: FakeGithub;

beforeAll(async () => {
  github = await startFakeGithub();
  agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_PORTAL_GITHUB_URL: github.url,
      SLOTDECK_AGENT_PORTAL_GITHUB_API_URL: github.url,
    },
  });
}, 60_000);
afterAll(async () => {
  await agent?.destroy();
  await github?.close();
});

/** A browser's cookie jar over fetch. */
class Browser {
  readonly cookies = new Map<string, string>();
  async call(method: string, path: string, options: { body?: unknown; csrf?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { origin: agent.gatewayUrl, 'sec-fetch-site': 'same-origin' };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.csrf) headers['x-slotdeck-csrf'] = options.csrf;
    const response = await fetch(path.startsWith('http') ? path : `${agent.gatewayUrl}${path}`, {
      method,
      headers,
      redirect: 'manual',
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair!.indexOf('=');
      const value = pair!.slice(index + 1);
      if (value === '' || /max-age=0/i.test(line)) this.cookies.delete(pair!.slice(0, index));
      else this.cookies.set(pair!.slice(0, index), value);
    }
    return response;
  }
  async json<T>(method: string, path: string, options: { body?: unknown; csrf?: string } = {}) {
    const response = await this.call(method, path, options);
    return { status: response.status, body: (await response.json()) as T, headers: response.headers };
  }
}

async function invitedUser(username: string): Promise<{ id: string; browser: Browser; csrf: string }> {
  const user = await agent.request<{ id: string }>('POST', '/api/v1/users', { username });
  const invite = await agent.request<{ link: string }>('POST', `/api/v1/users/${user.body.id}/invites`, {});
  expect(invite.status).toBe(201);
  expect(invite.body.link.startsWith(`${agent.gatewayUrl}/invite/`)).toBe(true);
  const token = invite.body.link.split('/invite/')[1]!;
  const browser = new Browser();
  const accepted = await browser.json<{ csrfToken: string }>('POST', `${A}/invites/accept`, {
    body: { token, password: PASSWORD },
  });
  expect(accepted.status).toBe(200);
  return { id: user.body.id, browser, csrf: accepted.body.csrfToken };
}

describe('sign-in on a real agent', () => {
  it('sets the first password from an invite link, then signs in with it over HTTP with a __Host- cookie', async () => {
    const { browser } = await invitedUser('ada');
    expect(browser.cookies.has('__Host-slotdeck-session')).toBe(true);
    const fresh = new Browser();
    const signIn = await fresh.json<{ user: { username: string }; csrfToken: string }>('POST', `${A}/sign-in`, {
      body: { login: 'ada', password: PASSWORD },
    });
    expect(signIn.status).toBe(200);
    expect(signIn.headers.getSetCookie().join('\n')).toMatch(
      /__Host-slotdeck-session=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; Secure; SameSite=Lax/,
    );
    const session = await fresh.json<{ user: { username: string } | null; csrfToken: string }>('GET', `${A}/session`);
    expect(session.body.user?.username).toBe('ada');
    expect(session.body.csrfToken).toBe(signIn.body.csrfToken);
    // Security headers on the answer.
    expect(session.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    // The CSRF header is needed, and an invite works once.
    expect((await fresh.call('POST', `${A}/sign-out`)).status).toBe(403);
    expect((await fresh.call('POST', `${A}/sign-out`, { csrf: signIn.body.csrfToken })).status).toBe(200);
    expect((await fresh.json<{ user: null }>('GET', `${A}/session`)).body.user).toBeNull();
    const wrong = await new Browser().json<{ error: { code: string } }>('POST', `${A}/sign-in`, {
      body: { login: 'ada', password: 'wrong password here' },
    });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'AUTH_CREDENTIALS_INVALID' } } });
  });

  it('signs in through GitHub (stand-in) for the user the admin linked by numeric id', async () => {
    const set = await agent.request('PUT', '/api/v1/auth/github', {
      clientId: github.clientId,
      clientSecret: github.clientSecret,
      enabled: true,
    });
    expect(set.status).toBe(200);
    const user = await agent.request<{ id: string }>('POST', '/api/v1/users', { username: 'octo' });
    await agent.request('PUT', `/api/v1/users/${user.body.id}/github`, { githubId: 9001 });
    github.nextUser = {
      id: 9001,
      login: 'octocat',
      emails: [{ email: 'octo@example.com', primary: true, verified: true }],
    };
    const browser = new Browser();
    const start = await browser.json<{ url: string }>('POST', `${A}/github/sign-in`, { body: { returnTo: '/slots' } });
    expect(start.status).toBe(200);
    const approved = await fetch(start.body.url, { redirect: 'manual' });
    const callback = await browser.call('GET', approved.headers.get('location')!);
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe('/slots');
    const session = await browser.json<{ user: { id: string; githubLinked: boolean } | null }>('GET', `${A}/session`);
    expect(session.body.user).toMatchObject({ id: user.body.id, githubLinked: true });
  });

  it('throttles repeated failures (429 with Retry-After) and refuses a disabled user everywhere', async () => {
    const { id, browser, csrf } = await invitedUser('hopper');
    const attacker = new Browser();
    const statuses: number[] = [];
    let last: Response | null = null;
    for (let i = 0; i < 6; i += 1) {
      last = await attacker.call('POST', `${A}/sign-in`, {
        body: { login: 'hopper', password: 'wrong password here' },
      });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses[5]).toBe(429);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // A cross-site request with the victim's cookie is refused, and changes nothing.
    const forged = await fetch(`${agent.gatewayUrl}${A}/sign-out-everywhere`, {
      method: 'POST',
      headers: {
        cookie: [...browser.cookies].map(([n, v]) => `${n}=${v}`).join('; '),
        origin: 'https://evil.example',
        'x-slotdeck-csrf': csrf,
      },
    });
    expect(forged.status).toBe(403);
    expect((await browser.json<{ user: unknown }>('GET', `${A}/session`)).body.user).not.toBeNull();
    const disabled = await agent.request('PATCH', `/api/v1/users/${id}`, { active: false });
    expect(disabled.status).toBe(200);
    expect((await browser.json<{ user: unknown }>('GET', `${A}/session`)).body.user).toBeNull();
    const portal = await browser.call('GET', '/api/public/portal/me');
    expect(portal.status).toBe(401);
  });

  it('ends a session the admin revokes at once', async () => {
    const { id, browser, csrf } = await invitedUser('grace');
    const sessions = await agent.request<{ sessions: Array<{ id: string; ipAddress: string | null }> }>(
      'GET',
      `/api/v1/users/${id}/sessions`,
    );
    expect(sessions.body.sessions).toHaveLength(1);
    expect(sessions.body.sessions[0]!.ipAddress).toBe('127.0.0.1');
    const revoked = await agent.request('DELETE', `/api/v1/users/${id}/sessions`);
    expect(revoked.body).toEqual({ ended: 1 });
    const after = await browser.json<{ error: { code: string } }>('POST', `${A}/sign-out-everywhere`, { csrf });
    expect(after).toMatchObject({ status: 401, body: { error: { code: 'AUTH_SESSION_REQUIRED' } } });
  });
});
