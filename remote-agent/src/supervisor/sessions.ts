import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandLineOf, readProcessTable } from '../util/procfs.js';

/** The real uid of a process (proc(5) status), or null once it is gone. */
export function uidOf(pid: number): number | null {
  try {
    const line = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line ? Number(line[1]) : null;
  } catch {
    return null;
  }
}

/** What a slot's own process is for, read from its exact command line. */
export type SlotProcessRole = 'dtach' | 'holder' | 'launcher';

/**
 * Recognises a slot's dtach (`dtach -N SOCKET -r none /bin/sh LAUNCHER ENV EXIT`), its holder (`/bin/sh
 * slot-holder.sh DTACH SOCKET LAUNCHER ENV EXIT`, also while it stands in for an adopted session) and its launcher
 * (`/bin/sh slot-launch.sh ENV EXIT`) by the whole shape of their command lines: a path somewhere among another
 * program's arguments (an admin's `tail -f` on a slot's file) is no slot process. Returns the socket (dtach,
 * holder) or environment file (launcher) it names.
 */
export function slotProcessOf(args: string[]): { role: SlotProcessRole; names: string } | null {
  const script = (path: string | undefined, name: string): boolean => path?.endsWith(`/${name}`) ?? false;
  if (
    args.length === 9 &&
    (args[0] === 'dtach' || script(args[0], 'dtach')) &&
    args[1] === '-N' &&
    args[3] === '-r' &&
    args[4] === 'none' &&
    args[5] === '/bin/sh' &&
    script(args[6], 'slot-launch.sh')
  )
    return { role: 'dtach', names: args[2]! };
  if (
    args.length === 7 &&
    args[0] === '/bin/sh' &&
    script(args[1], 'slot-holder.sh') &&
    script(args[4], 'slot-launch.sh')
  )
    return { role: 'holder', names: args[3]! };
  if (args.length === 4 && args[0] === '/bin/sh' && script(args[1], 'slot-launch.sh'))
    return { role: 'launcher', names: args[2]! };
  return null;
}

/**
 * The slot processes (dtach, holder, launcher) that serve `socket` and run as `uid` (the agent's, or the slot's
 * account on an isolated host): any account can start a process naming another slot's socket, and it must be
 * neither taken for that slot's holder nor signalled in its name. With `envFile`, launchers naming it count too.
 */
export function slotProcesses(
  socket: string,
  uid: number,
  envFile?: string,
): Array<{ pid: number; role: SlotProcessRole }> {
  const found: Array<{ pid: number; role: SlotProcessRole }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const pid = Number(entry);
    const args = commandLineOf(pid);
    const shape = args && slotProcessOf(args);
    if (!shape) continue;
    const names = shape.role === 'launcher' ? shape.names === envFile : shape.names === socket;
    if (names && uidOf(pid) === uid) found.push({ pid, role: shape.role });
  }
  return found;
}

/**
 * The sessions a slot's processes run in: the holder's own (PM2 starts it as a session leader) and the terminal's
 * (the launcher leads it; the program and everything it starts are in it unless they call setsid).
 */
export function sessionsOf(roots: number[]): Set<number> {
  const table = readProcessTable();
  const children = new Map<number, number[]>();
  for (const info of table.values()) {
    const list = children.get(info.ppid);
    if (list) list.push(info.pid);
    else children.set(info.ppid, [info.pid]);
  }
  const tree = new Set<number>();
  const stack = roots.filter((pid) => table.has(pid));
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (tree.has(pid)) continue;
    tree.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  const sessions = new Set<number>();
  for (const pid of tree) {
    const sid = table.get(pid)!.sid;
    // Only sessions a process of the tree leads: a holder started by hand from someone's shell shares that shell's
    // session, which is not the slot's to end. Never the agent's own session, nor init's.
    if (sid > 1 && tree.has(sid) && sid !== ownSession()) sessions.add(sid);
  }
  return sessions;
}

let agentSession: number | null = null;
function ownSession(): number {
  agentSession ??= readProcessTable().get(process.pid)?.sid ?? -1;
  return agentSession;
}

function liveMembers(sessions: Set<number>): number[] {
  const members: number[] = [];
  for (const info of readProcessTable().values())
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

/** Where an agent's slots keep what their holders and launchers name on their command lines. */
export interface SlotFolders {
  /** Sockets of the agent's own slots: `RUN/ID.sock`. */
  runDir: string;
  /** Environment files of the agent's own slots: `SLOTS/ID/env.sh`. */
  slotsDir: string;
  /** The uid the agent's own slots run as. */
  agentUid: number;
  /** On an isolated host, the helper's run folder: `RUN/ACCOUNT/s/ID.sock` and `RUN/ACCOUNT/ID.env`. */
  isolatedRun?: string | null;
}

/**
 * The sessions of every slot of an agent, whatever PM2 knows (its daemon may be dead, the sessions then have ppid 1):
 * the slots' dtach, holders and launchers, recognised by the exact shape of their command lines, naming a socket or
 * environment file of the agent's folders, and running as the agent or (isolated) as the account the path names.
 * Only sessions such a process or one of its descendants leads are taken: an admin's shell with a `tail -f` on a
 * slot's file is left alone. Taken before PM2 ends the holders: once a launcher is gone, nothing of its session is
 * recognisable.
 */
export function slotSessions(folders: SlotFolders): Set<number> {
  const escape = (path: string): string => path.replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const id = '[a-z0-9]{10}';
  const account = '([a-z_][a-z0-9_-]*)';
  const own = new RegExp(`^(?:${escape(folders.runDir)}/${id}\\.sock|${escape(folders.slotsDir)}/${id}/env\\.sh)$`);
  const isolated = folders.isolatedRun
    ? new RegExp(`^${escape(folders.isolatedRun)}/${account}/(?:s/${id}\\.sock|${id}\\.env)$`)
    : null;
  const accountUids = new Map<string, number | null>();
  const roots: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const pid = Number(entry);
    const args = commandLineOf(pid);
    const shape = args && slotProcessOf(args);
    if (!shape) continue;
    let expected: number | null = null;
    if (own.test(shape.names)) expected = folders.agentUid;
    else {
      const name = isolated?.exec(shape.names)?.[1];
      if (name !== undefined) {
        if (!accountUids.has(name)) accountUids.set(name, accountUid(name));
        expected = accountUids.get(name)!;
      }
    }
    if (expected !== null && uidOf(pid) === expected) roots.push(pid);
  }
  return sessionsOf(roots);
}

function passwd(): string[][] {
  try {
    return readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((line) => line.split(':'));
  } catch {
    return [];
  }
}

/** An account's uid from the password database. */
export function accountUid(account: string): number | null {
  const fields = passwd().find((entry) => entry[0] === account);
  return fields ? Number(fields[2]) : null;
}

/** The name of the account with this uid. */
export function accountName(uid: number): string | null {
  return passwd().find((entry) => entry[2] === String(uid))?.[0] ?? null;
}
