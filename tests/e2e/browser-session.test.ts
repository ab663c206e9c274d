import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

/**
 * Browser mode's sign-in as an admin lives it: the printed link once, then reloads, new tabs and restarts of Slotdeck
 * keep working in that browser profile until it signs out; other servers on 127.0.0.1 never get a credential.
 */

let browser: Browser;
let panel: PanelProcess;
let context: BrowserContext;
let snoop: Server;
let snoopUrl = '';
/** The Cookie headers another local server (a slot user's `python3 -m http.server`, say) received. */
const snooped: string[] = [];

beforeAll(async () => {
  browser = await launchChromium();
  panel = await PanelProcess.start({ SLOTDECK_MASTER_KEY: 'e2e-master-key' });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  snoop = createServer((request, response) => {
    snooped.push(request.headers.cookie ?? '');
    response.writeHead(200, { 'content-type': 'text/html' }).end('<title>another local server</title>');
  });
  await new Promise<void>((resolve) => snoop.listen(0, '127.0.0.1', resolve));
  snoopUrl = `http://127.0.0.1:${(snoop.address() as { port: number }).port}/`;
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await panel?.destroy();
  snoop?.close();
});

const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const ready = (page: Page): Promise<void> => page.locator('.shell[data-ready="true"]').waitFor();
const storedSession = (page: Page): Promise<string | null> =>
  page.evaluate(() => localStorage.getItem('slotdeck.session'));

describe('browser mode’s sign-in in Chromium', () => {
  it('opens with the link once, then keeps working after a reload, in a new tab and after a restart', async () => {
    const page = await context.newPage();
    await page.goto(panel.url);
    await ready(page);
    // The token left the address bar; the session secret is in this origin's storage, not in a cookie.
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    const stored = await storedSession(page);
    expect(stored).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{40,}$/);
    expect(await context.cookies()).toEqual([]);

    // A reload signs in by answering the socket's challenge: the secret itself never goes over the wire.
    const frames: string[] = [];
    page.on('websocket', (socket) => socket.on('framesent', (frame) => frames.push(String(frame.payload))));
    await page.reload();
    await ready(page);
    expect(frames.some((frame) => frame.includes('"proof"'))).toBe(true);
    expect(frames.filter((frame) => frame.includes(stored!.split('.')[1]!))).toEqual([]);
    await expect.poll(() => page.getByTestId('connection-status').textContent()).toContain('This computer');
    await shot(page, 'browser-session-after-reload');

    const tab = await context.newPage();
    await tab.goto(panel.origin);
    await ready(tab);
    await tab.close();

    // The used link does not sign anyone else in.
    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    await strangerPage.goto(panel.url);
    await expect.poll(() => strangerPage.getByTestId('signed-out').textContent()).toContain('already used');
    await stranger.close();

    // Slotdeck restarts on the same port, and this browser is still signed in.
    const origin = panel.origin;
    await panel.stop();
    await panel.launch();
    expect(panel.origin).toBe(origin);
    await page.reload();
    await ready(page);
    await expect.poll(() => page.getByTestId('connection-status').textContent()).toContain('This computer');
  });

  it('sends no credential to another server on 127.0.0.1 the browser visits', async () => {
    const page = await context.newPage();
    await page.goto(snoopUrl);
    await page.goto(`${snoopUrl}ipc`);
    expect(snooped.length).toBeGreaterThan(0);
    expect(snooped.filter((cookie) => cookie !== '')).toEqual([]);
    await page.close();
  });

  it('signs out from the status bar: this browser needs the new link Slotdeck prints', async () => {
    const page = await context.newPage();
    await page.goto(panel.origin);
    await ready(page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page
      .getByRole('dialog', { name: 'Sign out of this browser?' })
      .getByRole('button', { name: 'Sign out' })
      .click();
    await expect.poll(() => page.getByTestId('signed-out').textContent()).toContain('You signed out');
    await shot(page, 'browser-session-signed-out');
    expect(await storedSession(page)).toBeNull();

    await page.reload();
    await expect.poll(() => page.getByTestId('signed-out').textContent()).toContain('not signed in');

    const said = (): number => panel.logs.findIndex((text) => text.includes('Signed out. To sign in again'));
    await expect.poll(said).toBeGreaterThanOrEqual(0);
    const link = panel.logs
      .slice(said())
      .find((text) => text.includes('?token='))!
      .trim();
    await page.goto(link);
    await ready(page);
    expect(await storedSession(page)).not.toBeNull();
  });
});
