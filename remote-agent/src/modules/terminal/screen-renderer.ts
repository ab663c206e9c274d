import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderScreen, type RenderedScreen, type RenderJob } from './journal.js';

/** A renderer nobody asked anything of for this long ends, and all the memory it used goes back to the system. */
const IDLE_MS = 2000;

export interface ScreenRendererOptions {
  idleMs?: number;
  /** The renderer's script; tests name one that cannot start. */
  script?: string;
}

interface Waiting {
  job: RenderJob;
  resolve: (screen: RenderedScreen) => void;
  reject: (error: Error) => void;
}

/**
 * Renders slot screens (snapshot + journal → serialized screen) in a child process. Parsing megabytes of output into
 * a headless terminal takes the better part of a second per slot: on the agent's event loop it stalled every
 * gateway request and console while 5 slots compacted after output bursts (R7 in the reliability bench). A worker
 * thread freed the event loop but not the memory: the allocator kept the ~140 MB its terminals had used after the
 * thread ended. A process gives it all back when it exits, which it does when idle. Jobs go to it in order; should
 * it fail to start or die, the jobs it had are rendered here instead (the screen is kept), and the next job starts
 * a fresh process.
 */
export class ScreenRenderer {
  private child: ChildProcess | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: ScreenRendererOptions = {}) {}

  /** The renderer's process id while it runs (the bench counts its memory as the agent's). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child !== null;
  }

  render(job: RenderJob): Promise<RenderedScreen> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const child = this.child ?? this.start();
    const id = this.nextId++;
    return new Promise<RenderedScreen>((resolve, reject) => {
      this.waiting.set(id, { job, resolve, reject });
      child.send({ id, job }, (error) => {
        if (error) this.lost(child);
      });
    });
  }

  /** Ends the renderer now (the agent is shutting down); jobs under way are rendered here. */
  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.child) this.lost(this.child);
  }

  private start(): ChildProcess {
    const fromSources = import.meta.url.endsWith('.ts');
    const script =
      this.options.script ??
      fileURLToPath(new URL(`./screen-render-process.${fromSources ? 'ts' : 'js'}`, import.meta.url));
    const child = fork(script, [], {
      // Nothing of the agent's environment: it needs none, and secrets never go to a child.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      execArgv: fromSources ? ['--import', tsxLoader()] : [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    // Never what keeps the agent running.
    child.unref();
    child.channel?.unref();
    child.on('message', (message: { id: number; screen?: RenderedScreen; error?: string }) => {
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.screen) waiter.resolve(message.screen);
      else waiter.reject(new Error(message.error ?? 'the screen renderer failed'));
      if (this.waiting.size === 0) this.scheduleIdleEnd();
    });
    child.on('error', () => this.lost(child));
    child.on('exit', () => this.lost(child));
    this.child = child;
    return child;
  }

  /** The process is gone (or going): what it had is rendered here. */
  private lost(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = null;
    child.kill('SIGKILL');
    const jobs = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of jobs) renderScreen(waiter.job).then(waiter.resolve, waiter.reject);
  }

  private scheduleIdleEnd(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.waiting.size > 0 || !this.child) return;
      const child = this.child;
      this.child = null;
      child.disconnect();
    }, this.options.idleMs ?? IDLE_MS);
    this.idleTimer.unref();
  }
}

/** tsx's loader, for the renderer when the agent runs from its TypeScript sources (the tests). */
function tsxLoader(): string {
  const root = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  return pathToFileURL(join(root, 'dist/loader.mjs')).href;
}

/** The agent's one renderer: every slot's screen store shares it. */
export const sharedScreenRenderer = new ScreenRenderer();
