import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launchChromium } from '../../tests/e2e/helpers/browser.js';
import { PanelProcess } from '../../tests/e2e/helpers/panel.js';
import { median, round, type Figure, type Suite } from '../suite.js';

const RENDERER = resolve(import.meta.dirname, '../../out/renderer');
const LOADS = 7;

/** The JavaScript the page loads before anything else: its script tags and module preloads, gzipped. */
function initialScripts(): { files: string[]; gzipBytes: number } {
  const html = readFileSync(join(RENDERER, 'index.html'), 'utf8');
  const files = [...html.matchAll(/<script[^>]+src="([^"]+)"|<link[^>]+rel="modulepreload"[^>]+href="([^"]+)"/g)].map(
    (match) => (match[1] ?? match[2])!,
  );
  const gzipBytes = files.reduce(
    (sum, file) => sum + gzipSync(readFileSync(join(RENDERER, file.replace(/^\.?\//, '')))).length,
    0,
  );
  return { files, gzipBytes };
}

export const panelSuite: Suite = {
  async run(log) {
    const metrics: Record<string, Figure> = {};
    const scripts = initialScripts();
    metrics.initial_js_gzip_kb = {
      value: round(scripts.gzipBytes / 1024, 1),
      unit: 'KB',
      goal: '<= 350',
      detail: { files: scripts.files.join(' ') },
    };

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
      for (let i = 0; i < LOADS; i++) {
        const context = await browser.newContext({ storageState });
        const tab = await context.newPage();
        await tab.goto(`${panel.origin}/`);
        // The app marks the moment it shows its hosts and takes input; startTime counts from navigation start.
        const interactive = await tab.waitForFunction(
          () => performance.getEntriesByName('slotdeck:interactive')[0]?.startTime ?? null,
          null,
          { polling: 50 },
        );
        times.push(Number(await interactive.jsonValue()));
        await context.close();
      }
      metrics.tti_ms = {
        value: round(median(times), 0),
        unit: 'ms',
        goal: '<= 600',
        detail: { worst_ms: round(Math.max(...times), 0), loads: times.length },
      };
    } finally {
      await browser.close();
      await panel.destroy();
    }
    return metrics;
  },
};
