import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandLineOf, readProcessTable } from '../../../remote-agent/src/util/procfs.js';

/** Processes still tied to a folder: a PM2 daemon under it (by pid file) and anything whose command line names it. */
export function processesOf(dir: string): number[] {
  const pids = new Set<number>();
  for (const pidFile of [join(dir, 'pm2', 'pm2.pid'), join(dir, 'agents', 'local', 'pm2', 'pm2.pid')]) {
    try {
      pids.add(Number(readFileSync(pidFile, 'utf8').trim()));
    } catch {
      // no daemon there
    }
  }
  for (const pid of processesNaming(dir)) pids.add(pid);
  return [...pids].filter((pid) => pid > 0);
}

/** Processes (this one aside) with `text` in one of their command line's arguments. */
export function processesNaming(text: string): number[] {
  return [...readProcessTable().keys()].filter(
    (pid) => pid !== process.pid && (commandLineOf(pid)?.some((arg) => arg.includes(text)) ?? false),
  );
}

export function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Children of a process (its direct children, from /proc). */
export function childrenOf(pid: number): number[] {
  return [...readProcessTable().values()].filter((info) => info.ppid === pid).map((info) => info.pid);
}
