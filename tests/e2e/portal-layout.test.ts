import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot, User } from '../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../integration/helpers/agent.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { acceptInvite, createUser, inviteLink, USER_PASSWORD } from './helpers/public-site.js';

/**
 * The portal's pages as a phone (360 px) and a desktop show them, against a real agent: nothing wider than the
 * screen, no script or style the page's CSP refuses, the sign-in form usable from the keyboard alone, the theme
 * applied the moment it is picked, and the first page load's JavaScript within its budget. Screenshots in
 * test-results/e2e/portal-layout-*.png.
 */

let browser: Browser;
let agent: AgentProcess;
let user: User;
let slot: Slot;

beforeAll(async () => {
  browser = await launchChromium();
  agent = await AgentProcess.start();
  user = await createUser(agent, 'hedy');
  await acceptInvite(agent, await inviteLink(agent, user.id));
  slot = await agent.createSlot({ name: 'hedy-main', ownerId: user.id });
});

afterAll(async () => {
  await browser?.close();
  await agent?.destroy();
});

/** Widest element beyond the viewport (0 when nothing overflows sideways). */
const overflow = (page: Page): Promise<number> =>
  page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

async function openPortal(
  width: number,
): Promise<{ page: Page; refused: string[]; scripts: { url: string; bytes: number }[] }> {
  const context = await browser.newContext({ viewport: { width, height: 740 } });
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  const refused: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
  });
  const scripts: { url: string; bytes: number }[] = [];
  page.on('response', (response) => {
    if (response.request().resourceType() !== 'script') return;
    void response.body().then(
      (body) => scripts.push({ url: response.url(), bytes: body.length }),
      () => undefined,
    );
  });
  return { page, refused, scripts };
}

describe('portal pages at 360 px and on a desktop (Chromium, real agent)', () => {
  for (const width of [360, 1280]) {
    it(`fit ${width} px, obey the CSP, and work from the keyboard`, async () => {
      const { page, refused } = await openPortal(width);
      await page.goto(`${agent.gatewayUrl}/keys`);
      // Signed out: sent to sign-in, remembering the page.
      await page.getByTestId('sign-in-form').waitFor();
      expect(new URL(page.url()).pathname).toBe('/sign-in');
      expect(await overflow(page)).toBeLessThanOrEqual(0);
      await page.screenshot({ path: join(ARTIFACTS, `portal-layout-sign-in-${width}.png`) });

      // Keyboard only: the labelled fields in order, Enter submits.
      await page.getByLabel('Username or email').focus();
      await page.keyboard.type('hedy');
      await page.keyboard.press('Tab');
      await page.keyboard.type(USER_PASSWORD);
      await page.keyboard.press('Enter');
      await page.getByTestId('key-create-form').waitFor();
      expect(new URL(page.url()).pathname).toBe('/keys');

      for (const [nav, ready] of [
        ['nav-slots', `slot-${slot.name}`],
        ['nav-keys', 'key-create-form'],
        ['nav-usage', 'usage-totals'],
        ['nav-settings', 'change-password-form'],
      ] as const) {
        await page.getByTestId(nav).click();
        await page.getByTestId(ready).waitFor();
        expect(await overflow(page), nav).toBeLessThanOrEqual(0);
        await page.screenshot({ path: join(ARTIFACTS, `portal-layout-${nav.slice(4)}-${width}.png`), fullPage: true });
      }

      // The theme changes at once, and stays after a reload (kept per user by the agent).
      await page.getByTestId('theme-dark').check();
      expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
      await page.reload();
      await page.getByTestId('change-password-form').waitFor();
      await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
      await page.getByTestId('theme-light').check();

      await page.getByTestId('nav-slots').click();
      await page.getByTestId(`slot-${slot.name}`).getByTestId('slot-open').click();
      await page.getByTestId('terminal-status').filter({ hasText: 'Connected' }).waitFor();
      expect(await overflow(page)).toBeLessThanOrEqual(0);
      await page.screenshot({ path: join(ARTIFACTS, `portal-layout-terminal-${width}.png`) });
      expect(refused).toEqual([]);
    });
  }

  it('loads at most 150 KB of gzipped JavaScript for the first page, and xterm only with a terminal', async () => {
    const { page, scripts } = await openPortal(1280);
    await page.goto(`${agent.gatewayUrl}/sign-in`);
    await page.getByTestId('sign-in-form').waitFor();
    await page.waitForLoadState('networkidle');
    const urls = scripts.map((script) => new URL(script.url).pathname);
    expect(urls.length).toBeGreaterThan(0);
    let gzipped = 0;
    for (const path of urls) {
      const response = await fetch(`${agent.gatewayUrl}${path}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      // fetch decodes gzip: measure the bytes on the wire through the length of a raw gzip answer instead.
      gzipped += Number(response.headers.get('content-length') ?? (await response.arrayBuffer()).byteLength);
    }
    console.log(`portal_initial_js_gzip_kb=${(gzipped / 1024).toFixed(1)} (${urls.join(', ')})`);
    expect(gzipped / 1024).toBeLessThanOrEqual(150);
    expect(urls.some((path) => /TerminalPage|xterm|terminal-theme/.test(path))).toBe(false);
  });
});
