import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

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

describe('backups (Chromium, browser mode, the local agent)', () => {
  it('backs up now: the backup appears, verified, sealed to the panel key and signed', async () => {
    await page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name: 'Backups', exact: true }).click();
    const view = page.getByRole('main', { name: 'Backups' });
    // Opening the view gave the host this panel's key: backups seal their secrets from now on.
    await view
      .getByText(/Every backup \(database, secrets, homes\) is sealed to key [0-9a-f]{16} and signed by the host/)
      .waitFor();
    await expect(view.getByText('No backups on this host yet.').count()).resolves.toBe(1);

    await view.getByRole('button', { name: 'Back up now' }).click();
    const rows = view.getByRole('table', { name: 'Backups on this host' }).locator('tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(1);
    const row = rows.first();
    await expect(row.getByText('verified', { exact: true }).count()).resolves.toBe(1);
    await expect(row.getByText('secrets sealed').count()).resolves.toBe(1);
    await expect(row.getByText('manual').count()).resolves.toBe(1);
    expect(await view.getByText(/^Last: just now/).count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'backups-view.png') });

    // Restore asks first and names what it replaces; cancelling changes nothing.
    await row.getByRole('button', { name: 'Restore…' }).click();
    const confirm = page.getByRole('dialog', { name: 'Restore this backup?' });
    await confirm
      .getByText(/replaces the host's database \(users, API keys, quotas, usage, slots, settings\)/)
      .waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'backups-restore-confirm.png') });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    expect(await rows.count()).toBe(1);

    // Browser mode never gets the private key: Export key… says to use the app.
    await view.getByRole('button', { name: 'Export key…' }).click();
    await page
      .getByRole('dialog', { name: 'Export the backup key?' })
      .getByRole('button', { name: 'Export key…' })
      .click();
    await page
      .getByText(/exported only from the Slotdeck app/)
      .first()
      .waitFor();
  });
});
