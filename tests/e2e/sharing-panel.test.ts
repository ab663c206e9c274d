import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

/**
 * Share links, invite links and the audit log as an admin meets them in the panel (browser mode), against the real
 * local agent ("This computer"): make a share of a slot, copy its link and iframe snippet, see it listed and revoke
 * it; make a user's invite link, shown once; find both in the audit log.
 */
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

let browser: Browser;
let panel: PanelProcess;
let page: Page;
let shareToken = '';
let inviteToken = '';

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const view = (name: string) =>
  page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name, exact: true });
const clipboard = (): Promise<string> => page.evaluate(() => navigator.clipboard.readText());

beforeAll(async () => {
  browser = await launchChromium();
  panel = await PanelProcess.start({
    SLOTDECK_AGENT_GATEWAY_PORT: '0',
    ...(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' }),
  });
  page = await panel.open(browser);
  // A render loop or crash shows as an empty page: say why in the test's output.
  page.on('pageerror', (error) => console.error('the page failed:', error.message));
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: panel.origin });
  await page.getByTestId('connection-status').filter({ hasText: 'This computer: connected' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
});

describe('share links, invites and the audit log in the panel (Chromium, browser mode)', () => {
  it('makes a share link of a slot from its menu, checking the embed origins first', async () => {
    await page.getByRole('button', { name: 'Actions for main' }).click();
    await page.getByRole('menuitem', { name: 'Share…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Share main' });
    await dialog.getByText('No share links yet.').waitFor();
    await dialog.getByText('Type (writable)').click();
    await dialog.getByText('1 hour', { exact: true }).click();
    await dialog.getByLabel('Viewer limit').fill('3');
    await dialog.getByLabel('Sites that may embed it').fill('https://docs.example.com\nhttp://plain.example.com/page');
    await dialog.getByRole('button', { name: 'Create link' }).click();
    await dialog.getByText('http://plain.example.com/page: only https:// origins may embed a share').waitFor();
    await shot('share-dialog-origin-refused');

    await dialog.getByLabel('Sites that may embed it').fill('https://docs.example.com\nhttp://localhost:8080');
    await dialog.getByLabel('Label').fill('demo for Ada');
    await dialog.getByRole('button', { name: 'Create link' }).click();
    const link = (await dialog.getByTestId('share-link').textContent()) ?? '';
    expect(link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/share\/[A-Za-z0-9_-]{43}$/);
    shareToken = link.slice(link.lastIndexOf('/') + 1);
    await dialog.getByText('it is shown only this once').waitFor();
    await shot('share-dialog-created');

    await dialog.getByRole('button', { name: 'Copy link' }).click();
    await dialog.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await clipboard()).toBe(link);
    await dialog.getByRole('button', { name: 'Copy iframe snippet' }).click();
    await expect.poll(clipboard).toContain('<iframe');
    expect(await clipboard()).toContain(link);
  });

  it('lists the share with its state and counts, and revokes it after a confirmation', async () => {
    const dialog = page.getByRole('dialog', { name: 'Share main' });
    const row = dialog.locator('.shares-table tbody tr', { hasText: 'demo for Ada' });
    await row.waitFor();
    expect(await row.innerText()).toMatch(/writable[\s\S]*max 3[\s\S]*active[\s\S]*never/);
    // The list never shows the link again.
    await dialog.getByRole('button', { name: 'Another link' }).click();
    expect(await dialog.innerText()).not.toContain(shareToken);

    await row.getByRole('button', { name: 'Revoke' }).click();
    await shot('share-dialog-revoke-confirm');
    await row.getByRole('button', { name: 'Revoke now' }).click();
    await expect.poll(() => row.locator('.chip').innerText()).toBe('revoked');
    await shot('share-dialog-revoked');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  it('shows a user’s invite link once, with Copy and its expiry', async () => {
    await view('Users').click();
    await page.getByRole('button', { name: '+ User' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Username').fill('ada');
    await userDialog.getByRole('button', { name: 'Create user' }).click();
    await userDialog.waitFor({ state: 'detached' });
    const signIn = page.getByRole('region', { name: 'Sign-in of ada' });
    await signIn.getByText('no password yet').waitFor();
    await signIn.getByRole('button', { name: 'Invite link' }).click();
    const invite = signIn.getByRole('region', { name: 'Invite link' });
    const link = (await invite.getByTestId('invite-link').textContent()) ?? '';
    expect(link).toMatch(/\/invite\/[A-Za-z0-9_-]{43}$/);
    inviteToken = link.slice(link.lastIndexOf('/') + 1);
    expect(await invite.innerText()).toMatch(/shown only this once[\s\S]*works once, until/);
    await invite.getByRole('button', { name: 'Copy invite link' }).click();
    expect(await clipboard()).toBe(link);
    await shot('user-invite-link');
    await invite.getByRole('button', { name: 'Done' }).click();
    await invite.waitFor({ state: 'detached' });
    expect(await page.locator('body').innerText()).not.toContain(inviteToken);
  });

  it('finds the share and the invite in the audit log, filtered by action', async () => {
    await view('Audit log').click();
    const table = page.getByRole('table', { name: 'Audit entries' });
    await table.getByText('share.created').waitFor();
    await table.getByText('share.revoked').waitFor();
    await table.getByText('auth.invite_created').waitFor();
    await page.getByRole('combobox', { name: 'Action', exact: true }).selectOption('share.revoked');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(1);
    expect(await table.locator('tbody tr').innerText()).toMatch(
      /This computer \(panel\)[\s\S]*share\.revoked[\s\S]*success/,
    );
    await shot('audit-log-filtered');
    await page.getByRole('combobox', { name: 'Action', exact: true }).selectOption('');
    await table.getByText('auth.invite_created').waitFor();
  });

  it('shows the host’s sign-in settings with the portal address and GitHub’s callback URL', async () => {
    await view('Sign-in').click();
    const portal = page.getByRole('region', { name: 'Portal address' });
    const url = (await portal.getByTestId('portal-url').textContent()) ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    const github = page.getByRole('region', { name: 'GitHub sign-in' });
    expect(await github.getByTestId('github-callback-url').textContent()).toBe(
      `${new URL(url).origin}/api/public/auth/callback/github`,
    );
    await shot('signin-settings');
  });

  it('keeps neither link in the panel’s database or its log', () => {
    expect(shareToken).not.toBe('');
    expect(inviteToken).not.toBe('');
    const files = readdirSync(panel.dataDir).filter((f) => f.startsWith('slotdeck.db') || f.endsWith('.log'));
    expect(files.some((f) => f === 'slotdeck.db')).toBe(true);
    for (const file of files) {
      const content = readFileSync(join(panel.dataDir, file)).toString('latin1');
      expect(content, file).not.toContain(shareToken);
      expect(content, file).not.toContain(inviteToken);
    }
    const output = panel.logs.join('\n');
    expect(output).not.toContain(shareToken);
    expect(output).not.toContain(inviteToken);
  });
});
