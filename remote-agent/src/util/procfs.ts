import { readFileSync, readdirSync } from 'node:fs';

/** Linux reports CPU time in clock ticks of USER_HZ, which is 100 on every architecture we run on. */
const TICKS_PER_SECOND = 100;

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Session id: a terminal's, or the one a daemon made for itself with setsid. */
  sid: number;
  /** Z: dead already; its parent (often init) has yet to reap it. */
  zombie: boolean;
  command: string;
  /** utime + stime, in ticks. */
  cpuTicks: number;
}

/** Every process's parent, session, state and CPU time, from /proc/<pid>/stat. */
export function readProcessTable(): Map<number, ProcessInfo> {
  const table = new Map<number, ProcessInfo>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return table;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command sits in parentheses and may itself contain spaces or parentheses: split at the last ')'.
      const close = stat.lastIndexOf(')');
      const command = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // fields[0] is field 3 (state) of proc(5).
      table.set(Number(entry), {
        pid: Number(entry),
        ppid: Number(fields[1]),
        sid: Number(fields[3]),
        zombie: fields[0] === 'Z',
        command,
        cpuTicks: Number(fields[11]) + Number(fields[12]),
      });
    } catch {
      // The process ended while we looked.
    }
  }
  return table;
}

export function childrenOf(table: Map<number, ProcessInfo>): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const info of table.values()) {
    const list = children.get(info.ppid);
    if (list) list.push(info.pid);
    else children.set(info.ppid, [info.pid]);
  }
  return children;
}

/** `root` and everything below it. */
export function processTree(root: number, children: Map<number, number[]>): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const child of children.get(pid) ?? []) stack.push(child);
  }
  return out;
}

/** Resident memory of a process in bytes (VmRSS), 0 when it is gone. */
export function residentBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A process's arguments (proc(5) cmdline), or null once it is gone. */
export function commandLineOf(pid: number): string[] | null {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (args.at(-1) === '') args.pop();
    return args;
  } catch {
    return null;
  }
}

/**
 * Alive and not a zombie: `kill(pid, 0)` also succeeds for a process that was killed and not yet reaped, which under
 * load (or in a container whose init reaps slowly) can last long enough to be taken for a running one.
 */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

export interface TreeUsage {
  cpuPercent: number | null;
  memoryBytes: number;
  pids: number[];
}

/** CPU and memory of process trees, CPU as the share of one core since the previous sample of the same key. */
export class TreeSampler {
  private readonly previous = new Map<string, { ticks: number; at: number }>();

  sample(roots: Map<string, number>, table = readProcessTable()): Map<string, TreeUsage> {
    const children = childrenOf(table);
    const now = Date.now();
    const usage = new Map<string, TreeUsage>();
    for (const [key, root] of roots) {
      if (!table.has(root)) continue;
      const pids = processTree(root, children);
      const ticks = pids.reduce((sum, pid) => sum + (table.get(pid)?.cpuTicks ?? 0), 0);
      const memoryBytes = pids.reduce((sum, pid) => sum + residentBytes(pid), 0);
      const before = this.previous.get(key);
      let cpuPercent: number | null = null;
      if (before && now - before.at >= 200 && ticks >= before.ticks) {
        cpuPercent = Math.round(((ticks - before.ticks) / TICKS_PER_SECOND / ((now - before.at) / 1000)) * 1000) / 10;
      }
      if (!before || now - before.at >= 200) this.previous.set(key, { ticks, at: now });
      usage.set(key, { cpuPercent, memoryBytes, pids });
    }
    for (const key of this.previous.keys()) if (!roots.has(key)) this.previous.delete(key);
    return usage;
  }
}
