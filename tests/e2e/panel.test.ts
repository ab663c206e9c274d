import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, AgentProcess } from '../integration/helpers/agent.js';
import { TestSshd } from '../integration/helpers/sshd.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { consoleText, PanelProcess } from './helpers/panel.js';

let browser: Browser;
let panel: PanelProcess;
let sshd: TestSshd;
let remote: AgentProcess;
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);
const marker = (): string => Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  [browser, sshd, remote] = await Promise.all([launchChromium(), TestSshd.start(), AgentProcess.start()]);
  // With a Secret Service (npm test runs under one) secrets go to the keychain; without, to the encrypted file.
  panel = await PanelProcess.start(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' });
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
  sshd?.stop();
  await remote?.destroy();
});

const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

async function typeInConsole(page: Page, text: string): Promise<void> {
  await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

async function addSshHost(page: Page, name: string, auth: { key?: string; keyPath?: string }): Promise<void> {
  await page.getByRole('button', { name: '+ Host' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add an SSH host' });
  await dialog.getByLabel('Name').fill(name);
  await dialog.getByLabel('Address').fill('127.0.0.1');
  await dialog.getByLabel('SSH port').fill(String(sshd.port));
  await dialog.getByLabel('User').fill('root');
  if (auth.keyPath) {
    await dialog.getByText('Use a key file').click();
    await dialog.getByLabel('Key file', { exact: true }).fill(auth.keyPath);
  } else {
    await dialog.getByLabel('Private key', { exact: true }).fill(auth.key ?? '');
  }
  await dialog.getByText('Agent on the host').click();
  await dialog.getByLabel('Agent port').fill(new URL(remote.url).port);
  await dialog.getByLabel('Agent command').fill(`${process.execPath} ${AGENT_CLI} --data-dir ${remote.dataDir}`);
  await dialog.getByRole('button', { name: 'Add and connect' }).click();
}

describe('the panel in Chromium (browser mode)', () => {
  it('starts with This computer and a working console; a new slot echoes what is typed', async () => {
    const page = await panel.open(browser);
    const hosts = page.getByRole('complementary', { name: 'Hosts' });
    await expect.poll(() => hosts.getByText('connected').first().isVisible()).toBe(true);
    await expect.poll(() => page.getByTestId('connection-status').textContent()).toBe('This computer: connected');
    expect(await page.locator('.statusbar').textContent()).toContain(
      keychain ? 'Secrets: keychain' : 'Secrets: encrypted file (ready)',
    );
    // The first run opened the console of the slot it made.
    await page.locator('.tab', { hasText: 'main' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);

    await page.getByRole('button', { name: '+ New slot' }).first().click();
    const dialog = page.getByRole('dialog', { name: /New slot on This computer/ });
    await dialog.getByLabel('Name').fill('e2e');
    await dialog.getByRole('button', { name: 'Create and open' }).click();
    await page.locator('.tab.active', { hasText: 'e2e' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
    const word = `e2e-${marker()}`;
    await typeInConsole(page, `echo ${word}-$((40+2))`);
    await expect.poll(() => consoleText(page)).toContain(`${word}-42`);
    await expect
      .poll(() => hosts.locator('.slot-row', { hasText: 'e2e' }).textContent(), { timeout: 15_000 })
      .toContain('1 viewer');
    await shot(page, 'this-computer-console');
    await page.close();
  });

  it('adds an SSH host: the fingerprint is confirmed, then a console works through the tunnel and survives sshd restarting', async () => {
    const page = await panel.open(browser);
    await addSshHost(page, 'staging', { key: sshd.clientKey });

    const trust = page.getByRole('dialog', { name: 'Trust staging?' });
    await trust.waitFor();
    expect(await trust.getByTestId('fingerprint').textContent()).toBe(sshd.fingerprint);
    await shot(page, 'ssh-fingerprint-dialog');
    await trust.getByRole('button', { name: 'Trust and connect' }).click();

    const host = page.getByRole('region', { name: 'staging' });
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 20_000 }).toBe('connected');
    await host.getByRole('button', { name: '+ New slot' }).click();
    const dialog = page.getByRole('dialog', { name: /New slot on staging/ });
    await dialog.getByLabel('Name').fill('remote');
    await dialog.getByRole('button', { name: 'Create and open' }).click();
    await page.locator('.tab.active', { hasText: 'remote' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
    const before = `before-${marker()}`;
    await typeInConsole(page, `echo ${before}`);
    await expect.poll(() => consoleText(page)).toContain(`${before}\n`);
    await shot(page, 'ssh-console');

    // The host drops every SSH connection, and stays down until the panel shows it is reconnecting.
    await sshd.restart({
      downUntil: async () => {
        await expect
          .poll(() => page.getByTestId('connection-status').textContent(), { timeout: 30_000 })
          .toMatch(/staging: reconnecting/);
        await shot(page, 'ssh-reconnecting');
      },
    });
    await expect
      .poll(() => page.getByTestId('connection-status').textContent(), { timeout: 30_000 })
      .toBe('staging: connected');
    // The console came back by itself, with what it showed before.
    await expect
      .poll(() => page.locator('.console:not([hidden])').getAttribute('data-state'), { timeout: 30_000 })
      .toBe('open');
    await expect.poll(() => consoleText(page)).toContain(before);
    const after = `after-${marker()}`;
    await typeInConsole(page, `echo ${after}`);
    await expect.poll(() => consoleText(page)).toContain(`${after}\n`);
    await shot(page, 'ssh-reconnected');
    await page.close();
  });

  it('blocks a host whose key changed, with the warning and an explicit replace', async () => {
    const page = await panel.open(browser);
    await sshd.restart({ newHostKey: true });
    const host = page.getByRole('region', { name: 'staging' });
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 30_000 }).toBe('failed');
    expect(await host.locator('.host-error').textContent()).toMatch(/WARNING: staging presented a different host key/);
    await host.getByRole('button', { name: 'Connect staging' }).click();
    const warning = page.getByRole('dialog', { name: /The host key of staging changed/ });
    await warning.waitFor();
    expect(await warning.textContent()).toContain('The connection is blocked');
    expect(await warning.getByTestId('fingerprint').textContent()).toBe(sshd.fingerprint);
    await shot(page, 'ssh-key-changed');
    await warning.getByRole('button', { name: 'Replace pinned key' }).click();
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 20_000 }).toBe('connected');
    await page.close();
  });

  it('says clearly when a private key is not one', async () => {
    const page = await panel.open(browser);
    await addSshHost(page, 'broken-key', {
      key: '-----BEGIN OPENSSH PRIVATE KEY-----\nthis is not a key\n-----END OPENSSH PRIVATE KEY-----',
    });
    const error = page.getByRole('dialog', { name: 'Add an SSH host' }).locator('.form-error');
    await expect
      .poll(() => error.textContent())
      .toMatch(/not a private key Slotdeck can use.*Paste the whole private key/);
    await shot(page, 'ssh-bad-key');
    expect(await page.getByRole('region', { name: 'broken-key' }).count()).toBe(0);
    await page.close();
  });

  it('lets the one-time link in only once and keeps other origins out', async () => {
    // The page itself holds no secret; signing in happens on the socket, where a used link is refused.
    await (await panel.open(browser)).close();
    const page = await browser.newPage();
    await page.goto(panel.url);
    await expect.poll(() => page.getByTestId('signed-out').textContent()).toContain('already used');
    // A page of another origin cannot even open the socket.
    await page.goto('about:blank');
    const socket = await page.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('refused');
        }),
      `${panel.origin.replace('http', 'ws')}/ipc`,
    );
    expect(socket).toBe('refused');
    await page.close();
  });
});
