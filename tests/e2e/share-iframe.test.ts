import { join } from 'node:path';
import type { Browser, BrowserContext, ConsoleMessage, FrameLocator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedShare, Share, Slot } from '../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../integration/helpers/agent.js';
import type { TerminalTestClient } from '../integration/helpers/terminal-client.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { createShare, startEmbeddingSite } from './helpers/public-site.js';

/**
 * Share links as another site embeds them: the agent answers on http://127.0.0.1:<gateway port>, the embedding page
 * on http://localhost:<other port> (another site: no cookie of the agent's goes along, none is needed). Read-only
 * viewers cannot type, writable ones can, origins the share does not list cannot frame it, revoking disconnects the
 * viewer, and OSC 52 from the slot's program reaches the viewer's clipboard.
 */

let browser: Browser;
let agent: AgentProcess;
let site: Awaited<ReturnType<typeof startEmbeddingSite>>;
let slot: Slot;
let readShare: CreatedShare;
let writeShare: CreatedShare;
let context: BrowserContext;
let page: Page;
let admin: TerminalTestClient;

const shot = (target: Page, name: string): Promise<Buffer> =>
  target.screenshot({ path: join(ARTIFACTS, `share-iframe-${name}.png`), fullPage: true });
const rows = (frame: FrameLocator) => frame.locator('.xterm-rows');

/**
 * Clicks a frame's terminal and waits until it has the keyboard (a user sees the cursor turn solid before typing), so
 * that a click that went elsewhere fails here rather than as keys lost later.
 */
async function focusTerminal(frame: FrameLocator): Promise<void> {
  await frame.getByTestId('share-terminal').click();
  const textarea = frame.locator('.xterm-helper-textarea');
  await expect
    .poll(() => textarea.evaluate((element) => document.hasFocus() && document.activeElement === element))
    .toBe(true);
}

async function shares(): Promise<Share[]> {
  return (await agent.request<{ shares: Share[] }>('GET', `/api/v1/slots/${slot.id}/shares`)).body.shares;
}

beforeAll(async () => {
  [browser, site] = await Promise.all([launchChromium(), startEmbeddingSite()]);
  agent = await AgentProcess.start();
  slot = await agent.createSlot({ name: 'demo' });
  readShare = await createShare(agent, slot.id, { mode: 'read', frameAncestors: [site.origin], label: 'docs page' });
  writeShare = await createShare(agent, slot.id, { mode: 'write', frameAncestors: [site.origin], label: 'pairing' });
  // The admin's own console on the slot: what reached the program, whatever the viewers' pages show.
  admin = await agent.attach(slot.id);
  await admin.waitForPrompt();
  // The viewport holds the whole page. A full-page screenshot of a taller page resizes the view, and Chromium, which
  // routes a click to a cross-origin frame by the compositor's hit-test data, then sent later clicks under load to
  // the frame that had been at that point in the screenshot's layout, for as long as the test ran.
  context = await browser.newContext({ viewport: { width: 1300, height: 1150 } });
  context.setDefaultTimeout(30_000);
  page = await context.newPage();
});

afterAll(async () => {
  admin?.close();
  await browser?.close();
  await site?.close();
  await agent?.destroy();
});

describe('share links in an iframe on another origin (Chromium)', () => {
  let readFrame: FrameLocator;
  let writeFrame: FrameLocator;

  it('gives a link and an iframe snippet that opens on the listed origin, with no cookies', async () => {
    expect(writeShare.link).toMatch(new RegExp(`^${agent.gatewayUrl}/share/[A-Za-z0-9_-]{43}$`));
    expect(writeShare.iframeSnippet).toContain(`src="${writeShare.link}"`);
    expect(writeShare.iframeSnippet).toContain('clipboard-write');
    await page.goto(
      site.page(
        `<h1>Our docs</h1><div id="read">${readShare.iframeSnippet}</div><div id="write">${writeShare.iframeSnippet}</div>`,
      ),
    );
    readFrame = page.frameLocator('#read iframe');
    writeFrame = page.frameLocator('#write iframe');
    for (const frame of [readFrame, writeFrame]) {
      await frame.getByTestId('share-state').filter({ hasText: 'connected' }).waitFor();
      expect(await frame.getByTestId('share-slot-name').textContent()).toBe('demo');
    }
    expect(await readFrame.getByTestId('share-read-only').isVisible()).toBe(true);
    expect(await writeFrame.getByTestId('share-read-only').isVisible()).toBe(false);
    expect(await context.cookies()).toEqual([]);
    const listed = await shares();
    expect(listed.find((share) => share.id === writeShare.share.id)?.viewersNow).toBe(1);
    expect(listed.find((share) => share.id === readShare.share.id)?.opens).toBeGreaterThanOrEqual(1);
  });

  it('does not let a read-only viewer type, and shows it what a writable viewer types', async () => {
    await focusTerminal(readFrame);
    await page.keyboard.type('echo ro-typed-$((1+1))');
    await page.keyboard.press('Enter');
    await focusTerminal(writeFrame);
    await page.keyboard.type('echo rw-typed-$((3*4))');
    await page.keyboard.press('Enter');
    // Input reaches the program in order: once the writer's command ran, anything the reader typed would have too.
    await admin.waitFor('rw-typed-12');
    await rows(writeFrame).filter({ hasText: 'rw-typed-12' }).waitFor();
    await rows(readFrame).filter({ hasText: 'rw-typed-12' }).waitFor();
    expect(admin.output).not.toContain('ro-typed');
    expect(await rows(readFrame).innerText()).not.toContain('ro-typed');
    await shot(page, 'read-and-write');
  });

  it('puts text a program copies with OSC 52 on the viewer’s clipboard', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: agent.gatewayUrl });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.origin });
    await page.evaluate(() => navigator.clipboard.writeText('before'));
    await focusTerminal(writeFrame);
    // The shell builds the sequence, so the text on the screen is not the text that should land on the clipboard.
    await page.keyboard.type(`printf '\\033]52;c;%s\\a' "$(printf 'copied from %s' slot-$((5*5)) | base64)"`);
    await page.keyboard.press('Enter');
    const note = writeFrame.getByTestId('share-clipboard-note').or(writeFrame.getByTestId('share-copy'));
    await note.first().waitFor();
    // Where the browser wanted a gesture, the page offers a button: the viewer clicks it.
    if ((await writeFrame.getByTestId('share-copy').count()) > 0) await writeFrame.getByTestId('share-copy').click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('copied from slot-25');
    await shot(page, 'osc52');
  });

  it('cannot be framed by an origin the share does not list', async () => {
    const unlisted = await createShare(agent, slot.id, { mode: 'write', frameAncestors: [] });
    const elsewhere = await createShare(agent, slot.id, {
      mode: 'read',
      frameAncestors: ['https://intranet.example.com'],
    });
    const blockedPage = await context.newPage();
    const messages: string[] = [];
    blockedPage.on('console', (message: ConsoleMessage) => messages.push(message.text()));
    const answers: Array<{ url: string; status: number; csp: string }> = [];
    blockedPage.on('response', (response) => {
      if (response.url().includes('/share/'))
        answers.push({
          url: response.url(),
          status: response.status(),
          csp: response.headers()['content-security-policy'] ?? '',
        });
    });
    await blockedPage.goto(
      site.page(`<div id="none">${unlisted.iframeSnippet}</div><div id="other">${elsewhere.iframeSnippet}</div>`),
    );
    // The agent answered both (this is the browser refusing, not a network failure)…
    await expect.poll(() => answers.length).toBe(2);
    expect(answers.find((answer) => answer.url === unlisted.link)?.csp).toContain("frame-ancestors 'none'");
    expect(answers.find((answer) => answer.url === elsewhere.link)?.csp).toContain(
      'frame-ancestors https://intranet.example.com',
    );
    // …and Chromium blocked both frames, saying why.
    await expect
      .poll(() => messages.filter((text) => /frame-ancestors/.test(text)).length, { timeout: 10_000 })
      .toBe(2);
    for (const id of ['none', 'other']) {
      const frame = blockedPage.frameLocator(`#${id} iframe`);
      expect(await frame.getByTestId('share-terminal').count()).toBe(0);
    }
    // The frames never reached the agent's page: nobody opened them.
    const listed = await shares();
    expect(listed.find((share) => share.id === unlisted.share.id)?.viewersNow).toBe(0);
    expect(listed.find((share) => share.id === elsewhere.share.id)?.viewersNow).toBe(0);
    await shot(blockedPage, 'blocked');
    await blockedPage.close();
  });

  it('disconnects the viewer at once when the share is revoked, and says so', async () => {
    const revoked = await agent.request<Share>('DELETE', `/api/v1/shares/${writeShare.share.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.state).toBe('revoked');
    const ended = writeFrame.getByTestId('share-ended');
    await ended.waitFor();
    expect(await ended.getAttribute('data-reason')).toBe('revoked');
    expect(await ended.innerText()).toContain('This share link was revoked');
    expect((await shares()).find((share) => share.id === writeShare.share.id)?.viewersNow).toBe(0);
    // The other share of the slot stays open.
    expect(await readFrame.getByTestId('share-state').textContent()).toBe('connected');
    await shot(page, 'revoked');

    // Opening the link again shows the same clear page.
    await page.goto(site.page(writeShare.iframeSnippet));
    await page.frameLocator('iframe').getByTestId('share-ended').waitFor();
    expect(await page.frameLocator('iframe').getByTestId('share-ended').getAttribute('data-reason')).toBe('revoked');
  });
});
