import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot, User } from '../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../integration/fixtures/fake-anthropic.js';
import { AgentProcess } from '../integration/helpers/agent.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { createUser, inviteLink, USER_PASSWORD } from './helpers/public-site.js';

/**
 * The end users' portal on the agent's public listener (the gateway's port), in Chromium: a user the admin made and
 * invited sets a password from the invite link, signs in, opens their slot's terminal and types in it, makes a key
 * and calls the gateway with it, and sees that call in their usage. Only Anthropic's API is a stand-in.
 */

let browser: Browser;
let agent: AgentProcess;
let upstream: FakeAnthropic;
let user: User;
let slot: Slot;
let context: BrowserContext;
let page: Page;
let secret = '';

const shot = (target: Page, name: string): Promise<Buffer> =>
  target.screenshot({ path: join(ARTIFACTS, `portal-${name}.png`) });

beforeAll(async () => {
  [browser, upstream] = await Promise.all([launchChromium(), startFakeAnthropic()]);
  agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url } });
  const key = await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
  expect(key.status).toBeLessThan(300);
  user = await createUser(agent, 'grace');
  slot = await agent.createSlot({ name: 'grace-main', ownerId: user.id });
  // Another user's slot: never listed for grace.
  const other = await createUser(agent, 'mallory');
  await agent.createSlot({ name: 'mallory-main', ownerId: other.id });
});

afterAll(async () => {
  await browser?.close();
  await agent?.destroy();
  await upstream?.close();
});

describe('the end-user portal (Chromium, stand-in Anthropic API)', () => {
  it('sets the first password from the invite link, with a Secure, HttpOnly __Host- session cookie', async () => {
    const link = await inviteLink(agent, user.id);
    expect(link.startsWith(`${agent.gatewayUrl}/invite/`)).toBe(true);
    const invited = await browser.newContext({ viewport: { width: 1100, height: 750 } });
    invited.setDefaultTimeout(30_000);
    const invitePage = await invited.newPage();
    await invitePage.goto(link);
    await expect.poll(() => invitePage.getByTestId('invite-username').textContent()).toBe('grace');
    await invitePage.getByTestId('invite-password').fill(USER_PASSWORD);
    await invitePage.getByTestId('invite-password-repeat').fill(USER_PASSWORD);
    await shot(invitePage, 'invite');
    await invitePage.getByTestId('invite-submit').click();
    await invitePage.getByTestId('signed-in-as').filter({ hasText: 'grace' }).waitFor();
    // Chromium keeps a Secure cookie from http://127.0.0.1 (a secure context): the __Host- name holds.
    const cookies = await invited.cookies(agent.gatewayUrl);
    const session = cookies.find((cookie) => cookie.name === '__Host-slotdeck-session');
    expect(session, JSON.stringify(cookies.map((cookie) => cookie.name))).toBeDefined();
    expect(session).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
    // The invite is single use.
    const again = await invited.newPage();
    await again.goto(link);
    await again.getByTestId('invite-invalid').waitFor();
    await invited.close();
  });

  it('refuses a wrong password, then signs in and lists only the user’s own slots', async () => {
    context = await browser.newContext({ viewport: { width: 1100, height: 750 } });
    context.setDefaultTimeout(30_000);
    page = await context.newPage();
    await page.goto(`${agent.gatewayUrl}/`);
    await page.getByTestId('sign-in-form').waitFor();
    await page.getByTestId('sign-in-login').fill('grace');
    await page.getByTestId('sign-in-password').fill('not-the-password-at-all');
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('error').waitFor();
    expect(await page.getByTestId('signed-in-as').count()).toBe(0);
    await shot(page, 'sign-in-refused');

    await page.getByTestId('sign-in-password').fill(USER_PASSWORD);
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('signed-in-as').filter({ hasText: 'grace' }).waitFor();
    const card = page.getByTestId(`slot-${slot.name}`);
    await card.getByTestId('slot-state').filter({ hasText: 'running' }).waitFor();
    expect(await page.getByTestId('slot-list').innerText()).not.toContain('mallory-main');
    await shot(page, 'slots');
  });

  it('opens the slot’s terminal, types, and sees the echo', async () => {
    await page.getByTestId(`slot-${slot.name}`).getByTestId('slot-open').click();
    await page.waitForURL(`${agent.gatewayUrl}/slots/${slot.id}`);
    await page.getByTestId('terminal-status').filter({ hasText: 'Connected' }).waitFor();
    await page.getByTestId('terminal').click();
    // The shell computes the number: the echo proves the program ran what was typed, not just showed it.
    await page.keyboard.type('echo portal-$((6*7))');
    await page.keyboard.press('Enter');
    await page.locator('.xterm-rows').filter({ hasText: 'portal-42' }).waitFor();
    await shot(page, 'terminal');
    // Typed non-ASCII text reaches the program intact.
    await page.keyboard.type('echo "naïve café ✓" | od -An -tx1 | tr -d " \\n"; echo');
    await page.keyboard.press('Enter');
    await page.locator('.xterm-rows').filter({ hasText: '6e61c3af766520636166c3a920e29c930a' }).waitFor();
  });

  it('creates a key, shown once with the two lines for Claude Code, that the gateway takes', async () => {
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('key-name').fill('laptop');
    await page.getByTestId('key-create').click();
    const lines = (await page.getByTestId('key-shell-lines').textContent())?.trim() ?? '';
    const match = /^export ANTHROPIC_BASE_URL=(\S+)\nexport ANTHROPIC_API_KEY=(sk_user_[A-Za-z0-9]+)$/.exec(lines);
    expect(match, lines).not.toBeNull();
    expect(match![1]).toBe(agent.gatewayUrl);
    secret = match![2]!;
    await shot(page, 'key-created');
    await page.getByTestId('key-created-done').click();
    await page.getByTestId('key-created').waitFor({ state: 'detached' });
    const row = page.getByTestId('key-laptop');
    await row.waitFor();
    expect(await page.locator('body').innerText()).not.toContain(secret);

    const response = await fetch(`${agent.gatewayUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': secret, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'claude-sonnet-4-6',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'hello from the portal !usage in=100 out=23 cw=0 cr=0' }],
      }),
    });
    const body = (await response.json()) as { type?: string; usage?: { output_tokens: number } };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.usage?.output_tokens).toBe(23);
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBe(FAKE_UPSTREAM_KEY);
  });

  it('shows that call in the usage, per model', async () => {
    await page.getByTestId('nav-usage').click();
    // Usage is recorded as the answer ends; the page shows what the agent has when it loads.
    await expect
      .poll(
        async () => {
          await page.reload();
          const models = page.getByTestId('usage-models');
          await page.getByTestId('usage-totals').waitFor();
          return (await models.count()) > 0 ? models.innerText() : '';
        },
        { timeout: 20_000, interval: 500 },
      )
      .toMatch(/claude-sonnet-4-6\s+123\s+\$0\.0006\s+1/);
    expect(await page.getByTestId('usage-totals').innerText()).toMatch(/123\s*tokens/);
    await shot(page, 'usage');
  });
});
