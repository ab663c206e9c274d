/**
 * The end users' front door on the agent's public listener: how soon a share link shows the slot's terminal in
 * Chromium, what a password sign-in costs (and which hash cost makes it so), and how much JavaScript the portal's
 * first page fetches.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { scrypt } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Browser, BrowserContextOptions } from 'playwright-core';
import { launchChromium } from '../../tests/e2e/helpers/browser.js';
import {
  acceptInvite,
  createShare,
  createUser,
  inviteLink,
  signIn,
  USER_PASSWORD,
} from '../../tests/e2e/helpers/public-site.js';
import { AgentProcess } from '../../tests/integration/helpers/agent.js';
import { median, round, type Figure, type Suite } from '../suite.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PORTAL_DIST = join(ROOT, 'remote-agent/portal-dist');
const SHARE_OPENS = 9;
const SIGN_INS = 15;

interface ScryptCost {
  N: number;
  r: number;
  p: number;
  dkLen: number;
}

/**
 * The scrypt parameters better-auth hashes passwords with, read from the package the agent runs (its Node build of
 * @better-auth/utils/password), not copied here: a better-auth upgrade that changes them shows in the figure.
 */
function betterAuthScryptCost(): ScryptCost {
  const source = readFileSync(
    join(ROOT, 'remote-agent/node_modules/@better-auth/utils/dist/password.node.mjs'),
    'utf8',
  );
  const config = /const config = \{([^}]*)\}/.exec(source)?.[1] ?? '';
  const value = (name: string): number => {
    const match = new RegExp(`\\b${name}:\\s*(\\d+)`).exec(config);
    if (!match) throw new Error(`better-auth's scrypt config has no ${name}: ${config}`);
    return Number(match[1]);
  };
  return { N: value('N'), r: value('r'), p: value('p'), dkLen: value('dkLen') };
}

/** One scrypt derivation with that cost, as better-auth runs it to verify a password (node:crypto, libuv pool). */
function scryptOnce(cost: ScryptCost): Promise<number> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) =>
    scrypt(
      USER_PASSWORD.normalize('NFKC'),
      '0123456789abcdef0123456789abcdef',
      cost.dkLen,
      { N: cost.N, r: cost.r, p: cost.p, maxmem: 128 * cost.N * cost.r * 2 },
      (error) => (error ? reject(error) : resolvePromise(performance.now() - started)),
    ),
  );
}

const gzipKb = (paths: string[]): number =>
  round(paths.reduce((sum, path) => sum + gzipSync(readFileSync(join(PORTAL_DIST, path))).length, 0) / 1024, 1);

/** The same-origin scripts a page fetched, as paths under portal-dist (`portal-assets/index-abc.js`). */
async function scriptsOf(
  browser: Browser,
  url: string,
  storageState?: BrowserContextOptions['storageState'],
): Promise<string[]> {
  const context = await browser.newContext(storageState ? { storageState } : {});
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForLoadState('networkidle');
    const origin = new URL(url).origin;
    const entries = await page.evaluate(() => performance.getEntriesByType('resource').map((entry) => entry.name));
    return entries
      .filter((name) => name.startsWith(origin) && new URL(name).pathname.endsWith('.js'))
      .map((name) => new URL(name).pathname.slice(1));
  } finally {
    await context.close();
  }
}

export const portalSuite: Suite = {
  async run(log) {
    if (!existsSync(join(PORTAL_DIST, 'index.html')))
      throw new Error('the portal bundle is not built (remote-agent/portal-dist): run npm run build first');
    const browser = await launchChromium();
    const agent = await AgentProcess.start();
    try {
      const user = await createUser(agent, 'bench');
      await acceptInvite(agent, await inviteLink(agent, user.id));
      const slot = await agent.createSlot({ name: 'bench-share', ownerId: user.id });
      // The share page replays the slot's screen: wait until the shell has printed its prompt.
      const shell = await agent.attach(slot.id);
      await shell.waitForPrompt();
      shell.close();

      // ---- login_ms_p50 -------------------------------------------------------------------------------------
      const cost = betterAuthScryptCost();
      log(`password sign-in: ${SIGN_INS} requests over HTTP (scrypt N=${cost.N} r=${cost.r} p=${cost.p})`);
      const signIns: number[] = [];
      for (let i = 0; i < SIGN_INS + 1; i++) {
        const started = performance.now();
        const { status, cookie } = await signIn(agent, 'bench');
        const took = performance.now() - started;
        if (status !== 200 || !cookie) throw new Error(`sign-in answered ${status} (cookie: ${Boolean(cookie)})`);
        if (i > 0) signIns.push(took); // the first warms the agent's connection and better-auth's caches
      }
      const hashes: number[] = [];
      for (let i = 0; i < SIGN_INS; i++) hashes.push(await scryptOnce(cost));
      const hashMs = round(median(hashes), 1);
      const loginMs = round(median(signIns), 1);

      // ---- share_open_ms_p50 --------------------------------------------------------------------------------
      log(`share link: ${SHARE_OPENS} cold loads in Chromium (fresh context each) until the terminal shows output`);
      const share = await createShare(agent, slot.id, { mode: 'read' });
      const opens: number[] = [];
      const phases = { scripts: [] as number[], ticket: [] as number[], ticketRequest: [] as number[] };
      for (let i = 0; i < SHARE_OPENS; i++) {
        const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
        const page = await context.newPage();
        await page.goto(share.link, { waitUntil: 'commit' });
        // performance.now() counts from the navigation's start: link opened → first terminal output drawn.
        // Also when the page's scripts and its ticket had arrived, to show where the time went.
        const shown = await page.waitForFunction(
          () => {
            const rows = document.querySelector('.xterm-rows');
            if (!rows || (rows.textContent ?? '').trim().length === 0) return null;
            // No named functions in here: tsx would wrap them in a helper (__name) the page does not have.
            const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
            return {
              output: performance.now(),
              scripts: Math.max(0, ...resources.filter((e) => e.name.endsWith('.js')).map((e) => e.responseEnd)),
              ticket: Math.max(0, ...resources.filter((e) => e.name.endsWith('/ticket')).map((e) => e.responseEnd)),
              ticketRequest: Math.max(
                0,
                ...resources.filter((e) => e.name.endsWith('/ticket')).map((e) => e.responseEnd - e.startTime),
              ),
            };
          },
          null,
          { polling: 10, timeout: 30_000 },
        );
        const at = (await shown.jsonValue()) as {
          output: number;
          scripts: number;
          ticket: number;
          ticketRequest: number;
        };
        opens.push(at.output);
        phases.scripts.push(at.scripts);
        phases.ticket.push(at.ticket);
        phases.ticketRequest.push(at.ticketRequest);
        await context.close();
      }

      // ---- portal_initial_js_gzip_kb ------------------------------------------------------------------------
      log('portal first load: the scripts a signed-in user’s first page (My slots) fetches, gzipped');
      const signInContext = await browser.newContext();
      const signInPage = await signInContext.newPage();
      await signInPage.goto(`${agent.gatewayUrl}/sign-in`);
      await signInPage.getByTestId('sign-in-login').fill('bench');
      await signInPage.getByTestId('sign-in-password').fill(USER_PASSWORD);
      await signInPage.getByTestId('sign-in-submit').click();
      await signInPage.getByTestId('signed-in-as').waitFor({ timeout: 30_000 });
      const storageState = await signInContext.storageState();
      await signInContext.close();
      const portalScripts = await scriptsOf(browser, `${agent.gatewayUrl}/`, storageState);
      const signInScripts = await scriptsOf(browser, `${agent.gatewayUrl}/sign-in`);
      const shareScripts = await scriptsOf(browser, share.link);
      if (portalScripts.length === 0) throw new Error('the portal page fetched no script');

      return {
        share_open_ms_p50: {
          value: round(median(opens), 0),
          unit: 'ms',
          what: `share link opened in Chromium (cold, fresh context) → first terminal output drawn (median of ${SHARE_OPENS})`,
          goal: '<= 500',
          detail: {
            worst_ms: round(Math.max(...opens), 0),
            best_ms: round(Math.min(...opens), 0),
            scripts_loaded_ms_p50: round(median(phases.scripts), 0),
            ticket_answered_ms_p50: round(median(phases.ticket), 0),
            ticket_request_ms_p50: round(median(phases.ticketRequest), 0),
            loads: opens.length,
          },
        },
        login_ms_p50: {
          value: loginMs,
          unit: 'ms',
          what: `password sign-in request over HTTP (POST /api/public/auth/sign-in → session cookie; median of ${SIGN_INS})`,
          baseline: {
            value: hashMs,
            unit: 'ms',
            what: `one scrypt derivation at better-auth's cost (N=${cost.N}, r=${cost.r}, p=${cost.p}, ${cost.dkLen}-byte key), in-process`,
          },
          ratio: round(loginMs / hashMs, 2),
          detail: {
            hash: `scrypt N=${cost.N} r=${cost.r} p=${cost.p} dkLen=${cost.dkLen} (${(128 * cost.N * cost.r) / 2 ** 20} MiB per hash)`,
            worst_ms: round(Math.max(...signIns), 1),
            best_ms: round(Math.min(...signIns), 1),
          },
        },
        portal_initial_js_gzip_kb: {
          value: gzipKb(portalScripts),
          unit: 'KB',
          what: 'JavaScript the portal’s first page (My slots, signed in) fetched, gzipped, from remote-agent/portal-dist',
          goal: '<= 150',
          detail: {
            files: portalScripts.join(' '),
            sign_in_page_kb: gzipKb(signInScripts),
            share_page_kb: gzipKb(shareScripts),
            share_page_files: shareScripts.join(' '),
          },
        },
      } satisfies Record<string, Figure>;
    } finally {
      await browser.close();
      await agent.destroy();
    }
  },
};
