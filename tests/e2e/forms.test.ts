import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

/**
 * The panel's forms and states as an admin meets them: which host an admin view shows, errors next to their field,
 * dialogs that do not lose edits, preferences that survive a restart, and the pages shown when the panel is gone.
 */
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

let browser: Browser;
let panel: PanelProcess;
let page: Page;

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const view = (name: 'Consoles' | 'Users' | 'Usage' | 'Gateway') =>
  page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name, exact: true });

/** A loopback port nothing listens on: an SSH host there is unreachable. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Whether `inner`'s box lies within `outer`'s (horizontally). */
async function fitsIn(inner: Locator, outer: Locator): Promise<boolean> {
  const [a, b] = await Promise.all([inner.boundingBox(), outer.boundingBox()]);
  return Boolean(a && b && a.x >= b.x && a.x + a.width <= b.x + b.width + 0.5);
}

beforeAll(async () => {
  browser = await launchChromium();
  panel = await PanelProcess.start(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' });
  page = await panel.open(browser);
  await page.getByTestId('connection-status').filter({ hasText: 'This computer: connected' }).waitFor();
});

// Each test starts with no dialog open, whatever the one before left behind.
beforeEach(async () => {
  for (let open = 0; open < 3 && (await page.locator('.backdrop').count()) > 0; open += 1)
    await page.keyboard.press('Escape');
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
});

describe('forms and states of the panel (Chromium, browser mode)', () => {
  it('host form: errors show next to their field in words, and the fields fit the dialog', async () => {
    await page.getByRole('button', { name: '+ Host' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an SSH host' });
    await dialog.getByLabel('Name').fill('typo');
    await dialog.getByLabel('Address').fill('127.0.0.1');
    await dialog.getByLabel('SSH port').fill('70000');
    await dialog.getByLabel('User').fill('root');
    await dialog.getByLabel('Private key', { exact: true }).fill('not a key');
    expect(await fitsIn(dialog.getByLabel('User'), dialog)).toBe(true);
    await dialog.getByRole('button', { name: 'Add and connect' }).click();
    const portField = dialog.locator('.field', { has: page.getByLabel('SSH port') });
    await expect.poll(() => portField.locator('.field-error').textContent()).toMatch(/1.65535/);
    expect(await dialog.getByLabel('SSH port').getAttribute('aria-invalid')).toBe('true');
    // The schema's path ("port: …") is the program's word, not the admin's.
    expect(await dialog.innerText()).not.toMatch(/\bport:|\bauth\.|\bagentPort\b/);
    await shot('forms-host-field-error');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('admin views show the host picked for them: adding an unreachable host does not switch them', async () => {
    await view('Users').click();
    const picker = page.getByLabel('Host of this view');
    await expect.poll(() => picker.locator('option:checked').textContent()).toContain('This computer');
    await page.getByText('No users yet.').waitFor();

    await page.getByRole('button', { name: '+ Host' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an SSH host' });
    await dialog.getByLabel('Name').fill('unreachable');
    await dialog.getByLabel('Address').fill('127.0.0.1');
    await dialog.getByLabel('SSH port').fill(String(await closedPort()));
    await dialog.getByText('Use the SSH agent').click();
    await dialog.getByRole('button', { name: 'Add and connect' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('complementary', { name: 'Hosts' }).getByText('unreachable').first().waitFor();

    // Still This computer's users, and the picker says so.
    expect(await picker.locator('option:checked').textContent()).toContain('This computer');
    await page.getByText('No users yet.').waitFor();
    expect(await picker.locator('option').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining('unreachable')]),
    );
    await shot('forms-host-picker');

    // Picking the unreachable host says which host is shown, and that it is not connected.
    await picker.selectOption({ label: (await picker.locator('option', { hasText: 'unreachable' }).textContent())! });
    const empty = page.locator('.empty-state');
    await expect.poll(() => empty.innerText()).toContain('unreachable');
    expect(await empty.innerText()).toMatch(/not connected/);
    await shot('forms-host-picker-unreachable');
    await picker.selectOption({ label: (await picker.locator('option', { hasText: 'This computer' }).textContent())! });
    await page.getByText('No users yet.').waitFor();
  });

  it('key limits: one Save, and closing with unsaved edits asks first', async () => {
    await view('Users').click();
    await page.getByRole('button', { name: '+ User' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Username').fill('grace');
    await userDialog.getByRole('button', { name: 'Create user' }).click();
    await userDialog.waitFor({ state: 'detached' });
    const details = page.getByRole('region', { name: 'User details' });
    await details.getByRole('button', { name: '+ Key' }).click();
    const keyDialog = page.getByRole('dialog', { name: 'New key for grace' });
    await keyDialog.getByLabel('Key name').fill('ci');
    await keyDialog.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByRole('dialog', { name: /Key “ci” for grace/ });
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });

    await details.locator('.keys-table tbody tr', { hasText: 'ci' }).getByRole('button', { name: 'Limits' }).click();
    const limits = page.getByRole('dialog', { name: /Limits of ci/ });
    await limits.waitFor();
    expect(await limits.getByRole('button', { name: /^Save/ }).count()).toBe(1);

    // The quota table's columns stay where they are when what it shows changes.
    const header = limits.getByRole('columnheader', { name: 'Max cost (USD)' });
    const before = await header.boundingBox();
    await limits.getByLabel('UTC day: max tokens').fill('123456789');
    await limits.getByLabel('Requests per minute').fill('7');
    await shot('forms-key-limits-edited');
    await limits.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();
    // Unsaved edits: the dialog asks instead of dropping them.
    const ask = page.getByRole('alertdialog', { name: /unsaved/i }).or(limits.getByRole('alert'));
    await ask.first().waitFor();
    expect(await limits.getByLabel('Requests per minute').inputValue()).toBe('7');
    await shot('forms-key-limits-unsaved');

    await limits.getByRole('button', { name: /^Save/ }).click();
    await expect.poll(() => limits.locator('tbody tr', { hasText: 'UTC day' }).innerText()).toContain('of 123.46M');
    const after = await header.boundingBox();
    expect(after?.x).toBe(before?.x);
    expect(after?.width).toBe(before?.width);
    await limits.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();
    await limits.waitFor({ state: 'detached' });
    // Saved for real: opened again, it shows them.
    await details.locator('.keys-table tbody tr', { hasText: 'ci' }).getByRole('button', { name: 'Limits' }).click();
    expect(await limits.getByLabel('Requests per minute').inputValue()).toBe('7');
    expect(await limits.getByLabel('UTC day: max tokens').inputValue()).toBe('123456789');
    await limits.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();
    await limits.waitFor({ state: 'detached' });
  });

  it('user quotas: picking another user with unsaved quota edits asks first, then saves or discards them', async () => {
    await view('Users').click();
    await page.getByRole('button', { name: '+ User' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Username').fill('hopper');
    await userDialog.getByRole('button', { name: 'Create user' }).click();
    await userDialog.waitFor({ state: 'detached' });
    const userRow = (name: string) => page.locator('.user-list').getByRole('button', { name: new RegExp(name) });
    const quotasOf = (name: string) => page.getByRole('region', { name: `Quotas of ${name}` });
    const month = quotasOf('hopper').getByLabel('Calendar month: max tokens');

    await month.fill('5000');
    await userRow('grace').click();
    // Still hopper's quotas, the edit kept, and a question instead of a silent loss.
    await quotasOf('hopper').getByRole('alert').filter({ hasText: 'unsaved changes' }).waitFor();
    expect(await month.inputValue()).toBe('5000');
    expect(await quotasOf('grace').count()).toBe(0);
    await shot('forms-user-quotas-unsaved');

    // Save: saved, then grace's details.
    await quotasOf('hopper').getByRole('button', { name: 'Save quotas' }).click();
    await quotasOf('grace').waitFor();
    await userRow('hopper').click();
    await expect.poll(() => month.inputValue()).toBe('5000');

    // Discard: grace's details, and hopper keeps what was saved.
    await month.fill('6000');
    await userRow('grace').click();
    await quotasOf('hopper').getByRole('button', { name: 'Discard changes' }).click();
    await quotasOf('grace').waitFor();
    await userRow('hopper').click();
    await expect.poll(() => month.inputValue()).toBe('5000');
  });

  it('keeps a notice clear of the dialog buttons', async () => {
    await view('Users').click();
    await page.getByRole('button', { name: '+ User' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Username').fill('linus');
    await userDialog.getByRole('button', { name: 'Create user' }).click();
    await userDialog.waitFor({ state: 'detached' });
    // The "created" notice is up; a dialog opened now must keep its buttons clickable.
    await page.locator('.toast', { hasText: 'User linus created' }).waitFor();
    await page.getByRole('region', { name: 'User details' }).getByRole('button', { name: '+ Key' }).click();
    const keyDialog = page.getByRole('dialog', { name: 'New key for linus' });
    // The notice moves into the dialog, above its footer: whatever the dialog's size, it covers none of its buttons.
    const notice = keyDialog.locator('.toast', { hasText: 'User linus created' });
    await notice.waitFor();
    const footer = keyDialog.locator('.dialog-footer');
    const [a, b] = await Promise.all([notice.boundingBox(), footer.boundingBox()]);
    await shot('forms-toast-and-dialog');
    expect(a && b && a.y + a.height <= b.y).toBe(true);
    const create = keyDialog.getByRole('button', { name: 'Create key' });
    const c = await create.boundingBox();
    const overlaps =
      a && c && a.x < c.x + c.width && c.x < a.x + a.width && a.y < c.y + c.height && c.y < a.y + a.height;
    expect(overlaps).toBe(false);
    await keyDialog.getByRole('button', { name: 'Cancel' }).click();
  });

  it('keeps the theme across a restart', async () => {
    const theme = page.getByRole('button', { name: /^Theme:/ });
    while (!(await theme.innerText()).includes('dark')) await theme.click();
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    // The panel writes preferences as they change; a restart reads them back.
    await panel.stop();
    await panel.launch();
    page = await panel.open(browser);
    await expect.poll(() => page.getByRole('button', { name: /^Theme:/ }).innerText()).toBe('Theme: dark');
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');

    // Before Slotdeck answers (here: never), the page already shows the admin's theme, not the system's (light here).
    const early = await page.context().newPage();
    await early.routeWebSocket(/\/ipc$/, (socket) => socket.close());
    await early.goto(`${panel.origin}/`);
    await expect.poll(() => early.evaluate(() => document.documentElement.dataset.theme ?? '')).not.toBe('');
    expect(await early.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await early.close();
  });

  it('shows one clear state while the panel is stopped, and a styled page for a used link', async () => {
    // The host picked for the admin views (This computer, above) is still theirs after the restart.
    await view('Users').click();
    await page.getByRole('region', { name: 'User list' }).waitFor();
    await panel.stop();
    const offline = page.getByTestId('panel-offline');
    await offline.waitFor();
    // The polls keep failing meanwhile: none of them adds a message of its own about the lost connection.
    const aboutTheConnection = async (): Promise<string[]> =>
      (await page.locator('[role="alert"]:visible, [role="status"]:visible').allInnerTexts()).filter((text) =>
        /connection|not running|reconnect/i.test(text),
      );
    const onlyTheOfflineState = [expect.stringContaining('Slotdeck is not running')];
    await expect.poll(aboutTheConnection).toEqual(onlyTheOfflineState);
    // Four attempts to reconnect take seconds (the page backs off): several slot and gateway polls fail meanwhile.
    for (let attempt = 0; attempt < 4; attempt += 1) await page.waitForEvent('websocket');
    await shot('forms-panel-stopped');
    expect(await aboutTheConnection()).toEqual(onlyTheOfflineState);

    await panel.launch();
    page = await panel.open(browser);
    const used = await browser.newPage();
    await used.goto(panel.url);
    const card = used.getByTestId('signed-out');
    await card.waitFor();
    expect(await card.innerText()).toMatch(/already used/);
    expect(await card.innerText()).toMatch(/Sign out|new link/);
    // Styled: the page's stylesheet applies (a card on the page background), not bare text.
    const styled = await used.locator('.signed-out-card').evaluate((el) => getComputedStyle(el).borderRadius);
    expect(styled).not.toBe('0px');
    await used.screenshot({ path: join(ARTIFACTS, 'forms-link-used.png') });
    await used.close();
  });
});
