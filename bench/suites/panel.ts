import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launchChromium } from '../../tests/e2e/helpers/browser.js';
import { PanelProcess } from '../../tests/e2e/helpers/panel.js';
import { median, round, type Figure, type Suite } from '../suite.js';

const RENDERER = resolve(import.meta.dirname, '../../out/renderer');
const LOADS = 7;

const gzipKb = (files: string[]): number =>
  round(files.reduce((sum, file) => sum + gzipSync(readFileSync(join(RENDERER, file))).length, 0) / 1024, 1);

export const panelSuite: Suite = {
  async run(log) {
    log(`time to interactive: ${LOADS} cold loads of browser mode in Chromium (fresh browser context each)`);
    const browser = await launchChromium();
    const panel = await PanelProcess.start();
    try {
      // The one-time link gives the session; later loads reuse its stored secret in fresh contexts (nothing cached).
      const first = await browser.newContext();
      const page = await first.newPage();
      await page.goto(panel.url);
      await page.locator('.shell[data-ready="true"]').waitFor();
      const storageState = await first.storageState();
      await first.close();
      const times: number[] = [];
      // The scripts the page fetched before it was interactive, and those it fetched after (the consoles' chunk).
      let scripts: { before: string[]; after: string[] } = { before: [], after: [] };
      for (let i = 0; i < LOADS; i++) {
        const context = await browser.newContext({ storageState });
        const tab = await context.newPage();
        await tab.goto(`${panel.origin}/`);
        // The app marks the first commit that shows its hosts; startTime counts from navigation start.
        const interactive = await tab.waitForFunction(
          () => performance.getEntriesByName('slotdeck:interactive')[0]?.startTime ?? null,
          null,
          { polling: 50 },
        );
        const at = Number(await interactive.jsonValue());
        times.push(at);
        // Let the rest of the page load (the consoles' chunk), then sort its scripts by when they were requested.
        await tab.waitForLoadState('networkidle');
        // No named functions inside: tsx would wrap them in a helper (__name) the page does not have.
        const entries = await tab.evaluate(() =>
          performance
            .getEntriesByType('resource')
            .filter((entry) => entry.name.endsWith('.js'))
            .map((entry) => ({ path: new URL(entry.name).pathname.slice(1), startTime: entry.startTime })),
        );
        scripts = {
          before: entries.filter((entry) => entry.startTime < at).map((entry) => entry.path),
          after: entries.filter((entry) => entry.startTime >= at).map((entry) => entry.path),
        };
        await context.close();
      }
      return {
        tti_ms: {
          value: round(median(times), 0),
          unit: 'ms',
          what: `browser mode, cold page load (fresh context, signed in) → first commit showing the hosts (median of ${LOADS})`,
          goal: '<= 600',
          detail: {
            worst_ms: round(Math.max(...times), 0),
            best_ms: round(Math.min(...times), 0),
            loads: times.length,
          },
        },
        initial_js_gzip_kb: {
          value: gzipKb(scripts.before),
          unit: 'KB',
          what: 'JavaScript the page requested before it was interactive, gzipped',
          goal: '<= 350',
          detail: {
            files: scripts.before.join(' '),
            fetched_after_interactive_kb: gzipKb(scripts.after),
            fetched_after_interactive: scripts.after.join(' '),
          },
        },
      } satisfies Record<string, Figure>;
    } finally {
      await browser.close();
      await panel.destroy();
    }
  },
};
