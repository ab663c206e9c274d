import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import { auditSlots, daemonPid, killDaemon, powerCut, programPids, waitForRecovery } from '../helpers/pm2-faults.js';
import { until } from '../helpers/until.js';

/**
 * R3 (issue 13): the agent's PM2 daemon killed with kill -9 (the slots' programs keep their PIDs and must keep
 * their sessions), and a "power cut" of the agent and its PM2 at once. Each reports the sessions lost and the
 * seconds until every slot ran again (figures for `npm run bench -- reliability`).
 */

let agent: AgentProcess;
const slots: Slot[] = [];

/** Prints a line in a slot's terminal and returns what the program's shell says its pid is. */
async function printIn(slot: Slot, text: string): Promise<number> {
  const client = await agent.attach(slot.id);
  await client.waitForPrompt();
  client.type(`echo ${text}-$$\r`);
  const out = await client.waitFor(new RegExp(`${text}-(\\d+)`));
  client.close();
  return Number(new RegExp(`${text}-(\\d+)`).exec(out)![1]);
}

/** What a viewer attaching now sees, once `text` is on the screen. */
async function screenOf(slot: Slot, text: string): Promise<string> {
  const viewer = await agent.attach(slot.id, 'read-only');
  await viewer.waitFor(text);
  const seen = viewer.text;
  viewer.close();
  return seen;
}

const newSessionMarks = (screen: string): number => screen.split('new session started').length - 1;

function expectAgreement(audit: Awaited<ReturnType<typeof auditSlots>>, ids: string[]): void {
  expect(audit.registry.sort()).toEqual([...ids].sort());
  expect(audit.duplicates).toEqual([]);
  expect(audit.missingFromPm2).toEqual([]);
  expect(audit.unknownToRegistry).toEqual([]);
  expect(audit.orphans).toEqual([]);
}

beforeAll(async () => {
  agent = await AgentProcess.start();
  for (const name of ['r3-a', 'r3-b', 'r3-c']) slots.push(await agent.createSlot({ name }));
});

afterAll(async () => {
  await agent?.destroy();
});

describe('R3: the PM2 daemon killed with kill -9', () => {
  it('adopts every running session into a new daemon: same programs, same screens, nothing lost or doubled', async () => {
    const ids = slots.map((s) => s.id);
    for (const slot of slots) await printIn(slot, `before-daemon-kill-${slot.name}`);
    const before = await programPids(agent, ids);
    const holders = new Map(await Promise.all(slots.map(async (s) => [s.id, (await agent.slot(s.id)).pid] as const)));

    const killedAt = Date.now();
    const oldDaemon = killDaemon(agent);
    // While it is away the agent says so at once, with a code, and makes nothing it would have to undo.
    const listed = await agent.request<{ error: { code: string; message: string } }>('GET', '/api/v1/slots');
    const created = await agent.request<{ error: { code: string } }>('POST', '/api/v1/slots', { name: 'r3-during' });
    if (listed.status !== 200) {
      expect(listed.status).toBe(503);
      expect(listed.body.error.code).toBe('SUPERVISOR_UNAVAILABLE');
      expect(listed.body.error.message).toMatch(/restarting it/);
    }
    if (created.status === 503) expect(created.body.error.code).toBe('SUPERVISOR_UNAVAILABLE');

    const { seconds } = await waitForRecovery(agent, ids, killedAt);
    const after = await programPids(agent, ids);
    const sessionsLost = ids.filter((id) => after.get(id) !== before.get(id)).length;
    console.log(
      `R3 daemon kill -9: sessions lost ${sessionsLost} of ${ids.length}; recovered in ${seconds.toFixed(1)} s`,
    );

    expect(daemonPid(agent)).not.toBeNull();
    expect(daemonPid(agent)).not.toBe(oldDaemon);
    expect(sessionsLost).toBe(0);
    for (const slot of slots) {
      const live = await agent.slot(slot.id);
      expect(live.pid).toBe(holders.get(slot.id));
      expect(live.restarts).toBe(0);
      // A viewer sees what was on the screen before, and no mark of a new session: it is the same one.
      const screen = await screenOf(slot, `before-daemon-kill-${slot.name}`);
      expect(screen).not.toContain('new session started');
    }
    // A slot made during the outage either was refused or exists properly; after the agent restarts nothing
    // else appears (it used to leave a phantom slot).
    const expected = created.status === 201 ? [...ids, (created.body as unknown as Slot).id] : ids;
    expectAgreement(await auditSlots(agent), expected);
    await agent.stop();
    await agent.launch();
    await waitForRecovery(agent, expected, Date.now());
    expectAgreement(await auditSlots(agent), expected);
    if (created.status === 201) {
      await agent.request('DELETE', `/api/v1/slots/${(created.body as unknown as Slot).id}?workDir=remove`);
    }

    // The adopted shell is the user's as before: it answers, and when it ends PM2 starts a new session as usual.
    const first = slots[0]!;
    const client = await agent.attach(first.id);
    await client.waitFor(`before-daemon-kill-${first.name}`);
    client.type('echo still-$$\r');
    await client.waitFor(`still-${before.get(first.id)}`);
    client.type('exit\r');
    await client.waitFor('[slotdeck] new session started');
    client.close();
    const restarted = await until(
      'the slot to run its new session',
      () => agent.slot(first.id),
      (s) => s.state === 'running' && s.programPid !== null && s.programPid !== before.get(first.id),
      { timeoutMs: 30_000 },
    );
    expect(restarted.restarts).toBe(1);
    expectAgreement(await auditSlots(agent), ids);
  });
});

describe('R3: a power cut of the agent and its PM2', () => {
  it('brings every slot back after the agent, its daemon and every session die at once, screens from the journal', async () => {
    const ids = slots.map((s) => s.id);
    for (const slot of slots) await printIn(slot, `before-power-cut-${slot.name}`);
    const before = await programPids(agent, ids);

    const cutAt = Date.now();
    await powerCut(agent, 'kill');
    await agent.launch();
    const { seconds } = await waitForRecovery(agent, ids, cutAt);
    const after = await programPids(agent, ids);
    // Every program died with the power: each slot runs a new session (a lost session is expected here).
    const sessionsLost = ids.filter((id) => after.get(id) !== before.get(id)).length;
    console.log(
      `R3 power cut (everything): sessions lost ${sessionsLost} of ${ids.length}; recovered in ${seconds.toFixed(1)} s`,
    );

    expectAgreement(await auditSlots(agent), ids);
    for (const slot of slots) {
      // The screen comes back from the journal, then the new session is marked.
      const screen = await screenOf(slot, 'new session started');
      expect(screen).toContain(`before-power-cut-${slot.name}`);
      await printIn(slot, `after-power-cut-${slot.name}`);
    }
  });

  it('adopts the sessions that outlived an agent and a daemon killed together', async () => {
    const ids = slots.map((s) => s.id);
    const marks = new Map<string, number>();
    for (const slot of slots) {
      await printIn(slot, `before-both-killed-${slot.name}`);
      marks.set(slot.id, newSessionMarks(await screenOf(slot, `before-both-killed-${slot.name}`)));
    }
    const before = await programPids(agent, ids);

    const cutAt = Date.now();
    await powerCut(agent, 'keep');
    await agent.launch();
    const { seconds } = await waitForRecovery(agent, ids, cutAt);
    const after = await programPids(agent, ids);
    const sessionsLost = ids.filter((id) => after.get(id) !== before.get(id)).length;
    console.log(
      `R3 agent and daemon kill -9: sessions lost ${sessionsLost} of ${ids.length}; recovered in ${seconds.toFixed(1)} s`,
    );

    expect(sessionsLost).toBe(0);
    expectAgreement(await auditSlots(agent), ids);
    for (const slot of slots) {
      const screen = await screenOf(slot, `before-both-killed-${slot.name}`);
      expect(newSessionMarks(screen)).toBe(marks.get(slot.id));
    }
  });
});
