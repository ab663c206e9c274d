import { readFileSync } from 'node:fs';
import type { Slot } from '../../contract/index.js';
import type { SupervisedProcess } from '../../supervisor/supervisor.js';
import { childrenOf, readProcessTable, TreeSampler, type TreeUsage } from '../../util/procfs.js';
import type { TerminalBackend } from '../terminal/backend.js';
import type { SlotExits } from './exits.js';
import type { MeteredSlots } from './metering.js';
import type { SlotPaths } from './paths.js';
import type { SlotRow } from './repository.js';

/** Slots as the API shows them: the registry's row, PM2's process, the process tree's use, the terminal's clients. */
export class SlotViews {
  private readonly sampler = new TreeSampler();

  constructor(
    private readonly deps: {
      backends: Record<SlotRow['terminal'], TerminalBackend>;
      paths: SlotPaths;
      exits: SlotExits;
      metered: MeteredSlots;
    },
  ) {}

  build(rows: SlotRow[], processes: Map<string, SupervisedProcess>): Slot[] {
    const roots = new Map<string, number>();
    for (const row of rows) {
      const pid = processes.get(row.id)?.pid;
      if (pid) roots.set(row.id, pid);
    }
    const table = readProcessTable();
    const usage = this.sampler.sample(roots, table);
    const children = childrenOf(table);
    const now = Date.now();
    return rows.map((row) => {
      const proc = processes.get(row.id) ?? null;
      const use: TreeUsage | undefined = usage.get(row.id);
      const activity = Math.max(
        row.lastActivityAt ? Date.parse(row.lastActivityAt) : 0,
        this.deps.backends[row.terminal].lastActivity(row.id) ?? 0,
      );
      const live = proc !== null && proc.status === 'online';
      const crashLoop = this.deps.exits.crashLoop(row, proc, now);
      return {
        id: row.id,
        name: row.name,
        command: row.command,
        argv: row.argv,
        env: row.env,
        workDir: row.workDir,
        homeDir: row.homeDir,
        memoryLimitMb: row.memoryLimitMb,
        terminal: row.terminal,
        desiredState: row.desiredState,
        state: slotState(row, proc, crashLoop !== null),
        failure: row.failedReason ? { reason: row.failedReason, at: row.failedAt ?? row.updatedAt } : null,
        crashLoop,
        pid: live ? proc.pid : null,
        programPid: live && proc.pid ? programPid(proc.pid, children, table) : null,
        uptimeMs: live && proc.startedAt ? Math.max(0, now - proc.startedAt) : null,
        restarts: row.restarts,
        cpuPercent: use?.cpuPercent ?? null,
        memoryBytes: use ? use.memoryBytes : null,
        viewers: this.deps.backends[row.terminal].viewers(row.id),
        size: { cols: row.cols, rows: row.rows },
        lastActivityAt: activity > 0 ? new Date(activity).toISOString() : null,
        ownerId: row.ownerId,
        account: this.deps.paths.account(row.id, row.ownerId),
        metered: row.meteredKeyId
          ? { keyId: row.meteredKeyId, keyPrefix: this.deps.metered.keyPrefix(row.meteredKeyId) ?? '' }
          : null,
        createdAt: row.createdAt,
        updatedAt: row.updatedAt,
      };
    });
  }
}

/** What the slot list shows as a slot's state (the reconciler reports changes of it as `slot.state` events). */
export function slotState(
  row: Pick<SlotRow, 'failedReason' | 'desiredState'>,
  proc: SupervisedProcess | null,
  crashLooping: boolean,
): Slot['state'] {
  if (row.failedReason) return 'failed';
  if (row.desiredState === 'stopped') return 'stopped';
  if (crashLooping) return 'restarting';
  return proc?.status === 'online' ? 'running' : 'starting';
}

/**
 * Commands the launcher runs itself before and after the slot's program (slot-launch.sh); while one of them is the
 * launcher's child, the program has not started yet or has ended.
 */
const LAUNCHER_HELPERS = new Set(['sleep', 'stty', 'chmod', 'mkdir', 'cp', 'date']);

/**
 * The slot's own program: the child of the launcher, which is the holder's child. A child that is one of the
 * launcher's helpers, or a fork of the launcher itself (a `$(…)` subshell: the same command line as the launcher),
 * is not the program: reporting it would name a pid that is gone a moment later.
 */
export function programPid(
  holder: number,
  children: Map<number, number[]>,
  table: Map<number, { command: string }>,
  commandLine: (pid: number) => string | null = readCommandLine,
): number | null {
  // On an isolated host PM2's process is sudo (running the helper), and dtach is its child.
  const dtach = table.get(holder)?.command === 'sudo' ? (children.get(holder)?.[0] ?? holder) : holder;
  for (const launcher of children.get(dtach) ?? []) {
    const launcherCommand = table.get(launcher)?.command;
    for (const child of children.get(launcher) ?? []) {
      const command = table.get(child)?.command;
      if (command === undefined || LAUNCHER_HELPERS.has(command)) continue;
      if (command === launcherCommand) {
        const own = commandLine(launcher);
        if (own === null || own === commandLine(child)) continue;
      }
      return child;
    }
  }
  return null;
}

function readCommandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return null;
  }
}
