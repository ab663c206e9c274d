import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { killAll, processesOf } from '../../integration/helpers/processes.js';
import { launchChromium } from './browser.js';

const ROOT = resolve(import.meta.dirname, '../../..');

/** The panel in browser mode, as `npm start` runs it here, on a fresh data dir. */
export class PanelProcess {
  private child: ChildProcess | null = null;
  private context: BrowserContext | null = null;
  private stopping = false;
  readonly logs: string[] = [];
  url = '';
  origin = '';

  private constructor(
    readonly dataDir: string,
    /** The panel's environment: a test may change it before `stop()` and `launch()` (a new Slotdeck build). */
    readonly env: Record<string, string>,
  ) {}

  static async start(env: Record<string, string> = {}): Promise<PanelProcess> {
    if (!existsSync(join(ROOT, 'out/main/browser.js')))
      throw new Error('the panel is not built: run npm run build first');
    const panel = new PanelProcess(mkdtempSync(join(tmpdir(), 'sd-ui-')), env);
    await panel.launch();
    return panel;
  }

  async launch(): Promise<void> {
    // A new process prints a new link; each launch starts from a fresh browser context and uses it (sessions do survive
    // a restart: tests/e2e/browser-session.test.ts).
    await this.context?.close();
    this.context = null;
    this.stopping = false;
    // No fixed ports: the page's (SLOTDECK_PORT unset: a free one) and the local agent's gateway (else 7421), so two
    // runs on one machine cannot take each other's. A test that needs a port sets it in `env`.
    const { SLOTDECK_PORT: _fixedPagePort, ...inherited } = process.env;
    const child = spawn(process.execPath, [join(ROOT, 'out/main/browser.js')], {
      env: { ...inherited, SLOTDECK_AGENT_GATEWAY_PORT: '0', SLOTDECK_DATA_DIR: this.dataDir, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let exited: number | null | undefined;
    child.once('exit', (code, signal) => {
      exited = code;
      // An exit nobody asked for is a crash: show why, or the next test only sees "connection refused".
      if (!this.stopping)
        console.error(
          `the panel exited unexpectedly (${code ?? signal}); its last output:\n${this.logs.slice(-60).join('\n')}`,
        );
    });
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        this.logs.push(line);
        if (line.startsWith('SLOTDECK_READY ')) {
          const ready = JSON.parse(line.slice('SLOTDECK_READY '.length)) as { url: string; origin: string };
          this.url = ready.url;
          this.origin = ready.origin;
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const deadline = Date.now() + 60_000;
    this.url = '';
    while (!this.url) {
      if (exited !== undefined) throw new Error(`the panel exited (${exited}):\n${this.logs.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`the panel was not ready in 60 s:\n${this.logs.join('\n')}`);
      await sleep(50);
    }
  }

  /**
   * Opens the app in a new page and waits until it shows its hosts. The first page uses the one-time link; later
   * pages share its browser context, whose stored session lets them in, as a user's further tabs would.
   */
  async open(browser: Browser): Promise<Page> {
    const first = !this.context;
    if (!this.context) {
      this.context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      // Playwright waits for an element without end by default: a step whose element never comes would only show as
      // the test's 60 s timeout, naming no step. This names the locator it waited for.
      this.context.setDefaultTimeout(30_000);
    }
    const page = await this.context.newPage();
    await page.goto(first ? this.url : `${this.origin}/`);
    await page.locator('.shell[data-ready="true"]').waitFor();
    return page;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.stopping = true;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await Promise.race([exited, sleep(20_000)]);
  }

  async destroy(): Promise<void> {
    await this.stop();
    killAll(processesOf(this.dataDir));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The text a console shows (xterm's buffer, scrollback included), read in the page. */
export async function consoleText(page: Page): Promise<string> {
  return page.locator('.console:not([hidden]) .xterm-rows').innerText();
}

/** What `panelInChromium` hands a test file once its `beforeAll` ran. */
export interface PanelSession {
  browser: Browser;
  panel: PanelProcess;
  page: Page;
}

/**
 * Registers the usual browser-test lifecycle for a file: Chromium, a fresh panel (a master key in its environment
 * where no Secret Service runs), its page, and "This computer" connected before the first test; all of it closed
 * after the last. `env` adds to the panel's environment.
 */
export function panelInChromium(env: Record<string, string> = {}): PanelSession {
  const session = {} as PanelSession;
  const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);
  beforeAll(async () => {
    session.browser = await launchChromium();
    session.panel = await PanelProcess.start({
      ...(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' }),
      ...env,
    });
    session.page = await session.panel.open(session.browser);
    await session.page.getByTestId('connection-status').filter({ hasText: 'This computer: connected' }).waitFor();
  });
  afterAll(async () => {
    await session.browser?.close();
    await session.panel?.destroy();
  });
  return session;
}
