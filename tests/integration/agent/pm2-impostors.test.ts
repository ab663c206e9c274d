import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import { commandLineOf, isRunning } from '../../../remote-agent/src/util/procfs.js';
import { daemonPid, killDaemon, runDown, sessionMembers, waitForRecovery } from '../helpers/pm2-faults.js';
import { until } from '../helpers/until.js';

/**
 * A slot's processes are its dtach, holder and launcher, with their exact command lines and run by the slot's uid:
 * nothing else that names a slot's files or socket is ended by `slotdeck-agent down`, taken for a slot's holder, or
 * signalled when a slot stops (issue 13 review: an admin's `tail -f` on a slot's file lost their whole session to
 * `down`; any account could plant a process naming another slot's socket). Real agent, PM2, dtach; the look-alike
 * runs as another account (nobody), so the test runs as root, as CI does.
 */

const NOBODY = 65534;
let agent: AgentProcess | null = null;
const started: number[] = [];
let fakes = '';

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('These tests start a process as another account: run them as root.');
  fakes = mkdtempSync(join(tmpdir(), 'sd-impostor-'));
  chmodSync(fakes, 0o755);
  // Named like the holder, doing nothing: its command line is a holder's to the letter.
  writeFileSync(join(fakes, 'slot-holder.sh'), 'sleep 600\n', { mode: 0o644 });
  return () => rmSync(fakes, { recursive: true, force: true });
});

afterEach(async () => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // ended
    }
  }
  await agent?.destroy();
  agent = null;
});

/** Starts a command in a session of its own (as a terminal or tmux pane would) and returns its pid. */
async function session(command: string[], options: { uid?: number } = {}): Promise<number> {
  const argv =
    options.uid === undefined
      ? command
      : [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', ...command];
  const child = spawn(
    options.uid === undefined ? argv[0]! : 'setpriv',
    options.uid === undefined ? argv.slice(1) : argv,
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  started.push(child.pid!);
  await sleep(300);
  expect(isRunning(child.pid!)).toBe(true);
  return child.pid!;
}

/** A running slot, its shell's pid and the holder's command line (dtach -N SOCKET -r none /bin/sh LAUNCHER ENV EXIT). */
async function runningSlot(name: string): Promise<{ slot: Slot; program: number; dtach: string[] }> {
  const slot = await agent!.createSlot({ name });
  const client = await agent!.attach(slot.id);
  await client.waitForPrompt();
  client.type('echo pid=$$\r');
  const program = Number(/pid=(\d+)/.exec(await client.waitFor(/pid=(\d+)/))![1]);
  client.close();
  const holder = (await agent!.slot(slot.id)).pid!;
  const dtach = commandLineOf(holder)!;
  expect(dtach[1]).toBe('-N');
  return { slot, program, dtach };
}

/** Another account's process whose command line is a holder's for this slot's socket, to the letter. */
function lookAlike(dtach: string[]): Promise<number> {
  const [, , socket, , , , launcher, envFile, exitFile] = dtach;
  return session(
    ['/bin/sh', join(fakes, 'slot-holder.sh'), '/usr/bin/dtach', socket!, launcher!, envFile!, exitFile!],
    {
      uid: NOBODY,
    },
  );
}

describe("only a slot's own processes are its", () => {
  it("down leaves alone a session that names a slot's files, and another account's look-alike of its holder", async () => {
    agent = await AgentProcess.start();
    const { slot, program, dtach } = await runningSlot('impostor-down');
    const notes = join(agent.dataDir, 'slots', slot.id, 'work', 'notes.txt');
    writeFileSync(notes, 'notes\n');
    // An admin's pane: a long job, and a viewer of the slot's file.
    const pane = await session(['/bin/sh', '-c', `sleep 600 & tail -f ${notes} & wait`]);
    await sleep(200);
    const paneMembers = sessionMembers(pane);
    expect(paneMembers.length).toBeGreaterThanOrEqual(3);
    const impostor = await lookAlike(dtach);

    await agent.stop();
    const daemon = killDaemon(agent);
    // A SIGKILL takes effect when the kernel next runs the process, which on a loaded machine is not at once.
    await until(
      'the PM2 daemon to end',
      () => isRunning(daemon),
      (alive) => !alive,
    );
    const result = await runDown(agent.dataDir);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/the PM2 daemon was not running; \d+ slot process/);
    // The slot is gone; the pane and the look-alike are not.
    expect(isRunning(program)).toBe(false);
    for (const pid of paneMembers) expect(isRunning(pid)).toBe(true);
    expect(isRunning(impostor)).toBe(true);
  });

  it("takes another account's look-alike neither for the holder of an adopted session nor ends it with the slot", async () => {
    agent = await AgentProcess.start();
    const { slot, program, dtach } = await runningSlot('impostor-adopt');
    const holder = (await agent.slot(slot.id)).pid!;
    const impostor = await lookAlike(dtach);

    const killedAt = Date.now();
    const oldDaemon = killDaemon(agent);
    await waitForRecovery(agent, [slot.id], killedAt);
    expect(daemonPid(agent)).not.toBe(oldDaemon);
    // Adopted: the same session, found by the real dtach, not by whatever else names its socket.
    const adopted = await agent.slot(slot.id);
    expect(adopted.programPid).toBe(program);
    expect(adopted.pid).toBe(holder);

    const stop = await agent.request<Slot>('POST', `/api/v1/slots/${slot.id}/stop`);
    expect(stop.body.state).toBe('stopped');
    expect(isRunning(program)).toBe(false);
    expect(isRunning(holder)).toBe(false);
    expect(isRunning(impostor)).toBe(true);
  });
});
