import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderScreen, type RenderedScreen, type RenderJob } from './journal.js';

/** A renderer nobody asked anything of for this long ends, and all the memory it used goes back to the system. */
const IDLE_MS = 2000;
/** A job gets this long, plus JOB_MS_PER_MB for each MB it replays, before the renderer is taken for stuck. */
const JOB_BASE_MS = 30_000;
const JOB_MS_PER_MB = 5000;

export interface ScreenRendererOptions {
  idleMs?: number;
  /** Overrides the deadline of every job (tests). */
  jobTimeoutMs?: number;
  /** The renderer's script; tests name one that cannot start. */
  script?: string;
}

interface Waiting {
  job: RenderJob;
  resolve: (screen: RenderedScreen) => void;
  reject: (error: Error) => void;
  deadline: NodeJS.Timeout;
}

interface Renderer {
  process: ChildProcess;
  /** It loaded its modules and said so: from then on a failure is the job's, not the renderer's. */
  ready: boolean;
}

type RendererMessage = { ready: true } | { id: number; screen?: RenderedScreen; error?: string };

/**
 * Renders slot screens (snapshot + journal → serialized screen) in a child process. Parsing megabytes of output into
 * a headless terminal takes the better part of a second per slot: on the agent's event loop it stalled every
 * gateway request and console while 5 slots compacted after output bursts (R7 in the reliability bench). A worker
 * thread freed the event loop but not the memory: the allocator kept the ~140 MB its terminals had used after the
 * thread ended. A process gives it all back when it exits, which it does when idle.
 *
 * Failures: a renderer that cannot start (its script missing or broken) leaves the jobs to this thread, slowly but
 * keeping every screen. One that started and then dies or stops answering within a job's deadline is killed and its
 * jobs fail: the journal stays as it is and is compacted later; the same input is not parsed again here, where it
 * could stall or crash the agent.
 */
export class ScreenRenderer {
  private renderer: Renderer | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: ScreenRendererOptions = {}) {}

  /** The renderer's process id while it runs (the bench counts its memory as the agent's). */
  get pid(): number | null {
    return this.renderer?.process.pid ?? null;
  }

  /** Jobs sent and not answered yet. */
  get pendingJobs(): number {
    return this.waiting.size;
  }

  get running(): boolean {
    return this.renderer !== null;
  }

  render(job: RenderJob): Promise<RenderedScreen> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const renderer = this.renderer ?? this.start();
    // Pending work keeps the agent's process alive (a shutdown's last compaction included); an idle renderer not.
    renderer.process.ref();
    renderer.process.channel?.ref();
    const id = this.nextId++;
    const replayedMb = Math.min(job.to - job.from, job.maxReplayBytes) / 2 ** 20;
    const timeoutMs = this.options.jobTimeoutMs ?? JOB_BASE_MS + JOB_MS_PER_MB * replayedMb;
    return new Promise<RenderedScreen>((resolve, reject) => {
      const deadline = setTimeout(() => {
        if (this.renderer === renderer)
          this.lose(renderer, new Error(`the screen renderer did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.waiting.set(id, { job, resolve, reject, deadline });
      renderer.process.send({ id, job }, (error) => {
        if (error && this.renderer === renderer) this.lose(renderer, error);
      });
    });
  }

  /** Ends the renderer now (the agent is shutting down); jobs under way fail. */
  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.renderer) this.lose(this.renderer, new Error('the screen renderer was closed'));
  }

  private start(): Renderer {
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
    const renderer: Renderer = { process: child, ready: false };
    child.on('message', (message: RendererMessage) => {
      if ('ready' in message) {
        renderer.ready = true;
        return;
      }
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      clearTimeout(waiter.deadline);
      if (message.screen) waiter.resolve(message.screen);
      else waiter.reject(new Error(message.error ?? 'the screen renderer failed'));
      if (this.waiting.size === 0) this.idle(renderer);
    });
    child.on('error', (error) => this.lose(renderer, error));
    child.on('exit', (code, signal) =>
      this.lose(renderer, new Error(`the screen renderer ended (${signal ?? `exit code ${code}`})`)),
    );
    this.renderer = renderer;
    return renderer;
  }

  /** The renderer is gone or stuck: it is killed, and what it had is rendered here or fails (see the class). */
  private lose(renderer: Renderer, error: Error): void {
    if (this.renderer !== renderer) return;
    this.renderer = null;
    renderer.process.kill('SIGKILL');
    const jobs = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of jobs) {
      clearTimeout(waiter.deadline);
      if (renderer.ready) waiter.reject(error);
      else renderScreen(waiter.job).then(waiter.resolve, waiter.reject);
    }
  }

  private idle(renderer: Renderer): void {
    renderer.process.unref();
    renderer.process.channel?.unref();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.waiting.size > 0 || this.renderer !== renderer) return;
      this.renderer = null;
      renderer.process.disconnect();
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
