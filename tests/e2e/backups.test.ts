import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS } from './helpers/browser.js';
import { panelInChromium } from './helpers/panel.js';

const session = panelInChromium();

describe('backups (Chromium, browser mode, the local agent)', () => {
  it('backs up now: the backup appears, verified, sealed to the panel key and signed', async () => {
    await session.page
      .getByRole('navigation', { name: 'Views' })
      .getByRole('button', { name: 'Backups', exact: true })
      .click();
    const view = session.page.getByRole('main', { name: 'Backups' });
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
    await session.page.screenshot({ path: join(ARTIFACTS, 'backups-view.png') });

    // Restore asks first and names what it replaces; cancelling changes nothing.
    await row.getByRole('button', { name: 'Restore…' }).click();
    const confirm = session.page.getByRole('dialog', { name: 'Restore this backup?' });
    await confirm
      .getByText(/replaces the host's database \(users, API keys, quotas, usage, slots, settings\)/)
      .waitFor();
    await session.page.screenshot({ path: join(ARTIFACTS, 'backups-restore-confirm.png') });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    expect(await rows.count()).toBe(1);

    // Browser mode never gets the private key: Export key… says to use the app.
    await view.getByRole('button', { name: 'Export key…' }).click();
    await session.page
      .getByRole('dialog', { name: 'Export the backup key?' })
      .getByRole('button', { name: 'Export key…' })
      .click();
    await session.page
      .getByText(/exported only from the Slotdeck app/)
      .first()
      .waitFor();
  });
});
