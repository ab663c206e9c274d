import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot, TerminalTicket } from '../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../integration/helpers/agent.js';
import { ARTIFACTS, launchChromium, serveStatic } from './helpers/browser.js';

let agent: AgentProcess;
let browser: Browser;
let site: Awaited<ReturnType<typeof serveStatic>>;

beforeAll(async () => {
  agent = await AgentProcess.start();
  browser = await launchChromium();
  site = await serveStatic({
    '/xterm/': resolve(import.meta.dirname, '../../node_modules/@xterm/xterm'),
    '/page/': resolve(import.meta.dirname, 'pages'),
    '/': resolve(import.meta.dirname, 'pages'),
  });
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await agent?.destroy();
});

async function openInBrowser(slotId: string, mode: 'writable' | 'read-only') {
  // Bound to the page's origin, as the panel does: the agent refuses the ticket from any other page.
  const { body } = await agent.request<TerminalTicket>('POST', `/api/v1/slots/${slotId}/tickets`, {
    mode,
    origin: site.url,
  });
  const page = await browser.newPage({ viewport: { width: 940, height: 520 } });
  const ws = `${agent.url.replace('http', 'ws')}${body.path}`;
  await page.goto(`${site.url}/page/terminal.html?ws=${encodeURIComponent(ws)}`);
  return page;
}

describe('a slot terminal in Chromium', () => {
  it('works with a browser xterm.js client speaking ttyd protocol: type, see the echo, watch read-only', async () => {
    const slot = (await agent.request<Slot>('POST', '/api/v1/slots', { name: 'browser' })).body;
    const page = await openInBrowser(slot.id, 'writable');
    await page.waitForFunction(() => (window as unknown as { slotState: { open: boolean } }).slotState.open);
    expect(
      await page.evaluate(() => (window as unknown as { slotState: { protocol: string } }).slotState.protocol),
    ).toBe('tty');
    await page.waitForFunction(() => /[#$] *$/m.test((window as unknown as { screenText(): string }).screenText()));

    const marker = `e2e-${Math.random().toString(36).slice(2, 8)}`;
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type(`echo ${marker}-$((40+2))`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      (m) => (window as unknown as { screenText(): string }).screenText().includes(`${m}-42`),
      marker,
    );
    expect(await page.title()).toBe('browser');
    await page.screenshot({ path: join(ARTIFACTS, 'slot-terminal-writable.png') });

    // A read-only viewer gets the screen replayed and cannot type into the slot.
    const viewer = await openInBrowser(slot.id, 'read-only');
    await viewer.waitForFunction(
      (m) => (window as unknown as { screenText(): string }).screenText().includes(`${m}-42`),
      marker,
    );
    await viewer.locator('.xterm-helper-textarea').focus();
    await viewer.keyboard.type('echo from-viewer');
    await viewer.keyboard.press('Enter');
    await page.keyboard.type(`echo after-${marker}`);
    await page.keyboard.press('Enter');
    await viewer.waitForFunction(
      (m) => (window as unknown as { screenText(): string }).screenText().includes(`after-${m}`),
      marker,
    );
    expect(await page.evaluate(() => (window as unknown as { screenText(): string }).screenText())).not.toContain(
      'from-viewer',
    );
    await viewer.screenshot({ path: join(ARTIFACTS, 'slot-terminal-read-only.png') });
    await viewer.close();
    await page.close();
  });
});
