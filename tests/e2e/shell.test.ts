import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium, serveStatic } from './helpers/browser.js';

let browser: Browser;
let site: Awaited<ReturnType<typeof serveStatic>>;

beforeAll(async () => {
  browser = await launchChromium();
  site = await serveStatic({ '/': resolve(import.meta.dirname, '../../out/renderer') });
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
});

describe('the desktop renderer', () => {
  it('renders the app shell with empty states that say what to do next, under its CSP', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${site.url}/`);
    await expect.poll(() => page.locator('h1.brand').textContent()).toBe('Slotdeck');
    expect(await page.getByRole('complementary', { name: 'Hosts' }).textContent()).toContain('No hosts yet');
    expect(await page.locator('main').textContent()).toContain('Add a host');
    await page.screenshot({ path: join(ARTIFACTS, 'app-shell.png') });
    expect(problems).toEqual([]);
  });
});
