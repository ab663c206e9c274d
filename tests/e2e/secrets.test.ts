import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, AgentProcess } from '../integration/helpers/agent.js';
import { TestSshd } from '../integration/helpers/sshd.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

let browser: Browser;
let panel: PanelProcess;
let sshd: TestSshd;
let remote: AgentProcess;

beforeAll(async () => {
  [browser, sshd, remote] = await Promise.all([launchChromium(), TestSshd.start(), AgentProcess.start()]);
  // No Secret Service reachable: the panel must fall back to the encrypted file, and say so.
  panel = await PanelProcess.start({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' });
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
  sshd?.stop();
  await remote?.destroy();
});

describe('secrets without a keychain', () => {
  it('says so, asks for a passphrase before storing the first secret, and needs it again after a restart', async () => {
    let page = await panel.open(browser);
    const status = page.locator('.statusbar');
    await expect.poll(() => status.textContent()).toContain('Secrets: encrypted file (uninitialized)');

    await page.getByRole('button', { name: '+ Host' }).click();
    const setup = page.getByRole('dialog', { name: 'Choose a passphrase for secrets' });
    await setup.waitFor();
    expect(await setup.textContent()).toContain('No system keychain was found');
    await setup.getByLabel('Passphrase', { exact: true }).fill('a long passphrase');
    await setup.getByLabel('Passphrase again').fill('a long passphrase');
    await page.screenshot({ path: join(ARTIFACTS, 'secrets-passphrase.png') });
    await setup.getByRole('button', { name: 'Create secrets file' }).click();

    // Then the host form it was opened for.
    const dialog = page.getByRole('dialog', { name: 'Add an SSH host' });
    await dialog.getByLabel('Name').fill('vault-host');
    await dialog.getByLabel('Address').fill('127.0.0.1');
    await dialog.getByLabel('SSH port').fill(String(sshd.port));
    await dialog.getByLabel('Private key', { exact: true }).fill(sshd.clientKey);
    await dialog.getByText('Agent on the host').click();
    await dialog.getByLabel('Agent port').fill(new URL(remote.url).port);
    await dialog.getByLabel('Agent command').fill(`${process.execPath} ${AGENT_CLI} --data-dir ${remote.dataDir}`);
    await dialog.getByRole('button', { name: 'Add and connect' }).click();
    await page
      .getByRole('dialog', { name: 'Trust vault-host?' })
      .getByRole('button', { name: 'Trust and connect' })
      .click();
    const host = page.getByRole('region', { name: 'vault-host' });
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 20_000 }).toBe('connected');
    expect(await status.textContent()).toContain('encrypted file (ready)');

    // After a restart the file is locked: connecting needs the passphrase, and a wrong one is said to be wrong.
    await panel.stop();
    await panel.launch();
    page = await panel.open(browser);
    await expect.poll(() => page.locator('.statusbar').textContent()).toContain('encrypted file (locked)');
    await page.getByRole('button', { name: 'Connect vault-host' }).click();
    const unlock = page.getByRole('dialog', { name: 'Unlock secrets' });
    await unlock.waitFor();
    await unlock.getByLabel('Passphrase', { exact: true }).fill('not the passphrase');
    await unlock.getByRole('button', { name: 'Unlock' }).click();
    // The error sits under the one field it is about (the passphrase), which is marked invalid.
    const passphrase = unlock.getByLabel('Passphrase', { exact: true });
    await expect.poll(() => passphrase.getAttribute('aria-invalid')).toBe('true');
    expect(await unlock.locator('.field-error').textContent()).toContain('does not open the secrets file');
    await unlock.getByLabel('Passphrase', { exact: true }).fill('a long passphrase');
    await unlock.getByRole('button', { name: 'Unlock' }).click();
    await page.getByRole('button', { name: 'Connect vault-host' }).click();
    await expect
      .poll(() => page.getByRole('region', { name: 'vault-host' }).locator('.host-state').textContent(), {
        timeout: 20_000,
      })
      .toBe('connected');
    await page.close();
  });
});
