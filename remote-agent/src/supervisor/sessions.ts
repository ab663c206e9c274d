import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** A process as far as ending a slot's sessions needs it (proc(5) stat fields). */
interface ProcessState {
  pid: number;
  ppid: number;
  sid: number;
  /** Z: a zombie, dead already (its parent, often init, has yet to reap it). */
  zombie: boolean;
}

function readProcesses(): Map<number, ProcessState> {
  const table = new Map<number, ProcessState>();
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
      // The command is in parentheses and may hold anything: the fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), {
        pid: Number(entry),
        ppid: Number(fields[1]),
        sid: Number(fields[3]),
        zombie: fields[0] === 'Z',
      });
    } catch {
      // ended while we looked
    }
  }
  return table;
}

/** Processes whose command line has `argument` as one of its arguments (a slot's socket names its holder). */
export function processesWithArgument(argument: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(argument)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/**
 * The sessions a slot's processes run in: the holder's own (PM2 starts it as a session leader) and the terminal's
 * (the launcher leads it; the program and everything it starts are in it unless they call setsid).
 */
export function sessionsOf(roots: number[]): Set<number> {
  const table = readProcesses();
  const children = new Map<number, number[]>();
  for (const info of table.values()) {
    const list = children.get(info.ppid);
    if (list) list.push(info.pid);
    else children.set(info.ppid, [info.pid]);
  }
  const sessions = new Set<number>();
  const stack = roots.filter((pid) => table.has(pid));
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const info = table.get(pid);
    // Never the agent's own session (a holder started by hand from the agent's shell would share it), nor init's.
    if (info && info.sid > 1 && info.sid !== ownSession()) sessions.add(info.sid);
    stack.push(...(children.get(pid) ?? []));
  }
  return sessions;
}

let agentSession: number | null = null;
function ownSession(): number {
  agentSession ??= readProcesses().get(process.pid)?.sid ?? -1;
  return agentSession;
}

function liveMembers(sessions: Set<number>): number[] {
  const members: number[] = [];
  for (const info of readProcesses().values())
    if (sessions.has(info.sid) && !info.zombie && info.pid !== process.pid) members.push(info.pid);
  return members;
}

function signal(pids: number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // gone, or not ours to signal (an isolated slot's account: its helper ends those)
    }
  }
}

/**
 * Ends every process of these sessions: a hangup and SIGTERM first (what a closed terminal sends, so programs may
 * save), then SIGKILL after `graceMs` for whatever is left, again until none is (a process forked while we looked,
 * such as the clear_console a login shell's logout runs, is in the same session). Returns how many processes it
 * found.
 */
export async function endSessions(sessions: Set<number>, graceMs = 300): Promise<number> {
  if (sessions.size === 0) return 0;
  const first = liveMembers(sessions);
  if (first.length === 0) return 0;
  signal(first, 'SIGHUP');
  signal(first, 'SIGTERM');
  const seen = new Set(first);
  for (let waited = 0; waited < graceMs; waited += 20) {
    await sleep(20);
    const left = liveMembers(sessions);
    for (const pid of left) seen.add(pid);
    if (left.length === 0) return seen.size;
  }
  for (let round = 0; round < 20; round++) {
    const left = liveMembers(sessions);
    if (left.length === 0) break;
    for (const pid of left) seen.add(pid);
    signal(left, 'SIGKILL');
    await sleep(20);
  }
  return seen.size;
}

/** Processes with an argument under one of these folders (a slot's holder names its socket, its launcher its env file). */
export function processesNaming(prefixes: string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((arg) => prefixes.some((prefix) => arg.startsWith(prefix)))) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/**
 * The sessions of every slot of an agent, whatever PM2 knows (its daemon may be dead, the sessions then have ppid 1):
 * holders and launchers are found by the run and slot folders on their command lines. Taken before PM2 ends the
 * holders: once a launcher is gone, nothing left in its session names those folders.
 */
export function slotSessions(folders: { runDir: string; slotsDir: string }): Set<number> {
  return sessionsOf(processesNaming([`${folders.runDir}/`, `${folders.slotsDir}/`]));
}
