import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SupervisorError,
  SupervisorUnavailableError,
  type DaemonChange,
  type Disposer,
  type ProcessEvent,
  type ProcessSpec,
  type ProcessSupervisor,
  type SupervisedProcess,
  type SupervisedStatus,
} from './supervisor.js';
import { commandLineOf, isRunning } from '../util/procfs.js';

/** The parts of PM2's programmatic API we use (its bundled types lack `custom`). */
interface Pm2Description {
  name?: string;
  pid?: number;
  pm2_env?: { status?: string; pm_uptime?: number; restart_time?: number };
}
interface Pm2Bus {
  on(event: 'process:event', listener: (packet: { event?: string; process?: { name?: string } }) => void): void;
  off?(event: string, listener: (...args: unknown[]) => void): void;
}
type Callback<T = unknown> = (error: Error | null, result: T) => void;
interface Pm2Api {
  connect(callback: Callback<void>): void;
  disconnect(callback?: Callback<void>): void;
  list(callback: Callback<Pm2Description[]>): void;
  describe(name: string, callback: Callback<Pm2Description[]>): void;
  start(options: Record<string, unknown>, callback: Callback<unknown>): void;
  delete(name: string, callback: Callback<unknown>): void;
  launchBus(callback: Callback<Pm2Bus>): void;
}
/** The axon sockets under PM2's client: they retry forever when the daemon is gone, which is how we notice. */
interface AxonSocket {
  on(event: 'reconnect attempt', listener: () => void): void;
  close(): void;
}
interface Pm2Internals {
  Client?: { client_sock?: AxonSocket; sub_sock?: AxonSocket };
}
interface Pm2Module {
  custom: new (options: { pm2_home: string; daemon_mode: boolean }) => Pm2Api;
}

const CALL_TIMEOUT_MS = 20_000;
/** How often the daemon's pid is checked, besides its sockets closing (either one notices a kill -9). */
const WATCHDOG_MS = 1000;
/** Waits between attempts to start a new daemon. */
const RECONNECT_DELAYS_MS = [0, 250, 500, 1000, 2000];

function toStatus(raw: string | undefined): SupervisedStatus {
  switch (raw) {
    case 'online':
    case 'launching':
    case 'stopping':
    case 'stopped':
    case 'errored':
      return raw;
    case 'waiting restart':
      return 'launching';
    default:
      return 'unknown';
  }
}

function toProcess(description: Pm2Description): SupervisedProcess {
  const env = description.pm2_env ?? {};
  const status = toStatus(env.status);
  return {
    name: description.name ?? '',
    pid: description.pid && description.pid > 0 ? description.pid : null,
    status,
    startedAt: status === 'online' && env.pm_uptime ? env.pm_uptime : null,
    restartCount: env.restart_time ?? 0,
    exits: (env.restart_time ?? 0) + (env.status === 'waiting restart' ? 1 : 0),
  };
}

/**
 * PM2 through its programmatic API, with a PM2_HOME of the agent's own. PM2's module keeps its paths in shared
 * state, so one process drives one PM2 home; the daemon outlives the agent, which is what keeps slots running
 * across agent restarts.
 */
export class Pm2Supervisor implements ProcessSupervisor {
  private api: Pm2Api | null = null;
  private connecting: Promise<void> | null = null;
  private bus: Pm2Bus | null = null;
  private readonly listeners = new Set<(event: ProcessEvent) => void>();
  private readonly daemonListeners = new Set<(change: DaemonChange) => void>();
  /** Calls waiting for an answer: failed at once when the daemon dies. */
  private readonly pending = new Set<(error: Error) => void>();
  private connectedPid: number | null = null;
  /** Set while the daemon is gone and a new one is being connected. */
  private lostAt: number | null = null;
  private recovering: Promise<void> | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  /** disconnect() or shutdownDaemon(): a daemon that goes away then is not replaced. */
  private closing = false;

  constructor(private readonly pm2Home: string) {}

  connect(): Promise<void> {
    this.closing = false;
    // PM2 locks up when connect is called twice before a disconnect: share one attempt.
    this.connecting ??= this.doConnect().catch((error: unknown) => {
      this.connecting = null;
      throw error;
    });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    // pm2 builds a default instance in ~/.pm2 as it loads; point it at our home before that happens.
    process.env.PM2_HOME = this.pm2Home;
    // The daemon inherits this environment; a title of someone else's choosing would hide it from daemonPid().
    delete process.env.PM2_DAEMON_TITLE;
    const require = createRequire(import.meta.url);
    const pm2 = require('pm2') as Pm2Module;
    const api = new pm2.custom({ pm2_home: this.pm2Home, daemon_mode: true });
    // (PM2's connect starts a daemon when none answers.)
    await this.call<void>('connect to the PM2 daemon', (cb) => api.connect(cb), api);
    const bus = await this.call<Pm2Bus>('subscribe to PM2 events', (cb) => api.launchBus(cb), api);
    this.api = api;
    this.bus = bus;
    this.connectedPid = this.daemonPid();
    bus.on('process:event', (packet) => {
      const name = packet.process?.name;
      if (!name || !packet.event) return;
      for (const listener of this.listeners) listener({ name, event: packet.event });
    });
    // A daemon killed with SIGKILL closes its sockets; PM2's client then retries them forever (and every call waited
    // 20 s and failed, forever). The first retry tells us it is gone; the pid check covers a socket that never says.
    const internals = (api as unknown as Pm2Internals).Client;
    for (const socket of [internals?.client_sock, internals?.sub_sock])
      socket?.on('reconnect attempt', () => {
        if (this.api === api) this.daemonLost('its connection closed');
      });
    this.watchdog ??= setInterval(() => {
      if (this.api && !this.closing && this.lostAt === null && this.daemonPid() === null)
        this.daemonLost('its process is gone');
    }, WATCHDOG_MS);
    this.watchdog.unref();
  }

  unavailable(): string | null {
    if (this.lostAt === null) return null;
    const seconds = Math.round((Date.now() - this.lostAt) / 1000);
    return `The PM2 daemon that supervises the slots stopped ${seconds} s ago and the agent is restarting it; running slots keep running and are taken back once it is up. Retry in a few seconds.`;
  }

  onDaemonChange(listener: (change: DaemonChange) => void): Disposer {
    this.daemonListeners.add(listener);
    return () => this.daemonListeners.delete(listener);
  }

  private notify(change: DaemonChange): void {
    for (const listener of this.daemonListeners) listener(change);
  }

  /** The daemon went away: fail what waits on it, drop its client and connect to (or start) a new one. */
  private daemonLost(why: string): void {
    if (this.closing || this.lostAt !== null) return;
    const api = this.api;
    this.lostAt = Date.now();
    this.api = null;
    this.bus = null;
    this.connecting = null;
    const message = `the PM2 daemon stopped (${why})`;
    for (const fail of [...this.pending]) fail(new SupervisorUnavailableError(this.unavailable() ?? message));
    this.pending.clear();
    // The old client would retry its sockets forever: close them (a disconnect refuses a socket that is not connected).
    const internals = (api as unknown as Pm2Internals | null)?.Client;
    for (const socket of [internals?.client_sock, internals?.sub_sock]) {
      try {
        socket?.close();
      } catch {
        // closed already
      }
    }
    this.notify({ kind: 'lost', pid: this.connectedPid, message });
    this.recovering ??= this.recover().finally(() => (this.recovering = null));
  }

  private async recover(): Promise<void> {
    const previousPid = this.connectedPid;
    for (let attempt = 0; !this.closing; attempt++) {
      await sleep(RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)]);
      if (this.closing) return;
      try {
        await this.connect();
      } catch {
        continue;
      }
      const downMs = Date.now() - (this.lostAt ?? Date.now());
      this.lostAt = null;
      this.notify({ kind: 'restored', previousPid, pid: this.connectedPid, downMs });
      return;
    }
  }

  private call<T>(what: string, run: (callback: Callback<T>) => void, api?: Pm2Api): Promise<T> {
    const unavailable = this.unavailable();
    if (!api && unavailable) return Promise.reject(new SupervisorUnavailableError(unavailable));
    if (!api && !this.api) return Promise.reject(new SupervisorError(`cannot ${what}: not connected to PM2`));
    return new Promise<T>((resolve, reject) => {
      const fail = (error: Error): void => {
        clearTimeout(timer);
        this.pending.delete(fail);
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new SupervisorError(`PM2 did not answer within ${CALL_TIMEOUT_MS / 1000}s while trying to ${what}`)),
        CALL_TIMEOUT_MS,
      );
      // Calls on the connection being made are not failed by the daemon's loss: the reconnect owns them.
      if (!api) this.pending.add(fail);
      try {
        run((error, result) => {
          clearTimeout(timer);
          this.pending.delete(fail);
          if (error)
            reject(new SupervisorError(`PM2 failed to ${what}: ${error.message ?? String(error)}`, { cause: error }));
          else resolve(result);
        });
      } catch (error) {
        fail(new SupervisorError(`PM2 failed to ${what}: ${(error as Error).message}`, { cause: error }));
      }
    });
  }

  private get connected(): Pm2Api {
    const unavailable = this.unavailable();
    if (unavailable) throw new SupervisorUnavailableError(unavailable);
    if (!this.api) throw new SupervisorError('not connected to PM2');
    return this.api;
  }

  async list(): Promise<SupervisedProcess[]> {
    const api = this.connected;
    const list = await this.call<Pm2Description[]>('list processes', (cb) => api.list(cb));
    return list.map(toProcess);
  }

  async describe(name: string): Promise<SupervisedProcess | null> {
    const api = this.connected;
    const found = await this.call<Pm2Description[]>(`describe ${name}`, (cb) => api.describe(name, cb));
    return found[0] ? toProcess(found[0]) : null;
  }

  async start(spec: ProcessSpec): Promise<void> {
    const api = this.connected;
    await this.call(`start ${spec.name}`, (cb) =>
      api.start(
        {
          name: spec.name,
          script: spec.script,
          interpreter: 'none',
          args: spec.args,
          cwd: spec.cwd,
          env: spec.env,
          autorestart: true,
          // Crash loops are judged by the agent (it marks the slot failed); PM2 only backs off between tries.
          exp_backoff_restart_delay: spec.restartDelayMs,
          max_restarts: 100_000,
          min_uptime: 1000,
          out_file: spec.outFile,
          error_file: spec.errorFile,
          merge_logs: true,
          time: true,
          kill_timeout: 3000,
          // PM2 signals the holder only (dtach, which ends on it and hangs up the terminal); the agent then ends
          // what is left of the slot's sessions itself (supervisor/sessions.ts). PM2's own tree kill walked the tree
          // with one `ps` per level first (most of a slot's 1.4 s delete) and missed processes forked meanwhile,
          // such as a login shell's clear_console, which stayed behind with ppid 1.
          treekill: spec.treeKill ?? false,
          vizion: false,
          pmx: false,
          automation: false,
        },
        cb,
      ),
    );
  }

  async remove(name: string): Promise<void> {
    const api = this.connected;
    try {
      await this.call(`delete ${name}`, (cb) => api.delete(name, cb));
    } catch (error) {
      // Already gone is what we wanted.
      if (/not found/i.test((error as Error).message)) return;
      throw error;
    }
  }

  onProcessEvent(listener: (event: ProcessEvent) => void): Disposer {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The running daemon of this PM2 home, from its pid file. A killed daemon not yet reaped, or a pid the system has
   * given to another program since, is none: PM2 titles its daemon "PM2 vX: God Daemon (<home>)".
   */
  daemonPid(): number | null {
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(join(this.pm2Home, 'pm2.pid'), 'utf8').trim(), 10);
    } catch {
      return null;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return null;
    const title = commandLineOf(pid)?.join(' ') ?? '';
    return title.includes('God Daemon') ? pid : null;
  }

  async disconnect(): Promise<void> {
    this.closing = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    const api = this.api;
    this.api = null;
    this.connecting = null;
    this.bus = null;
    this.listeners.clear();
    this.daemonListeners.clear();
    if (!api) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000);
      api.disconnect(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async shutdownDaemon(): Promise<void> {
    // killDaemon leaves the client reconnecting forever; delete everything, disconnect, then end the daemon by pid.
    const pid = this.daemonPid();
    this.closing = true;
    if (this.api) {
      await this.remove('all').catch(() => undefined);
      await this.disconnect();
    }
    if (pid === null) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    for (let waited = 0; waited < 5000; waited += 50) {
      if (!isRunning(pid)) return;
      await sleep(50);
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone in between
    }
  }
}
