import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { consoleText, PanelProcess } from './helpers/panel.js';

let browser: Browser;
let panel: PanelProcess;
let page: Page;
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

beforeAll(async () => {
  browser = await launchChromium();
  panel = await PanelProcess.start(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' });
  page = await panel.open(browser);
  await page.getByTestId('connection-status').filter({ hasText: 'This computer: connected' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
});

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const slotRow = (name: string): Locator =>
  page.getByRole('complementary', { name: 'Hosts' }).locator('.slot-row', { hasText: name });

describe('slots in the sidebar (Chromium, browser mode)', () => {
  it('shows a slot whose program cannot start as restarting n/5, then failed with the reason under it; edited, it runs', async () => {
    await page.getByRole('button', { name: '+ New slot' }).first().click();
    const create = page.getByRole('dialog', { name: /New slot on This computer/ });
    await create.getByLabel('Name').fill('broken');
    await create.getByText('Command', { exact: true }).click();
    await create.getByLabel('Program').fill('sh');
    await create.getByLabel('Arguments').fill('-c "no-such-program-e2e"');
    await create.getByRole('button', { name: 'Create and open' }).click();

    const row = slotRow('broken');
    // While PM2 restarts it, the row says how far the crash loop got and how the program ended, in words.
    await expect
      .poll(() => row.locator('.slot-badge').textContent(), { timeout: 15_000 })
      .toMatch(/^restarting [1-5]\/5$/);
    await expect
      .poll(() => row.locator('.slot-problem').textContent())
      .toBe('sh exited with code 127 (command not found)');
    await shot('slots-restarting');
    await expect.poll(() => row.locator('.slot-badge').textContent(), { timeout: 30_000 }).toBe('failed');
    expect(await row.locator('.slot-problem').textContent()).toMatch(
      /ended 6 times within 120 s \(the limit is 5\).*no-such-program-e2e: not found/,
    );
    await shot('slots-failed');

    // Fixed in place from the slot's menu: no delete and recreate.
    await row.getByRole('button', { name: 'Actions for broken' }).click();
    await page.getByRole('menuitem', { name: 'Edit…' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit slot broken' });
    expect(await edit.getByLabel('Program').inputValue()).toBe('sh');
    await edit.getByLabel('Arguments').fill('-c "echo fixed-$((6*7)); exec sleep 600"');
    await expect.poll(() => edit.locator('.slot-edit-notice').textContent()).toMatch(/apply when the slot starts next/);
    await shot('slots-edit-dialog');
    await edit.getByRole('button', { name: 'Save', exact: true }).click();
    await edit.waitFor({ state: 'detached' });

    await row.getByRole('button', { name: 'Actions for broken' }).click();
    await page.getByRole('menuitem', { name: 'Start' }).click();
    await expect.poll(() => row.locator('.slot-badge').textContent(), { timeout: 15_000 }).toBe('running');
    expect(await row.locator('.slot-problem').count()).toBe(0);
    await page.locator('.tab', { hasText: 'broken' }).click();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toContain('fixed-42');
    await shot('slots-fixed');
  });

  it('says that saving restarts a running slot, and the console shows the new program', async () => {
    await page.getByRole('button', { name: '+ New slot' }).first().click();
    const create = page.getByRole('dialog', { name: /New slot on This computer/ });
    await create.getByLabel('Name').fill('live');
    await create.getByRole('button', { name: 'Create and open' }).click();
    await page.locator('.tab.active', { hasText: 'live' }).waitFor();
    const row = slotRow('live');
    await expect.poll(() => row.locator('.slot-badge').textContent(), { timeout: 15_000 }).toBe('running');

    await row.getByRole('button', { name: 'Actions for live' }).click();
    await page.getByRole('menuitem', { name: 'Edit…' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit slot live' });
    await edit.getByText('Command', { exact: true }).click();
    await edit.getByLabel('Program').fill('sh');
    await edit.getByLabel('Arguments').fill('-c "echo second-program-$((6*7)) $GREETING; exec sleep 600"');
    await edit.getByText('More', { exact: true }).click();
    await edit.getByLabel('Environment').fill('GREETING=hello-from-the-edit');
    expect(await edit.locator('.slot-edit-notice').textContent()).toMatch(/Saving restarts the slot/);
    await edit.getByRole('button', { name: 'Save and restart' }).click();
    await edit.waitFor({ state: 'detached' });
    await expect.poll(() => consoleText(page), { timeout: 20_000 }).toContain('second-program-42 hello-from-the-edit');
  });
});
