import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { consoleText, PanelProcess } from './helpers/panel.js';

let browser: Browser;
let panel: PanelProcess;
let page: Page;
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);
const marker = (): string => Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  browser = await launchChromium();
  panel = await PanelProcess.start(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' });
  page = await panel.open(browser);
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
});

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const visibleConsole = (): Locator => page.locator('.console:not([hidden])');
const activeTabText = (): Promise<string | null> => page.locator('.tab.active .tab-label').textContent();

/**
 * Types a command where the keyboard focus is (no click first: these tests check that focus is in the console) and
 * returns what it printed, found by a marker the shell computes (so the typed line itself does not match).
 */
async function run(command: string): Promise<string> {
  const word = `out-${marker()}`;
  await page.keyboard.type(`echo ${word}-$((6*7))-$(${command})`);
  await page.keyboard.press('Enter');
  const found = new RegExp(`${word}-42-(\\S*)`);
  await expect.poll(async () => found.exec(await consoleText(page))?.[1], { timeout: 15_000 }).toBeDefined();
  return found.exec(await consoleText(page))![1]!;
}

async function confirmToolbar(verb: 'Stop' | 'Restart'): Promise<void> {
  await page.locator('.toolbar').getByRole('button', { name: verb, exact: true }).click();
  await page
    .getByRole('dialog', { name: `${verb} main?` })
    .getByRole('button', { name: `${verb} slot` })
    .click();
}

async function createSlot(name: string): Promise<void> {
  await page.getByRole('button', { name: '+ New slot' }).first().click();
  const dialog = page.getByRole('dialog', { name: /New slot on This computer/ });
  await dialog.getByLabel('Name').fill(name);
  await dialog.getByRole('button', { name: 'Create and open' }).click();
  await page.locator('.tab.active', { hasText: name }).waitFor();
  await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
}

describe('consoles in Chromium (browser mode)', () => {
  it('reattach by themselves after Stop then Start and after Restart, showing the new session', async () => {
    await page.locator('.tab', { hasText: 'main' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
    await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
    const firstShell = await run('echo $$');

    await confirmToolbar('Stop');
    // A stopped slot says so in its console, with a way to start it there.
    await expect.poll(() => visibleConsole().getAttribute('data-state'), { timeout: 15_000 }).toBe('stopped');
    const start = visibleConsole().getByRole('button', { name: 'Start main' });
    await start.waitFor();
    expect(await visibleConsole().getByRole('status').textContent()).toContain('main is stopped');
    await shot('console-slot-stopped');
    await start.click();
    await expect.poll(() => visibleConsole().getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
    // The console shows the new session: a new shell answers what is typed, without a click into the console.
    const secondShell = await run('echo $$');
    expect(secondShell).not.toBe(firstShell);

    // Started from elsewhere (the toolbar), the console follows too.
    await confirmToolbar('Stop');
    await expect.poll(() => visibleConsole().getAttribute('data-state'), { timeout: 15_000 }).toBe('stopped');
    await page.locator('.toolbar').getByRole('button', { name: 'Start', exact: true }).click();
    await expect.poll(() => visibleConsole().getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
    await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
    const thirdShell = await run('echo $$');
    expect(thirdShell).not.toBe(secondShell);

    // Restart: the dialog closes, the focus is back in the console, and the new shell answers. The screen is cleared
    // first, so that the mark the last Start left cannot pass for the one the restart prints.
    await page.keyboard.type('clear');
    await page.keyboard.press('Enter');
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).not.toMatch(/new session/i);
    await confirmToolbar('Restart');
    await expect.poll(() => consoleText(page), { timeout: 20_000 }).toMatch(/new session/i);
    await expect.poll(() => visibleConsole().getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
    const fourthShell = await run('echo $$');
    expect(fourthShell).not.toBe(thirdShell);
    await shot('console-after-restart');
  });

  it('switches tabs with Ctrl+PageDown/PageUp and their browser-safe alternatives, sending nothing to the shell', async () => {
    await createSlot('second');
    // The dialog closed: the new console has the focus.
    expect(await run('echo typed')).toBe('typed');

    await page.keyboard.press('Control+PageUp');
    await expect.poll(activeTabText).toMatch(/^main/);
    await page.keyboard.press('Control+PageDown');
    await expect.poll(activeTabText).toMatch(/^second/);
    await page.keyboard.press('Alt+PageDown');
    await expect.poll(activeTabText).toMatch(/^main/);
    await page.keyboard.press('Alt+PageUp');
    await expect.poll(activeTabText).toMatch(/^second/);
    await page.keyboard.press('Control+Shift+BracketLeft');
    await expect.poll(activeTabText).toMatch(/^main/);
    await page.keyboard.press('Control+Shift+BracketRight');
    await expect.poll(activeTabText).toMatch(/^second/);

    // Nothing of those keys reached either shell: the next line typed is exactly what runs.
    const clean = `clean-${marker()}`;
    await page.keyboard.type(`echo ${clean}`);
    await page.keyboard.press('Enter');
    await expect.poll(() => consoleText(page)).toMatch(new RegExp(`^${clean}$`, 'm'));
    expect(await consoleText(page)).toMatch(new RegExp(`[#$] echo ${clean}$`, 'm'));
    expect(await consoleText(page)).not.toMatch(/[56]~|\[[56];/);

    // Alt+Shift+N opens the new slot dialog where Ctrl+Shift+N is the browser's; Escape closes it, focus comes back.
    await page.keyboard.press('Alt+Shift+KeyN');
    const dialog = page.getByRole('dialog', { name: /New slot on This computer/ });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.count()).toBe(0);
    expect(await run('echo after-dialog')).toBe('after-dialog');

    // The shortcuts are listed, with the alternatives, where the admin finds them.
    await page.getByRole('button', { name: 'Keyboard shortcuts' }).click();
    const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    expect(await help.textContent()).toContain('Alt+PageDown');
    expect(await help.textContent()).toContain('Alt+Shift+W');
    await shot('console-shortcuts-help');
    await page.keyboard.press('Escape');
    expect(await run('echo after-help')).toBe('after-help');
  });

  it('keeps the active tab in view at 1000 px with 12 tabs, and the terminal above the status bar', async () => {
    const statusTop = async (): Promise<number> => (await page.locator('.statusbar').boundingBox())!.y;
    const terminalBottom = async (): Promise<number> => {
      const box = (await page.locator('.console:not([hidden]) .xterm').boundingBox())!;
      return box.y + box.height;
    };
    // A read-only view takes the writer's size: watched from a window smaller than the writer's, it still fits its
    // box instead of running under the status bar.
    await page.locator('.tab', { hasText: 'second' }).first().locator('.tab-label').click();
    await page.locator('.toolbar').getByRole('button', { name: 'Watch' }).click();
    await expect.poll(activeTabText).toMatch(/^second.*read-only/);
    await expect.poll(() => visibleConsole().getAttribute('data-state'), { timeout: 15_000 }).toBe('open');
    await page.setViewportSize({ width: 1000, height: 600 });
    await expect.poll(terminalBottom).toBeLessThanOrEqual(await statusTop());
    await shot('console-read-only-1000px');

    for (const name of ['third', 'fourth', 'fifth', 'sixth']) await createSlot(name);
    // Each slot's read-only view is a tab of its own: 12 tabs.
    for (const name of ['main', 'third', 'fourth', 'fifth', 'sixth']) {
      await page.locator('.tab', { hasText: name }).first().locator('.tab-label').click();
      await page.locator('.toolbar').getByRole('button', { name: 'Watch' }).click();
    }
    await expect.poll(() => page.locator('.tab').count()).toBe(12);

    const strip = page.locator('.tabs');
    const inView = async (): Promise<boolean> => {
      const box = await page.getByRole('tablist', { name: 'Consoles' }).boundingBox();
      const tab = await page.locator('.tab.active').boundingBox();
      return Boolean(box && tab && tab.x >= box.x - 0.5 && tab.x + tab.width <= box.x + box.width + 0.5);
    };
    await expect.poll(activeTabText).toMatch(/^sixth.*read-only/);
    await expect.poll(inView).toBe(true);
    await shot('console-tabs-overflow-last');
    // Wrapping round to the first tab brings it into view too.
    await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.press('Alt+PageDown');
    await expect.poll(activeTabText).toMatch(/^main/);
    await expect.poll(inView).toBe(true);
    // The writable console fits its box, above the status bar.
    expect(await terminalBottom()).toBeLessThanOrEqual(await statusTop());
    await shot('console-tabs-overflow-first');

    // Back to the last; the arrows scroll the strip.
    await page.keyboard.press('Alt+PageUp');
    await expect.poll(activeTabText).toMatch(/^sixth.*read-only/);
    await expect.poll(inView).toBe(true);
    const scrolled = (): Promise<number> => strip.locator('.tabs-scroll').evaluate((el) => el.scrollLeft);
    const before = await scrolled();
    await page.getByRole('button', { name: 'Scroll the tabs left' }).click();
    await expect.poll(scrolled).toBeLessThan(before);
  });

  it('reopens the same tabs after a reload, the same one active', async () => {
    await page.locator('.tab', { hasText: 'second' }).first().locator('.tab-label').click();
    await expect.poll(activeTabText).toMatch(/^second@/);
    const tabs = await page.locator('.tab .tab-label').allTextContents();
    await page.reload();
    await page.locator('.shell[data-ready="true"]').waitFor();
    await expect.poll(() => page.locator('.tab .tab-label').allTextContents()).toEqual(tabs);
    await expect.poll(activeTabText).toMatch(/^second@/);
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
  });
});
