import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { isRunning, readProcessTable } from '../../../remote-agent/src/util/procfs.js';
import { pm2Processes, runAgentCommand, type AgentProcess } from './agent.js';
import { processesOf } from './processes.js';
import { until } from './until.js';

/**
 * Faults of the agent's PM2 for R3 (tests/integration/agent/pm2-recovery.test.ts) and the reliability bench: kill -9
 * of the daemon alone, and a "power cut" of the agent and its PM2 at once, with what to measure after each.
 */

/**
 * The agent's PM2 daemon, from its pid file (null when none runs). A daemon killed a moment ago can linger as a zombie
 * until init reaps it; `kill(pid, 0)` still reaches it, so it is not counted (the agent's own check is the same).
 */
export function daemonPid(agent: AgentProcess): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(agent.pm2Home, 'pm2.pid'), 'utf8').trim());
  } catch {
    return null;
  }
  return pid > 0 && isRunning(pid) ? pid : null;
}

/** kill -9 of the PM2 daemon only: its slots' sessions are orphaned (ppid 1) and keep running. */
export function killDaemon(agent: AgentProcess): number {
  const pid = daemonPid(agent);
  if (pid === null) throw new Error('the agent has no PM2 daemon running');
  process.kill(pid, 'SIGKILL');
  return pid;
}

/** `roots` and every process below them. */
export function descendants(roots: number[]): Set<number> {
  const table = [...readProcessTable().values()].filter((info) => !info.zombie);
  const found = new Set(roots.filter((pid) => table.some((p) => p.pid === pid)));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of table)
      if (found.has(p.ppid) && !found.has(p.pid)) {
        found.add(p.pid);
        grew = true;
      }
  }
  return found;
}

/**
 * A power cut short of a reboot: every process of the agent and its PM2 is stopped (SIGSTOP, so none of them
 * reacts to another's death) and then killed with SIGKILL. With `sessions: 'kill'` that includes the slots'
 * sessions (everything the daemon started, wherever it was reparented); with 'keep' only the agent and the daemon
 * die, as when the OOM killer takes both. Files (/run sockets, pid files, journals) stay as they were.
 */
export async function powerCut(agent: AgentProcess, sessions: 'kill' | 'keep'): Promise<number[]> {
  const daemon = daemonPid(agent);
  const roots = [agent.pid, daemon].filter((pid): pid is number => pid !== null);
  const victims =
    sessions === 'kill' ? new Set([...descendants(roots), ...descendants(processesOf(agent.dataDir))]) : new Set(roots);
  victims.delete(process.pid);
  for (const pid of victims) signal(pid, 'SIGSTOP');
  for (const pid of victims) signal(pid, 'SIGKILL');
  await agent.kill();
  return [...victims];
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone
  }
}

/** Each slot's program pid now (the program a user's shell runs). */
export async function programPids(agent: AgentProcess, ids: string[]): Promise<Map<string, number | null>> {
  const pids = new Map<string, number | null>();
  for (const id of ids) pids.set(id, (await agent.slot(id)).programPid);
  return pids;
}

/**
 * Waits until the agent lists every slot as running with a program, and returns the seconds from `since` (the
 * fault) and the list.
 */
export async function waitForRecovery(
  agent: AgentProcess,
  ids: string[],
  since: number,
  timeoutMs = 45_000,
): Promise<{ seconds: number; slots: Slot[] }> {
  const slots = await until(
    'every slot to run again',
    async () => {
      const answer = await agent.request<{ slots: Slot[] }>('GET', '/api/v1/slots').catch(() => null);
      return answer?.status === 200 ? answer.body.slots : null;
    },
    (list) =>
      list !== null &&
      ids.every((id) => list.some((s) => s.id === id && s.state === 'running' && s.programPid !== null)),
    { timeoutMs, everyMs: 100 },
  );
  return { seconds: (Date.now() - since) / 1000, slots: slots! };
}

export interface SlotAudit {
  /** Slot ids the registry lists. */
  registry: string[];
  /** PM2's slot processes by name (a name twice is a duplicate). */
  pm2Names: string[];
  duplicates: string[];
  /** Registry slots PM2 does not run, and PM2 slot processes the registry does not know. */
  missingFromPm2: string[];
  unknownToRegistry: string[];
  /** Processes of the agent's data dir that belong to no slot PM2 supervises (nor the agent or its daemon). */
  orphans: number[];
}

/** Do the registry, PM2 and the processes on the machine agree? */
export async function auditSlots(agent: AgentProcess): Promise<SlotAudit> {
  const list = (await agent.request<{ slots: Slot[] }>('GET', '/api/v1/slots')).body.slots;
  const registry = list.map((s) => s.id);
  const pm2 = (await pm2Processes(agent)).filter((p) => p.name.startsWith('slot-'));
  const pm2Names = pm2.map((p) => p.name);
  const duplicates = pm2Names.filter((name, index) => pm2Names.indexOf(name) !== index);
  const owned = descendants([
    ...pm2.map((p) => p.pid).filter((pid) => pid > 0),
    // An adopted session's dtach is not PM2's child; the slot view names it.
    ...list.map((s) => s.pid).filter((pid): pid is number => pid !== null),
  ]);
  const daemon = daemonPid(agent);
  const orphans = processesOf(agent.dataDir).filter(
    (pid) => pid !== daemon && pid !== agent.pid && !owned.has(pid) && isRunning(pid),
  );
  return {
    registry,
    pm2Names,
    duplicates,
    missingFromPm2: registry.filter((id) => !pm2Names.includes(`slot-${id}`)),
    unknownToRegistry: pm2Names.filter((name) => !registry.includes(name.slice('slot-'.length))),
    orphans,
  };
}

/** `slotdeck-agent down` on a data dir: its exit code and what it printed. */
export function runDown(dataDir: string): Promise<{ code: number | null; out: string }> {
  return runAgentCommand(dataDir, ['down']);
}

/** Processes of session `sid` that are not zombies. */
export function sessionMembers(sid: number): number[] {
  return [...readProcessTable().values()].filter((info) => info.sid === sid && !info.zombie).map((info) => info.pid);
}
