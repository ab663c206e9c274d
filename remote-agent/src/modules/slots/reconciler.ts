import type { Logger } from 'pino';
import type { AgentConfig } from '../../config.js';
import type { OpsEvents } from '../../ops/events.js';
import { endSessions, sessionsOf } from '../../supervisor/sessions.js';
import type { ProcessSupervisor, SupervisedProcess } from '../../supervisor/supervisor.js';
import type { KeyedMutex } from '../../util/keyed-mutex.js';
import { TreeSampler, type TreeUsage } from '../../util/procfs.js';
import type { TerminalBackend } from '../terminal/backend.js';
import { AGENT_LAUNCH, RESTARTING_SUFFIX, type SlotExits } from './exits.js';
import { processName, slotIdOfProcess } from './paths.js';
import { slotState } from './views.js';
import type { SlotRepository, SlotRow } from './repository.js';

/** What the reconciler asks of the slot service: starting and ending a slot's processes (under the slot's lock). */
export interface SlotRuntime {
  launch(row: SlotRow, why: string, kind?: 'started' | 'restarted'): Promise<void>;
  halt(row: SlotRow): Promise<void>;
  /** Registers a session that outlived its PM2 daemon with the current one, leaving its programs running. */
  adopt(row: SlotRow): Promise<void>;
  hasLiveSession(row: SlotRow): Promise<boolean>;
  /** Ends the slot's process and its sessions, leaving the terminal attached for the next start. */
  endProcess(row: SlotRow): Promise<void>;
  /** The pid the slot's process tree starts from (PM2's, or the adopted session's dtach). */
  holderPid(row: SlotRow, pid: number): number;
}

export interface SlotReconcilerDeps {
  config: AgentConfig;
  repo: SlotRepository;
  supervisor: ProcessSupervisor;
  backends: Record<SlotRow['terminal'], TerminalBackend>;
  logger: Logger;
  locks: KeyedMutex;
  exits: SlotExits;
  runtime: SlotRuntime;
  ops?: OpsEvents;
}

/**
 * Brings PM2 (the actual state) in line with the registry (the desired one): on start, on a timer and 50 ms after
 * PM2's process events. Missing processes are started, orphans removed, exits recorded, crash loops marked failed,
 * slots over their memory limit restarted.
 */
export class SlotReconciler {
  private readonly sampler = new TreeSampler();
  private reconciling: Promise<void> | null = null;
  private reconcileQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private eventTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  /** The state last reported for each slot (`slot.state` goes out when it changes). */
  private readonly reportedStates = new Map<string, string>();

  constructor(private readonly deps: SlotReconcilerDeps) {}

  /** Reconciles shortly after PM2 reports something of a slot (exits and restarts come at once), coalescing bursts. */
  watch(): void {
    this.unsubscribe = this.deps.supervisor.onProcessEvent((event) => {
      if (!slotIdOfProcess(event.name)) return;
      if (this.eventTimer || this.stopped) return;
      this.eventTimer = setTimeout(() => {
        this.eventTimer = null;
        void this.reconcile();
      }, 50);
    });
  }

  /** Reconciles every `reconcileIntervalMs` from now on. */
  startTimer(): void {
    this.timer = setInterval(() => void this.reconcile(), this.deps.config.reconcileIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.eventTimer) clearTimeout(this.eventTimer);
    this.unsubscribe?.();
    await this.reconciling?.catch(() => undefined);
  }

  /** Brings PM2 in line with the registry. Concurrent calls share one run plus at most one queued run. */
  reconcile(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.reconciling) {
      this.reconcileQueued = true;
      return this.reconciling;
    }
    this.reconciling = this.reconcileOnce()
      .catch((error: unknown) => this.deps.logger.error({ err: error }, 'reconcile failed; retrying on the next tick'))
      .finally(() => {
        this.reconciling = null;
        if (this.reconcileQueued) {
          this.reconcileQueued = false;
          void this.reconcile();
        }
      });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const processes = new Map<string, SupervisedProcess>();
    for (const proc of await this.deps.supervisor.list()) processes.set(proc.name, proc);
    const rows = this.deps.repo.list();
    const known = new Set(rows.map((row) => processName(row.id)));

    const roots = new Map<string, number>();
    for (const row of rows) {
      const pid = processes.get(processName(row.id))?.pid;
      if (pid) roots.set(row.id, this.deps.runtime.holderPid(row, pid));
    }
    const usage = this.sampler.sample(roots);

    for (const row of rows) {
      if (this.stopped) return;
      await this.deps.locks
        .run(row.id, () => this.reconcileSlot(row.id, usage.get(row.id)))
        .catch((error: unknown) => {
          this.deps.logger.error({ err: error, slotId: row.id }, 'could not reconcile slot');
        });
    }
    for (const id of [...this.reportedStates.keys()]) {
      if (rows.some((row) => row.id === id)) continue;
      this.reportedStates.delete(id);
    }
    for (const [name, proc] of processes) {
      if (!slotIdOfProcess(name) || known.has(name)) continue;
      // A slot-* process the registry does not know (its slot was deleted while the agent was away).
      this.deps.logger.warn({ process: name, pid: proc.pid }, 'stopping an orphan slot process');
      const sessions = proc.pid ? sessionsOf([proc.pid]) : new Set<number>();
      await this.deps.supervisor.remove(name).catch(() => undefined);
      await endSessions(sessions);
    }
  }

  private async reconcileSlot(id: string, use: TreeUsage | undefined): Promise<void> {
    // Read again under the lock: an API call may have changed the slot since the list was taken.
    const row = this.deps.repo.get(id);
    if (!row) return;
    const proc = await this.deps.supervisor.describe(processName(id));
    this.reportState(row, proc);
    const backend = this.deps.backends[row.terminal];
    const terminalOpen = backend.isOpen(id);

    const activity = backend.lastActivity(id);
    if (activity && (!row.lastActivityAt || Date.parse(row.lastActivityAt) < activity)) {
      this.deps.repo.update(id, { lastActivityAt: new Date(activity).toISOString() });
    }

    if (row.desiredState === 'stopped' || row.failedReason) {
      if (proc) await this.deps.runtime.halt(row);
      else if (terminalOpen) await backend.release(id);
      return;
    }
    if (!proc && (await this.deps.runtime.hasLiveSession(row))) {
      // PM2 does not know the slot but its session runs: the daemon died and this is a new one.
      await this.deps.runtime.adopt(row);
      return;
    }
    if (!proc || proc.status === 'stopped' || proc.status === 'unknown') {
      await this.deps.runtime.launch(row, proc ? AGENT_LAUNCH.pm2Had(proc.status) : AGENT_LAUNCH.notRunning);
      return;
    }
    if (proc.status === 'errored') {
      await this.fail(row, 'PM2 stopped restarting it (errored)');
      return;
    }

    // Exits count the moment PM2 reports them, not when it starts the program again after its back-off: a crash
    // loop shows (and fails) at once, without one more start past the limit.
    if (proc.exits < row.supervisorRestartsSeen) {
      // PM2 counts from 0 again after its daemon restarted.
      this.deps.repo.update(id, { supervisorRestartsSeen: proc.exits });
    } else if (proc.exits > row.supervisorRestartsSeen) {
      const fresh = proc.exits - row.supervisorRestartsSeen;
      const exit = await this.deps.exits.describe(row, fresh);
      this.deps.repo.update(id, { restarts: row.restarts + fresh, supervisorRestartsSeen: proc.exits });
      for (let i = 0; i < fresh; i++) this.deps.repo.addEvent(id, 'exited', `${exit}${RESTARTING_SUFFIX}`);
      this.deps.ops?.emit('slot.restarted', { slotId: id, name: row.name, restarts: row.restarts + fresh });
      this.deps.ops?.emit('recovery', {
        kind: 'slot-restarted',
        target: id,
        message: `slot ${row.name}: ${exit}; PM2 started it again`,
      });
      const { maxRestarts, windowSeconds } = this.deps.config.crashLoop;
      const recent = this.deps.exits.recent(id);
      if (recent > maxRestarts) {
        const output = this.recentOutput(row);
        await this.fail(
          row,
          `it ended ${recent} times within ${windowSeconds} s (the limit is ${maxRestarts}); last: ${exit}${output ? `; last output: "${output}"` : ''}. Fix the command or its environment, then start the slot again.`,
        );
        return;
      }
    }

    if (!terminalOpen) {
      // A slot that ran while no agent was attached (the agent restarted): take it over.
      backend.open(row, true);
    }

    if (row.memoryLimitMb && use && proc.status === 'online' && use.memoryBytes > row.memoryLimitMb * 1024 * 1024) {
      const usedMb = Math.round(use.memoryBytes / 1024 / 1024);
      this.deps.logger.warn(
        { slotId: id, usedMb, limitMb: row.memoryLimitMb },
        'slot over its memory limit; restarting',
      );
      this.deps.repo.addEvent(
        id,
        'memory-limit',
        `used ${usedMb} MB, over its ${row.memoryLimitMb} MB limit; restarted`,
      );
      this.deps.repo.update(id, { restarts: row.restarts + 1 });
      await this.deps.runtime.endProcess(row);
      await this.deps.runtime.launch(row, AGENT_LAUNCH.overMemory, 'restarted');
      this.deps.ops?.emit('slot.restarted', { slotId: id, name: row.name, restarts: row.restarts + 1 });
    }
  }

  /** Reports the slot's state (as the slot list shows it) when it differs from the last one reported. */
  private reportState(row: SlotRow, proc: SupervisedProcess | null): void {
    if (!this.deps.ops) return;
    const state = slotState(row, proc, this.deps.exits.crashLoop(row, proc, Date.now()) !== null);
    const previous = this.reportedStates.get(row.id) ?? null;
    if (previous === state) return;
    this.reportedStates.set(row.id, state);
    this.deps.ops.emit('slot.state', { slotId: row.id, name: row.name, state, previous });
  }

  private async fail(row: SlotRow, reason: string): Promise<void> {
    this.deps.logger.warn({ slotId: row.id, reason }, 'slot failed');
    this.deps.repo.update(row.id, {
      failedReason: reason,
      failedAt: new Date().toISOString(),
      desiredState: 'stopped',
    });
    this.deps.repo.addEvent(row.id, 'failed', reason);
    await this.deps.runtime.halt(row);
  }

  private recentOutput(row: SlotRow): string {
    return this.deps.backends[row.terminal].recentText(row.id).slice(-300);
  }
}
