import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Slot } from '../../contract/index.js';
import type { AgentConfig } from '../../config.js';
import type { SupervisedProcess } from '../../supervisor/supervisor.js';
import { readSmallFile } from './launch.js';
import type { SlotPaths } from './paths.js';
import type { SlotRepository, SlotRow } from './repository.js';

/** Appended to an `exited` event's message; the slot view shows the exit without it. */
export const RESTARTING_SUFFIX = '; restarting it';
/**
 * Why the agent itself started a slot's program again (not the admin): these launches leave the crash-loop count
 * running, so that a program that both crashes and outgrows its memory limit still ends up failed.
 */
export const AGENT_LAUNCH = {
  notRunning: 'started: it was not running',
  pm2Had: (status: string): string => `started again: PM2 had it ${status}`,
  overMemory: 'restarted after exceeding its memory limit',
} as const;

/**
 * After this long up since its last exit, a program counts as running again: a shell the admin left with `exit` is
 * not shown as restarting for the whole crash-loop window, while one that ends every few seconds never shows running.
 */
const STEADY_UPTIME_MS = 10_000;

/**
 * How slots' programs ended: the launcher's exit records turned into words, and the crash-loop count the reconciler
 * judges and the slot list shows ("restarting 3/5").
 */
export class SlotExits {
  /** How many lines of each slot's exit record have been attributed to PM2 restarts already. */
  private readonly consumed = new Map<string, number>();

  constructor(private readonly deps: { repo: SlotRepository; paths: SlotPaths; crashLoop: AgentConfig['crashLoop'] }) {}

  /**
   * Exits within the crash-loop window since the admin last started the slot (creating, starting, restarting or
   * editing it): starting a failed slot again gives it the whole allowance again. The agent's own restarts (over
   * the memory limit, found not running) do not.
   */
  recent(id: string): number {
    const windowStart = Date.now() - this.deps.crashLoop.windowSeconds * 1000;
    const lastByAdmin = this.deps.repo.latestLaunchExcept(
      id,
      [AGENT_LAUNCH.notRunning, AGENT_LAUNCH.overMemory],
      AGENT_LAUNCH.pm2Had(''),
    );
    const launched = lastByAdmin ? Date.parse(lastByAdmin.at) : 0;
    return this.deps.repo.countEventsSince(id, 'exited', new Date(Math.max(windowStart, launched)).toISOString());
  }

  /** What the slot list shows while a slot's program keeps ending, or null while it runs steadily. */
  crashLoop(row: SlotRow, proc: SupervisedProcess | null, now: number): NonNullable<Slot['crashLoop']> | null {
    if (row.desiredState !== 'running' || row.failedReason) return null;
    const exits = this.recent(row.id);
    if (exits === 0) return null;
    const { maxRestarts, windowSeconds } = this.deps.crashLoop;
    // A program that has stayed up for a while after its last exit runs again, whatever the window still counts.
    const steadyMs = Math.min(STEADY_UPTIME_MS, windowSeconds * 1000);
    if (proc?.status === 'online' && proc.startedAt && now - proc.startedAt >= steadyMs) return null;
    const last = this.deps.repo.latestEvent(row.id, 'exited')?.message ?? '';
    return {
      exits,
      limit: maxRestarts,
      windowSeconds,
      lastExit: last.endsWith(RESTARTING_SUFFIX) ? last.slice(0, -RESTARTING_SUFFIX.length) : last,
    };
  }

  /**
   * What ended the slot's last `restarts` sessions, from the launcher's exit record (a line per program exit). Lines
   * are matched to PM2's restarts by count, not by time: a program that exits at once can write its next line
   * before the agent has looked at the previous restart, and that line belongs to the next restart.
   */
  async describe(row: SlotRow, restarts: number): Promise<string> {
    const file = this.deps.paths.exitFile(row.id);
    let statuses = readExitStatuses(file);
    let seen = this.consumed.get(row.id) ?? Math.max(0, statuses.length - restarts);
    if (seen > statuses.length) seen = Math.max(0, statuses.length - restarts);
    // PM2 may report the restart a moment before the launcher's line is on disk: give it a little time before
    // concluding that the holder was killed.
    for (let wait = 0; statuses.length <= seen && wait < 10; wait++) {
      await sleep(30);
      statuses = readExitStatuses(file);
    }
    const used = Math.min(statuses.length - seen, restarts);
    this.consumed.set(row.id, seen + used);
    if (used > 0) return describeExitStatus(row.argv[0]!, statuses[seen + used - 1]!);
    return 'the session ended without its program exiting (its holder was killed)';
  }

  /** A new session starts a new exit record. */
  forget(slotId: string): void {
    this.consumed.delete(slotId);
  }
}

/** The exit statuses the launcher recorded, oldest first (a line `<status> <epoch s>` per program exit). */
function readExitStatuses(file: string): number[] {
  const text = readSmallFile(file);
  if (text === null) return [];
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((status) => Number.isInteger(status));
}

const SIGNAL_NAMES = new Map(Object.entries(osConstants.signals).map(([name, number]) => [number, name]));

/** How a program ended, in words: a shell's 127 means the command was not found, 128+n a signal. */
export function describeExitStatus(program: string, status: number): string {
  if (status === 127) return `${program} exited with code 127 (command not found)`;
  if (status === 126) return `${program} exited with code 126 (found but could not be run: not executable?)`;
  const signal = status > 128 ? SIGNAL_NAMES.get(status - 128) : undefined;
  if (signal) return `${program} was ended by ${signal} (exit status ${status})`;
  return `${program} exited with code ${status}`;
}
