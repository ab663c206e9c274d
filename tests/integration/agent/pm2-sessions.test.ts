import { afterEach, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import { isRunning } from '../../../remote-agent/src/util/procfs.js';
import { daemonPid, killDaemon, runDown } from '../helpers/pm2-faults.js';
import { processesNaming, processesOf } from '../helpers/processes.js';

/**
 * Ending slots ends everything of their sessions (issue 13, §5): `down` with a dead PM2 daemon, what a login
 * shell's logout starts (Debian's clear_console, left running as root with ppid 1), and a delete that returns only
 * once the slot's processes are gone.
 */

let agent: AgentProcess | null = null;

afterEach(async () => {
  await agent?.destroy();
  agent = null;
});

function runningOf(dir: string): number[] {
  return processesOf(dir).filter(isRunning);
}

/** A slot whose login shell's logout starts a long-lived program, as clear_console did when it hung. */
async function slotWithLogoutProgram(name: string, marker: string): Promise<{ slot: Slot; program: number }> {
  const slot = await agent!.createSlot({ name, command: { preset: 'custom', command: 'bash', args: ['-l'] } });
  const client = await agent!.attach(slot.id);
  await client.waitForPrompt();
  // The stand-in names the marker on its command line, which keeps it apart from anything else on the machine. A
  // shell that shrugs off the hangup (trap '' HUP) reads end-of-file when its terminal goes and logs out: that is
  // when a logout program starts, after PM2 had listed what to end.
  client.type(`trap '' HUP; echo 'sh -c "sleep 300; :" ${marker}' >> ~/.bash_logout; echo ready-$$\r`);
  const out = await client.waitFor(/ready-(\d+)/);
  client.close();
  return { slot, program: Number(/ready-(\d+)/.exec(out)![1]) };
}

function processesNamed(marker: string): number[] {
  return processesNaming(marker).filter(isRunning);
}

describe('slotdeck-agent down', () => {
  it('ends every slot process when the PM2 daemon is already dead, and says what it did', async () => {
    agent = await AgentProcess.start();
    const programs: number[] = [];
    for (const name of ['down-a', 'down-b']) {
      const slot = await agent.createSlot({ name });
      const client = await agent.attach(slot.id);
      await client.waitForPrompt();
      client.type('echo pid=$$\r');
      programs.push(Number(/pid=(\d+)/.exec(await client.waitFor(/pid=(\d+)/))![1]));
      client.close();
    }
    await agent.stop();
    killDaemon(agent);
    // The sessions outlive their daemon, with ppid 1.
    for (const pid of programs) expect(isRunning(pid)).toBe(true);

    const result = await runDown(agent.dataDir);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/the PM2 daemon was not running; \d+ slot processes ended/);
    for (const pid of programs) expect(isRunning(pid)).toBe(false);
    expect(runningOf(agent.dataDir)).toEqual([]);
    expect(daemonPid(agent)).toBeNull();
  });

  it("leaves nothing a login shell's logout started (clear_console stayed behind with ppid 1)", async () => {
    agent = await AgentProcess.start();
    const marker = `logout-stand-in-${process.pid}-down`;
    const { program } = await slotWithLogoutProgram('logout-down', marker);
    await agent.stop();
    const result = await runDown(agent.dataDir);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/stopped every slot and the PM2 daemon/);
    expect(isRunning(program)).toBe(false);
    expect(processesNamed(marker)).toEqual([]);
    expect(runningOf(agent.dataDir)).toEqual([]);
  });
});

describe('stopping and deleting a slot', () => {
  it("ends the whole session, what the shell's logout started included, before the call returns", async () => {
    agent = await AgentProcess.start();
    const stopMarker = `logout-stand-in-${process.pid}-stop`;
    const stopped = await slotWithLogoutProgram('logout-stop', stopMarker);
    const holder = (await agent.slot(stopped.slot.id)).pid!;
    const stop = await agent.request<Slot>('POST', `/api/v1/slots/${stopped.slot.id}/stop`);
    expect(stop.body.state).toBe('stopped');
    expect(isRunning(stopped.program)).toBe(false);
    expect(isRunning(holder)).toBe(false);
    expect(processesNamed(stopMarker)).toEqual([]);

    const deleteMarker = `logout-stand-in-${process.pid}-delete`;
    const deleted = await slotWithLogoutProgram('logout-delete', deleteMarker);
    const deletedHolder = (await agent.slot(deleted.slot.id)).pid!;
    const removal = await agent.request<{ deleted: boolean }>(
      'DELETE',
      `/api/v1/slots/${deleted.slot.id}?workDir=remove`,
    );
    expect(removal.status).toBe(200);
    expect(removal.body.deleted).toBe(true);
    // When the call returns the slot is gone and so is every process it had.
    expect(isRunning(deleted.program)).toBe(false);
    expect(isRunning(deletedHolder)).toBe(false);
    expect(processesNamed(deleteMarker)).toEqual([]);
    expect((await agent.request('GET', `/api/v1/slots/${deleted.slot.id}`)).status).toBe(404);
  });
});
