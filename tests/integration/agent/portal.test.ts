/**
 * The portal as an end user meets it, against a real agent process: sign in with the real sign-in routes (invite
 * link, password), list their slot, open its terminal on the public listener with a portal ticket and work in it,
 * see Claude Code running in it, create a key and call the gateway with it (a local fake of the Messages API as
 * upstream), see the usage; a stolen cookie from another Origin is refused; signing out closes the open terminal.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreatedPortalKey,
  ErrorBody,
  PortalMe,
  PortalSlotList,
  PortalTicket,
  PortalUsage,
  TerminalCloseCode,
  type Slot,
  type User,
} from '../../../remote-agent/src/contract/index.js';
import { acceptInvite, createUser, inviteLink, USER_PASSWORD } from '../../e2e/helpers/public-site.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { totpFromUri } from '../../remote-agent/modules/auth/totp.js';
import { AgentProcess } from '../helpers/agent.js';
import { TerminalTestClient } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

let upstream: FakeAnthropic;
let agent: AgentProcess;
let ada: User;
let bob: User;
let cara: User;
let adaSlot: Slot;
let bobSlot: Slot;
let scratch: string;

interface Session {
  cookie: string;
  csrf: string;
}

/** Signs in through the real sign-in route, as the sign-in page does (same-origin request). */
async function signIn(login: string): Promise<Session> {
  const response = await fetch(`${agent.gatewayUrl}/api/public/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: agent.gatewayUrl, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ login, password: USER_PASSWORD }),
  });
  const body = (await response.json()) as { csrfToken: string };
  expect(response.status, JSON.stringify(body)).toBe(200);
  const line = response.headers.getSetCookie().find((l) => /slotdeck-session=/.test(l));
  expect(line).toBeDefined();
  return { cookie: line!.split(';')[0]!, csrf: body.csrfToken };
}

async function portal<T = unknown>(
  method: string,
  path: string,
  session: Session | null,
  options: { body?: unknown; origin?: string | null; csrf?: boolean } = {},
): Promise<{ status: number; body: T }> {
  const origin = options.origin === undefined ? agent.gatewayUrl : options.origin;
  const response = await fetch(`${agent.gatewayUrl}/api/public/portal${path}`, {
    method,
    headers: {
      ...(session ? { cookie: session.cookie } : {}),
      ...(session && options.csrf !== false ? { 'x-slotdeck-csrf': session.csrf } : {}),
      ...(origin ? { origin } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'sd-portal-it-'));
  upstream = await startFakeAnthropic();
  agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url } });
  expect((await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY })).status).toBe(200);
  ada = await createUser(agent, 'ada');
  bob = await createUser(agent, 'bob');
  await acceptInvite(agent, await inviteLink(agent, ada.id));
  await acceptInvite(agent, await inviteLink(agent, bob.id));
  adaSlot = await agent.createSlot({ name: 'ada-dev', ownerId: ada.id });
  bobSlot = await agent.createSlot({ name: 'bob-dev', ownerId: bob.id });
}, 60_000);

afterAll(async () => {
  await agent?.destroy();
  await upstream?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('an end user in the portal', () => {
  it('signs in, sees their slot only, works in its terminal, and sees Claude Code running there', async () => {
    const session = await signIn('ada');
    const me = PortalMe.parse((await portal('GET', '/me', session)).body);
    expect(me.user.username).toBe('ada');
    expect(me.gatewayBaseUrl).toBe(agent.gatewayUrl);

    const listed = await until(
      'ada’s slot running in the portal',
      async () => PortalSlotList.parse((await portal('GET', '/slots', session)).body).slots,
      (slots) => slots.length === 1 && slots[0]!.state === 'running',
    );
    expect(listed[0]).toMatchObject({ id: adaSlot.id, name: 'ada-dev', claude: 'signed-out' });

    const minted = await portal('POST', `/slots/${adaSlot.id}/ticket`, session);
    expect(minted.status, JSON.stringify(minted.body)).toBe(201);
    const { url } = PortalTicket.parse(minted.body);
    expect(url).toMatch(new RegExp(`^/api/public/terminal/${adaSlot.id}\\?ticket=`));
    const wsUrl = `${agent.gatewayUrl.replace('http', 'ws')}${url}`;
    // The ticket is bound to the portal's origin: another page cannot use it (and it is single-use).
    const client = await TerminalTestClient.open(
      wsUrl,
      { AuthToken: '', columns: 100, rows: 30 },
      {
        origin: agent.gatewayUrl,
      },
    );
    await client.waitForPrompt();
    client.type('echo portal-$((6*7))\r');
    await client.waitFor('portal-42');

    // A program called claude in the slot's terminal: the portal says Claude Code is running.
    const fakeClaude = join(scratch, 'claude');
    writeFileSync(fakeClaude, '#!/bin/sh\nsleep 60\n');
    chmodSync(fakeClaude, 0o755);
    client.type(`${fakeClaude}\r`);
    await until(
      'Claude Code seen running',
      async () => PortalSlotList.parse((await portal('GET', '/slots', session)).body).slots[0]!.claude,
      (status) => status === 'running',
    );
    client.type('\x03');
    await until(
      'Claude Code seen gone',
      async () => PortalSlotList.parse((await portal('GET', '/slots', session)).body).slots[0]!.claude,
      (status) => status === 'signed-out',
    );

    // Signing out ends the session, and with it the terminal it opened.
    const out = await fetch(`${agent.gatewayUrl}/api/public/auth/sign-out`, {
      method: 'POST',
      headers: { cookie: session.cookie, 'x-slotdeck-csrf': session.csrf, origin: agent.gatewayUrl },
    });
    expect(out.status).toBe(200);
    const closed = await client.waitClosed();
    expect(closed.code).toBe(TerminalCloseCode.ACCESS_ENDED);
    const after = await portal('GET', '/slots', session);
    expect(after.status).toBe(401);
    expect(ErrorBody.parse(after.body).error.code).toBe('AUTH_SESSION_REQUIRED');
  }, 60_000);

  it('refuses a stolen cookie from another Origin or without the CSRF header, and another user’s slot', async () => {
    const session = await signIn('ada');
    for (const options of [{ origin: 'https://evil.example' }, { csrf: false }]) {
      const refused = await portal('POST', `/slots/${adaSlot.id}/ticket`, session, options);
      expect(refused.status).toBe(403);
      expect(ErrorBody.parse(refused.body).error.code).toBe('AUTH_CSRF_REFUSED');
      const key = await portal('POST', '/keys', session, { ...options, body: { name: 'stolen' } });
      expect(key.status).toBe(403);
    }
    const theirs = await portal('POST', `/slots/${bobSlot.id}/stop`, session);
    expect(theirs.status).toBe(404);
    expect(ErrorBody.parse(theirs.body).error.code).toBe('PORTAL_SLOT_NOT_YOURS');
    expect((await agent.slot(bobSlot.id)).state).toBe('running');
    expect((await portal('GET', '/slots', null)).status).toBe(401);
  });

  it('stops and starts their own slot; the admin revoking their sessions closes the terminal they had open', async () => {
    const session = await signIn('ada');
    const stopped = await portal('POST', `/slots/${adaSlot.id}/stop`, session);
    expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
    expect((await agent.slot(adaSlot.id)).state).toBe('stopped');
    expect((await agent.events(adaSlot.id))[0]!.message).toBe('stopped by ada (portal)');
    const refused = await portal('POST', `/slots/${adaSlot.id}/ticket`, session);
    expect(ErrorBody.parse(refused.body).error.code).toBe('SLOT_NOT_RUNNING');
    expect((await portal('POST', `/slots/${adaSlot.id}/start`, session)).status).toBe(200);
    await until(
      'the slot running again',
      async () => PortalSlotList.parse((await portal('GET', '/slots', session)).body).slots[0]!.state,
      (state) => state === 'running',
    );

    const { url } = PortalTicket.parse((await portal('POST', `/slots/${adaSlot.id}/ticket`, session)).body);
    const client = await TerminalTestClient.open(
      `${agent.gatewayUrl.replace('http', 'ws')}${url}`,
      { AuthToken: '', columns: 100, rows: 30 },
      { origin: agent.gatewayUrl },
    );
    await client.waitForPrompt();
    expect((await agent.request('DELETE', `/api/v1/users/${ada.id}/sessions`)).status).toBe(200);
    expect((await client.waitClosed()).code).toBe(TerminalCloseCode.ACCESS_ENDED);
    expect((await portal('GET', '/slots', session)).status).toBe(401);
  }, 60_000);

  it('closes the open terminal when better-auth swaps the session (two-factor turned on) and when the admin disables the user', async () => {
    await acceptInvite(agent, await inviteLink(agent, (cara = await createUser(agent, 'cara')).id));
    const caraSlot = await agent.createSlot({ name: 'cara-dev', ownerId: cara.id });
    const openTerminal = async (session: Session) => {
      await until(
        'cara’s slot running',
        async () => PortalSlotList.parse((await portal('GET', '/slots', session)).body).slots[0]?.state,
        (state) => state === 'running',
      );
      const minted = await portal('POST', `/slots/${caraSlot.id}/ticket`, session);
      expect(minted.status, JSON.stringify(minted.body)).toBe(201);
      const client = await TerminalTestClient.open(
        `${agent.gatewayUrl.replace('http', 'ws')}${PortalTicket.parse(minted.body).url}`,
        { AuthToken: '', columns: 100, rows: 30 },
        { origin: agent.gatewayUrl },
      );
      await client.waitForPrompt();
      return client;
    };
    const auth = (path: string, session: Session, body: unknown) =>
      fetch(`${agent.gatewayUrl}/api/public/auth${path}`, {
        method: 'POST',
        headers: {
          cookie: session.cookie,
          'x-slotdeck-csrf': session.csrf,
          origin: agent.gatewayUrl,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    const session = await signIn('cara');
    const client = await openTerminal(session);
    const enrolled = (await (await auth('/two-factor/enable', session, { password: USER_PASSWORD })).json()) as {
      totpUri: string;
    };
    const confirmed = await auth('/two-factor/confirm', session, { code: totpFromUri(enrolled.totpUri) });
    expect(confirmed.status).toBe(200);
    // The old session is gone (better-auth made a new one): the terminal it opened closes.
    expect((await client.waitClosed()).code).toBe(TerminalCloseCode.ACCESS_ENDED);
    const line = confirmed.headers.getSetCookie().find((l) => /slotdeck-session=/.test(l) && !/Max-Age=0/i.test(l));
    const renewed = {
      cookie: line!.split(';')[0]!,
      csrf: ((await confirmed.json()) as { csrfToken: string }).csrfToken,
    };
    const second = await openTerminal(renewed);
    expect((await agent.request('PATCH', `/api/v1/users/${cara.id}`, { active: false })).status).toBe(200);
    expect((await second.waitClosed()).code).toBe(TerminalCloseCode.ACCESS_ENDED);
  }, 90_000);

  it('creates a key, calls the gateway with it, and sees the usage', async () => {
    const session = await signIn('ada');
    const created = await portal('POST', '/keys', session, { body: { name: 'laptop' } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const key = CreatedPortalKey.parse(created.body);
    expect(key.shellLines).toBe(
      `export ANTHROPIC_BASE_URL=${agent.gatewayUrl}\nexport ANTHROPIC_API_KEY=${key.secret}`,
    );
    const answer = await fetch(`${agent.gatewayUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key.secret, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(answer.status).toBe(200);
    await answer.arrayBuffer();
    const range = `from=${new Date(Date.now() - 86_400_000).toISOString()}&to=${new Date(Date.now() + 86_400_000).toISOString()}`;
    const usage = await until(
      'the call in ada’s usage',
      async () => PortalUsage.parse((await portal('GET', `/usage?${range}&groupBy=model`, session)).body),
      (u) => u.totals.requests === 1,
    );
    expect(usage.groups.map((g) => g.key)).toEqual(['claude-sonnet-4-6']);
    expect(usage.totals.inputTokens).toBeGreaterThan(0);
    // Bob sees none of it.
    const bobs = await signIn('bob');
    const bobUsage = PortalUsage.parse((await portal('GET', `/usage?${range}`, bobs)).body);
    expect(bobUsage.totals.requests).toBe(0);
    // The secret appears nowhere in the agent's log.
    expect(agent.logs.join('\n')).not.toContain(key.secret);
  }, 30_000);
});
