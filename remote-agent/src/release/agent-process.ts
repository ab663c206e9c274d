import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_PM2_NAME } from '../contract/release.js';
import { withoutSecrets } from '../contract/secret-env.js';
import { Health } from '../contract/health.js';
import { readAgentState, type AgentState } from '../server.js';

type Callback<T = unknown> = (error: Error | null, result: T) => void;
interface Pm2Description {
  pid?: number;
  pm2_env?: { status?: string; restart_time?: number; unstable_restarts?: number };
}
interface Pm2Api {
  connect(callback: Callback<void>): void;
  disconnect(callback?: Callback<void>): void;
  describe(name: string, callback: Callback<Pm2Description[]>): void;
  start(options: Record<string, unknown>, callback: Callback<unknown>): void;
  delete(name: string, callback: Callback<unknown>): void;
  dump(callback: Callback<unknown>): void;
  resurrect(callback: Callback<unknown>): void;
}

const CALL_TIMEOUT_MS = 30_000;

/** Names of the agent's environment that the agent under PM2 may see: the basics and the agent's own settings. */
const KEPT_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|XDG_[A-Z_]+|SLOTDECK_[A-Z0-9_]+)$/;

/**
 * The environment PM2's daemon and the agent under it get: what a login would have, and the agent's settings,
 * without anything secret (the daemon passes its environment to every slot) or anything from the SSH session that
 * ran the deploy (SSH_AUTH_SOCK would hand the admin's agent to every slot).
 */
export function cleanAgentEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(withoutSecrets(env))) {
    if (value !== undefined && KEPT_ENV.test(name)) kept[name] = value;
  }
  return kept;
}

export interface AgentLaunch {
  /** ROOT/bin/slotdeck-agent (follows `current` and the installed node). */
  command: string;
  /** `serve` and the data dir / config / port options the release command was given. */
  args: string[];
  logFile: string;
  cwd: string;
}

/** The agent as a PM2 process (AGENT_PM2_NAME) in its own PM2 daemon, the one that runs its slots. */
export class AgentUnderPm2 {
  private api: Pm2Api | null = null;

  constructor(private readonly pm2Home: string) {}

  /** PM2's daemon runs (without connecting, which would start one). */
  daemonRunning(): boolean {
    try {
      const pid = Number.parseInt(readFileSync(join(this.pm2Home, 'pm2.pid'), 'utf8'), 10);
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Connects, starting the daemon when needed; the daemon inherits a clean environment (see cleanAgentEnv). */
  async connect(): Promise<void> {
    if (this.api) return;
    const daemonWasRunning = this.daemonRunning();
    // This process's environment is what the daemon (and PM2's copy into each app) gets: replace it first.
    const clean = cleanAgentEnv(process.env);
    for (const name of Object.keys(process.env)) if (!(name in clean)) delete process.env[name];
    process.env.PM2_HOME = this.pm2Home;
    mkdirSync(this.pm2Home, { recursive: true, mode: 0o700 });
    const pm2 = createRequire(import.meta.url)('pm2') as {
      custom: new (options: { pm2_home: string; daemon_mode: boolean }) => Pm2Api;
    };
    const api = new pm2.custom({ pm2_home: this.pm2Home, daemon_mode: true });
    await call('connect to PM2', (cb) => api.connect(cb));
    this.api = api;
    if (!daemonWasRunning) this.recordDaemonRelease();
  }

  private get daemonReleaseFile(): string {
    return join(this.pm2Home, 'slotdeck-daemon-release.json');
  }

  /** The daemon just started from this release's node_modules/pm2 (PM2 renames its process, so /proc cannot tell). */
  private recordDaemonRelease(): void {
    try {
      const pid = Number.parseInt(readFileSync(join(this.pm2Home, 'pm2.pid'), 'utf8'), 10);
      const release = realpathSync(fileURLToPath(new URL('../../', import.meta.url)));
      writeFileSync(this.daemonReleaseFile, `${JSON.stringify({ pid, release })}\n`, { mode: 0o600 });
    } catch {
      // no record: pruning then only keeps current and previous
    }
  }

  /** The version (folder name) of the release the running daemon was started from, or null. */
  daemonRelease(): string | null {
    try {
      const { pid, release } = JSON.parse(readFileSync(this.daemonReleaseFile, 'utf8')) as {
        pid: number;
        release: string;
      };
      const running = Number.parseInt(readFileSync(join(this.pm2Home, 'pm2.pid'), 'utf8'), 10);
      if (pid !== running || !alive(pid)) return null;
      return basename(release);
    } catch {
      return null;
    }
  }

  private get connected(): Pm2Api {
    if (!this.api) throw new Error('not connected to PM2');
    return this.api;
  }

  async describe(): Promise<{ pid: number | null; status: string; restarts: number } | null> {
    const api = this.connected;
    const found = await call<Pm2Description[]>('describe the agent', (cb) => api.describe(AGENT_PM2_NAME, cb));
    const entry = found[0];
    if (!entry) return null;
    return {
      pid: entry.pid && entry.pid > 0 ? entry.pid : null,
      status: entry.pm2_env?.status ?? 'unknown',
      restarts: entry.pm2_env?.restart_time ?? 0,
    };
  }

  async start(launch: AgentLaunch): Promise<void> {
    const api = this.connected;
    mkdirSync(join(launch.logFile, '..'), { recursive: true });
    await call('start the agent', (cb) =>
      api.start(
        {
          name: AGENT_PM2_NAME,
          script: launch.command,
          args: launch.args,
          interpreter: 'none',
          cwd: launch.cwd,
          env: cleanAgentEnv(process.env),
          autorestart: true,
          // A crash is restarted after a pause that grows; activation judges a new build by its health, not this.
          exp_backoff_restart_delay: 500,
          max_restarts: 1000,
          min_uptime: 5000,
          out_file: launch.logFile,
          error_file: launch.logFile,
          merge_logs: true,
          time: true,
          // The agent's graceful stop (SIGINT) closes connections and the database; slots keep running.
          kill_timeout: 15_000,
          treekill: true,
          vizion: false,
          pmx: false,
          automation: false,
        },
        cb,
      ),
    );
  }

  /** Stops and forgets the agent's PM2 process (PM2 sends SIGINT, then SIGKILL after kill_timeout). */
  async remove(): Promise<boolean> {
    const api = this.connected;
    if (!(await this.describe())) return false;
    await call('stop the agent', (cb) => api.delete(AGENT_PM2_NAME, cb));
    return true;
  }

  /** `pm2 save`: what `release resurrect` starts at boot. */
  async save(): Promise<void> {
    const api = this.connected;
    await call('save the process list', (cb) => api.dump(cb));
  }

  async resurrect(): Promise<void> {
    const api = this.connected;
    await call('resurrect the saved process list', (cb) => api.resurrect(cb));
  }

  async disconnect(): Promise<void> {
    const api = this.api;
    this.api = null;
    if (!api) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000);
      api.disconnect(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function call<T = unknown>(what: string, run: (callback: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`PM2 did not answer within ${CALL_TIMEOUT_MS / 1000} s while trying to ${what}`)),
      CALL_TIMEOUT_MS,
    );
    try {
      run((error, result) => {
        clearTimeout(timer);
        if (error) reject(new Error(`PM2 failed to ${what}: ${error.message ?? String(error)}`));
        else resolve(result);
      });
    } catch (error) {
      clearTimeout(timer);
      reject(new Error(`PM2 failed to ${what}: ${(error as Error).message}`));
    }
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Waits until the process is gone; SIGKILL after `graceMs`. Returns false when it had to be killed. */
export async function waitGone(pid: number, graceMs: number): Promise<boolean> {
  const deadline = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone in between
      }
      for (let waited = 0; waited < 5000 && alive(pid); waited += 50) await sleep(50);
      return false;
    }
    await sleep(100);
  }
  return true;
}

/**
 * Whether `pid` runs a Slotdeck agent (its command line names slotdeck-agent or the agent's package): a pid from an
 * old agent-state.json may belong to another process by now (in single-user mode even a slot's), which must not
 * get a signal. Where there is no /proc, a live pid is taken at its word.
 */
export function isAgentProcess(pid: number, procRoot = '/proc'): boolean {
  let argv: string[];
  try {
    argv = readFileSync(join(procRoot, String(pid), 'cmdline'), 'utf8')
      .split('\0')
      .filter(Boolean);
  } catch {
    return !existsSync(join(procRoot, 'self')) && alive(pid);
  }
  return argv.some((arg) => /(^|\/)slotdeck-agent(\.js)?$|\/remote-agent\/(bin|dist|src)\//.test(arg));
}

/** agent-state.json of an agent that still runs (its pid alive and still an agent), else null. */
export function liveAgentState(dataDir: string): AgentState | null {
  const state = readAgentState(dataDir);
  return state && isAgentProcess(state.pid) ? state : null;
}

/** An agent started by hand (not under PM2): SIGTERM through agent-state.json's pid, and wait until it is gone. */
export async function stopAgentByPid(dataDir: string, graceMs = 20_000): Promise<number | null> {
  const state = liveAgentState(dataDir);
  if (!state) return null;
  try {
    process.kill(state.pid, 'SIGTERM');
  } catch {
    return null;
  }
  await waitGone(state.pid, graceMs);
  return state.pid;
}

/** The running agent's health, or why there is none. */
export async function agentHealth(dataDir: string): Promise<{ health: Health | null; pid: number | null }> {
  const state = readAgentState(dataDir);
  if (!state) return { health: null, pid: null };
  try {
    const response = await fetch(`${state.adminUrl}/health`, { signal: AbortSignal.timeout(3000) });
    const parsed = Health.safeParse(await response.json());
    return { health: parsed.success ? parsed.data : null, pid: state.pid };
  } catch {
    return { health: null, pid: state.pid };
  }
}

/**
 * Waits until the agent answers /health with status ok and `version`. Gives up early when PM2 saw it exit more
 * than twice (a build that cannot start does not need the whole timeout to prove it).
 */
export async function waitHealthy(
  dataDir: string,
  version: string,
  timeoutMs: number,
  pm2: AgentUnderPm2,
): Promise<{ ok: true; pid: number } | { ok: false; why: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = 'it never answered /health';
  for (;;) {
    const { health, pid } = await agentHealth(dataDir);
    if (health && pid !== null) {
      if (health.version === version && health.status === 'ok') return { ok: true, pid };
      last =
        health.version !== version
          ? `/health answered version ${health.version}, not ${version}`
          : `/health says ${health.status} (database ${health.database.ok ? 'ok' : health.database.error}, PM2 ${
              health.supervisor.ok ? 'ok' : health.supervisor.error
            })`;
    }
    const described = await pm2.describe().catch(() => null);
    if (described && described.restarts >= 3) return { ok: false, why: `it exited ${described.restarts} times` };
    if (Date.now() > deadline) return { ok: false, why: `${last} within ${Math.round(timeoutMs / 1000)} s` };
    await sleep(200);
  }
}

/** The log's size now: `logTail(file, from)` later reads only what was written since. */
export function logSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The last lines written to `file` since byte `from` (at most 4 KiB of them). */
export function logTail(file: string, from: number, lines = 12): string {
  if (!existsSync(file)) return '';
  const size = logSize(file);
  const start = Math.max(from, size - 4096);
  if (size <= start) return '';
  const buffer = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, start);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8').split('\n').filter(Boolean).slice(-lines).join('\n');
}
