import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../integration/fixtures/fake-anthropic.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

/**
 * The gateway as an admin meets it in the panel: set the organisation's key, create a user and a key, call the
 * gateway with that key as Claude Code would, and watch the tokens appear in Usage. Only the upstream is a stand-in.
 */
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

let browser: Browser;
let panel: PanelProcess;
let upstream: FakeAnthropic;
let page: Page;
let gatewayUrl = '';
let secret = '';

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const view = (name: 'Consoles' | 'Users' | 'Usage' | 'Gateway') =>
  page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name, exact: true });

beforeAll(async () => {
  [browser, upstream] = await Promise.all([launchChromium(), startFakeAnthropic()]);
  panel = await PanelProcess.start({
    SLOTDECK_AGENT_UPSTREAM_URL: upstream.url,
    // Any free port: the admin reads the real one from the Gateway view, as users do.
    SLOTDECK_AGENT_GATEWAY_PORT: '0',
    ...(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' }),
  });
  page = await panel.open(browser);
  await page.getByTestId('connection-status').filter({ hasText: 'This computer: connected' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
  await upstream?.close();
});

async function callGateway(content: string, stream: boolean): Promise<{ status: number; text: string }> {
  const response = await fetch(`${gatewayUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': secret, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      stream,
      messages: [{ role: 'user', content }],
    }),
  });
  return { status: response.status, text: await response.text() };
}

describe('the gateway in the panel (Chromium, browser mode)', () => {
  it('takes the organisation’s upstream key in the Gateway view and shows the URL to use', async () => {
    await view('Gateway').click();
    const upstreamCard = page.getByRole('region', { name: 'Upstream' });
    await upstreamCard.getByText('No upstream key yet').waitFor();
    await shot('gateway-no-upstream-key');
    await upstreamCard.getByLabel('Organisation API key').fill(FAKE_UPSTREAM_KEY);
    await upstreamCard.getByRole('button', { name: 'Save upstream key' }).click();
    await upstreamCard.getByText('key configured').waitFor();
    // The key itself is never shown back.
    expect(await page.locator('body').innerText()).not.toContain(FAKE_UPSTREAM_KEY);
    gatewayUrl = (await page.getByTestId('gateway-url').textContent()) ?? '';
    expect(gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await page.getByRole('region', { name: 'Address' }).innerText()).toContain('this machine only');
    await shot('gateway-configured');
  });

  it('keeps the typing where the admin put it while the view behind a dialog loads', async () => {
    // The dialog opens before the user list has loaded (it loads 200 ms after the view opens); its arrival re-renders
    // the view, which used to move focus back to the dialog's first field mid-word.
    await view('Users').click();
    await page.getByRole('button', { name: '+ User' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Display name').click();
    await page.keyboard.type('Ada');
    await page.getByText('No users yet.').waitFor();
    await page.keyboard.type(' Lovelace');
    expect(await userDialog.getByLabel('Display name').inputValue()).toBe('Ada Lovelace');
    expect(await userDialog.getByLabel('Username').inputValue()).toBe('');
    await userDialog.getByRole('button', { name: 'Cancel' }).click();
    await userDialog.waitFor({ state: 'detached' });
  });

  it('creates a user and a key, shown once with the lines to paste', async () => {
    await view('Users').click();
    await page.getByText('No users yet.').waitFor();
    await shot('users-empty');
    await page.getByRole('button', { name: '+ User' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Username').fill('ada');
    await userDialog.getByLabel('Display name').fill('Ada Lovelace');
    await userDialog.getByRole('button', { name: 'Create user' }).click();
    await userDialog.waitFor({ state: 'detached' });
    const details = page.getByRole('region', { name: 'User details' });
    await details.getByRole('heading', { name: /Ada Lovelace/ }).waitFor();
    await details.getByText('No keys yet.', { exact: false }).waitFor();

    await details.getByRole('button', { name: '+ Key' }).click();
    const keyDialog = page.getByRole('dialog', { name: 'New key for ada' });
    await keyDialog.getByLabel('Key name').fill('laptop');
    await keyDialog.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByRole('dialog', { name: /Key “laptop” for ada/ });
    secret = (await shown.getByTestId('new-key').textContent()) ?? '';
    expect(secret).toMatch(/^sk_user_[A-Za-z0-9]+$/);
    expect(await shown.getByTestId('env-lines').textContent()).toBe(
      `export ANTHROPIC_BASE_URL=${gatewayUrl}\nexport ANTHROPIC_API_KEY=${secret}`,
    );
    expect(await shown.innerText()).toContain('only time it is shown');
    await shot('key-shown-once');
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });

    // The list shows the key's prefix and state, never the key again.
    const row = details.locator('.keys-table tbody tr', { hasText: 'laptop' });
    await row.waitFor();
    expect(await row.innerText()).toMatch(/sk_user_\w+…/);
    expect(await row.innerText()).toContain('active');
    expect(await page.locator('body').innerText()).not.toContain(secret);
    expect(await page.getByRole('region', { name: 'User list' }).innerText()).toContain('1 key');
    await shot('user-with-key');
  });

  it('meters calls made with the key, and Usage shows their tokens by user and by model', async () => {
    await view('Usage').click();
    await page.getByText('No usage in this range yet.').waitFor();
    expect(await page.locator('.empty-block').innerText()).toContain(`ANTHROPIC_BASE_URL=${gatewayUrl}`);
    await shot('usage-empty');

    const plain = await callGateway('!usage in=1200 out=345 cw=0 cr=0', false);
    expect(plain.status).toBe(200);
    expect(plain.text).toContain('Hello from the fake upstream.');
    const streamed = await callGateway('!usage in=800 out=55 cw=100 cr=200 !deltas 2', true);
    expect(streamed.status).toBe(200);
    expect(streamed.text).toContain('event: message_stop');
    // Without a valid key the gateway refuses, in Anthropic's shape.
    const refused = await fetch(`${gatewayUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk_user_not-a-key', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(refused.status).toBe(401);

    await view('Usage').click();
    // Rows are committed as the responses end; the view shows them at its next load.
    const refresh = page.getByRole('button', { name: 'Refresh', exact: true });
    await expect
      .poll(
        async () => {
          if (await refresh.isEnabled().catch(() => false))
            await refresh.click({ timeout: 2000 }).catch(() => undefined);
          return page
            .getByTestId('total-total-tokens')
            .textContent({ timeout: 2000 })
            .catch(() => null);
        },
        { timeout: 20_000 },
      )
      .toBe('2,700');
    expect(await page.getByTestId('total-requests').textContent()).toBe('2');
    expect(await page.getByTestId('total-input').textContent()).toBe('2,000');
    expect(await page.getByTestId('total-output').textContent()).toBe('400');
    expect(await page.getByTestId('total-cache').textContent()).toBe('300');
    // The charts are drawn (tokens and cost per day, stacked by model), and the legend names the model.
    await page.getByRole('region', { name: 'Tokens per day, by model' }).locator('canvas').waitFor();
    await page.getByRole('region', { name: 'Cost per day, by model' }).locator('canvas').waitFor();
    const topUsers = page.getByRole('region', { name: 'Top users' });
    expect(await topUsers.innerText()).toMatch(/ada[\s\S]*2,700 tokens/);
    await shot('usage-overview');

    // Drill down into ada: her key and her requests, one by one.
    await topUsers.getByRole('button', { name: /ada/ }).click();
    await page.getByText('User: ada').waitFor();
    const keys = page.getByRole('region', { name: 'Keys of ada' });
    await keys.getByText('laptop').waitFor();
    const requests = page.getByRole('region', { name: 'Latest requests of ada' });
    await expect.poll(() => requests.locator('tbody tr').count()).toBe(2);
    expect(await requests.innerText()).toContain('claude-sonnet-4-6');
    expect(await requests.innerText()).toMatch(/1,200[\s\S]*345/);
    await shot('usage-drill-down');
  });

  it('shows when the key was last used, and what a new quota leaves of the day', async () => {
    await view('Users').click();
    const details = page.getByRole('region', { name: 'User details' });
    const row = details.locator('.keys-table tbody tr', { hasText: 'laptop' });
    await expect.poll(() => row.innerText(), { timeout: 10_000 }).toMatch(/just now|min ago/);

    const quotas = page.getByRole('region', { name: 'Quotas of ada' });
    await quotas.getByLabel('UTC day: max tokens').fill('5000');
    await quotas.getByRole('button', { name: 'Save quotas' }).click();
    const day = quotas.locator('tbody tr', { hasText: 'UTC day' });
    await expect.poll(() => day.innerText()).toContain('2,700 of 5,000 tokens (2,300 left)');
    expect(await day.innerText()).toMatch(/resets in \d+ (h|min)/);
    await shot('user-quota');
  });

  it('shows a warning on every view while legacy mode is on, until it is turned off', async () => {
    await view('Gateway').click();
    const legacy = page.getByRole('region', { name: 'Legacy mode' });
    await expect.poll(() => legacy.getByLabel('Bill legacy requests to').inputValue()).toMatch(/^u_/);
    await legacy.getByRole('switch').click();
    const confirm = page.getByRole('dialog', { name: 'Turn legacy mode on?' });
    await confirm.getByRole('button', { name: 'Turn legacy mode on' }).click();
    const banner = page.locator('.legacy-banner');
    await banner.waitFor();
    expect(await banner.innerText()).toContain('Legacy mode is on for This computer');
    expect(await banner.innerText()).toContain('bills every request to ada');
    await view('Consoles').click();
    await banner.waitFor();
    await shot('legacy-mode-banner');

    await banner.getByRole('button', { name: 'Turn it off in Gateway' }).click();
    await legacy.getByRole('switch').click();
    await banner.waitFor({ state: 'detached' });
  });

  it('shows Claude Code’s lines to paste, tests upstream, and counts the refused requests of the last day', async () => {
    await view('Gateway').click();
    const connect = page.getByRole('region', { name: 'Connect Claude Code' });
    expect(await connect.getByTestId('connect-snippet').textContent()).toBe(
      `export ANTHROPIC_BASE_URL=${gatewayUrl}\nexport ANTHROPIC_API_KEY="<the user's key: sk_user_…>"\nclaude`,
    );
    expect(await connect.getByTestId('status-line-snippet').textContent()).toContain(
      'curl -s \\"$ANTHROPIC_BASE_URL/v1/me/usage?format=line\\" -H \\"x-api-key: $ANTHROPIC_API_KEY\\"',
    );

    const upstreamCard = page.getByRole('region', { name: 'Upstream' });
    const before = upstream.requests.length;
    await upstreamCard.getByRole('button', { name: 'Test upstream' }).click();
    const result = upstreamCard.getByTestId('upstream-test-result');
    await result.waitFor();
    expect(await result.innerText()).toMatch(/ok\s+Upstream answered in \d+ ms: the organisation key works\./);
    expect(upstream.requests.slice(before).map((r) => r.path)).toEqual(['/v1/models']);

    // The call with a made-up key (in the metering test above) was refused: it is counted and listed.
    const count = page.getByRole('region', { name: 'Refused requests, last 24 hours' });
    await expect.poll(() => count.getByTestId('refused-24h').textContent()).toBe('1');
    const list = page.getByRole('region', { name: 'Refused requests', exact: true });
    await list.locator('tbody tr').first().waitFor();
    expect(await list.locator('tbody tr').first().innerText()).toMatch(
      /401[\s\S]*Not a Slotdeck key[\s\S]*unknown caller/,
    );
    await count.getByRole('button', { name: 'See the list' }).click();
    await shot('gateway-connect-test-refused');
  });

  it('lists a revoked key’s refused call in its user’s detail, filterable per key', async () => {
    await view('Users').click();
    const details = page.getByRole('region', { name: 'User details' });
    const refused = page.getByRole('region', { name: 'Refused requests of ada' });
    await refused.getByTestId('refusals-empty').waitFor();
    expect(await refused.innerText()).toContain('No refused requests for this user');

    const row = details.locator('.keys-table tbody tr', { hasText: 'laptop' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog', { name: 'Revoke laptop?' }).getByRole('button', { name: 'Revoke key' }).click();
    await expect.poll(() => row.innerText()).toContain('revoked');
    // A revoked key is refused within a second (the gateway trusts a looked-up key that long).
    await expect.poll(async () => (await callGateway('hello', false)).status, { timeout: 10_000 }).toBe(401);

    await refused.getByRole('button', { name: 'Refresh' }).click();
    const first = refused.locator('tbody tr').first();
    await expect.poll(() => first.innerText().catch(() => ''), { timeout: 10_000 }).toMatch(/Key revoked/);
    expect(await first.innerText()).toMatch(/401[\s\S]*GATEWAY_KEY_REVOKED[\s\S]*was revoked[\s\S]*laptop/);
    expect(await page.locator('body').innerText()).not.toContain(secret);

    const keyFilter = refused.getByLabel('Filter by key');
    const laptop = await keyFilter.locator('option', { hasText: 'laptop' }).getAttribute('value');
    await keyFilter.selectOption(laptop);
    await expect.poll(() => refused.locator('tbody tr').count()).toBeGreaterThan(0);
    await refused.getByLabel('Filter by status').selectOption('429');
    await refused.getByText('No refused request matches these filters.').waitFor();
    await refused.getByLabel('Filter by status').selectOption('');
    await first.waitFor();
    await refused.scrollIntoViewIfNeeded();
    await shot('user-refused-requests');
  });
});
