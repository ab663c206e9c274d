/**
 * R3 at bench size, with the PM2 faults of tests/integration/helpers/pm2-faults.ts: kill -9 of the agent's PM2
 * daemon (the slots' programs keep running and must keep their sessions), then a power cut of every process of the
 * agent, its PM2 and the slots at once (the agent started again; screens come back from their journals).
 */
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import { auditSlots, killDaemon, powerCut, programPids, waitForRecovery } from '../helpers/pm2-faults.js';

export interface PmFaultsResult {
  slots: number;
  /** After the daemon's kill: slots whose program is not the one that ran before (a user lost their shell). */
  sessionsLost: number;
  /** Seconds from the daemon's kill until every slot is listed running again (null: not within the timeout). */
  recoveryS: number | null;
  /** Seconds from the power cut (agent started again at once) until every slot runs again. */
  powerCutRecoveryS: number | null;
  /** Slots whose screen showed the line printed before the power cut, to a viewer attaching after it. */
  screensRestored: number;
  /** Disagreements between the registry, PM2 and the processes, after each fault. */
  problems: string[];
}

async function printMark(agent: AgentProcess, slot: Slot, mark: string): Promise<void> {
  const client = await agent.attach(slot.id);
  await client.waitForPrompt(20_000);
  client.type(`echo ${mark}-ok\r`);
  await client.waitFor(`${mark}-ok`, 20_000);
  client.close();
}

async function screenShows(agent: AgentProcess, slot: Slot, text: string): Promise<boolean> {
  try {
    const viewer = await agent.attach(slot.id, 'read-only');
    await viewer.waitFor(text, 10_000);
    viewer.close();
    return true;
  } catch {
    return false;
  }
}

async function audit(agent: AgentProcess, after: string, problems: string[]): Promise<void> {
  const found = await auditSlots(agent);
  for (const [what, list] of Object.entries({
    duplicates: found.duplicates,
    'not run by PM2': found.missingFromPm2,
    'unknown to the registry': found.unknownToRegistry,
    orphans: found.orphans,
  }))
    if (list.length > 0) problems.push(`after ${after}: ${what} ${list.join(', ')}`);
}

export async function runPm2Faults(options: {
  slots: number;
  timeoutMs?: number;
  log?: (message: string) => void;
}): Promise<PmFaultsResult> {
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_LOG_LEVEL: 'warn' } });
  try {
    const slots: Slot[] = [];
    for (let i = 0; i < options.slots; i++) slots.push(await agent.createSlot({ name: `r3-${i}` }));
    const ids = slots.map((s) => s.id);
    for (const slot of slots) await printMark(agent, slot, `before-${slot.name}`);
    const problems: string[] = [];

    const before = await programPids(agent, ids);
    log(`R3: kill -9 of the PM2 daemon with ${ids.length} slots`);
    const killedAt = Date.now();
    killDaemon(agent);
    let recoveryS: number | null = null;
    try {
      recoveryS = (await waitForRecovery(agent, ids, killedAt, timeoutMs)).seconds;
    } catch {
      problems.push(`after the daemon's kill: not every slot ran again within ${timeoutMs / 1000} s`);
    }
    const after = await programPids(agent, ids).catch(() => new Map<string, number | null>());
    const sessionsLost = ids.filter((id) => before.get(id) === null || after.get(id) !== before.get(id)).length;
    if (recoveryS !== null) await audit(agent, "the daemon's kill", problems);

    log('R3: power cut of the agent, its PM2 and every slot process');
    const cutAt = Date.now();
    await powerCut(agent, 'kill');
    await agent.launch();
    let powerCutRecoveryS: number | null = null;
    try {
      powerCutRecoveryS = (await waitForRecovery(agent, ids, cutAt, timeoutMs)).seconds;
    } catch {
      problems.push(`after the power cut: not every slot ran again within ${timeoutMs / 1000} s`);
    }
    let screensRestored = 0;
    if (powerCutRecoveryS !== null) {
      await audit(agent, 'the power cut', problems);
      for (const slot of slots) if (await screenShows(agent, slot, `before-${slot.name}-ok`)) screensRestored += 1;
    }
    return { slots: ids.length, sessionsLost, recoveryS, powerCutRecoveryS, screensRestored, problems };
  } finally {
    await agent.destroy();
  }
}
