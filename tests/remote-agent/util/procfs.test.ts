import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  childrenOf,
  commandLineOf,
  isRunning,
  processTree,
  readProcessTable,
  residentBytes,
  TreeSampler,
} from '../../../remote-agent/src/util/procfs.js';
import { until } from '../../integration/helpers/until.js';

const started: ChildProcess[] = [];

afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((done) => child.once('exit', done));
    // Each child leads its own process group: end it with everything it started.
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  }
});

function startShell(script: string, ...args: string[]): ChildProcess {
  const child = spawn('/bin/sh', ['-c', script, ...args], { detached: true, stdio: 'ignore' });
  started.push(child);
  return child;
}

/** Waits until `check` holds for a fresh process table (a deadline in time, not in tries: the machine may be busy). */
async function eventually(check: (table: ReturnType<typeof readProcessTable>) => boolean): Promise<void> {
  await until('the process table to show the expected processes', () => check(readProcessTable()));
}

describe('readProcessTable', () => {
  it('lists this process with its parent', () => {
    const table = readProcessTable();
    expect(table.get(process.pid)).toMatchObject({ pid: process.pid, ppid: process.ppid });
    expect(table.get(process.pid)!.cpuTicks).toBeGreaterThan(0);
    expect(table.get(1)).toMatchObject({ pid: 1, ppid: 0 });
  });

  it('reads commands whose names contain spaces and parentheses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-procfs-'));
    try {
      // The kernel names a process after its program's file: a copy of sleep called "x) y (z".
      const program = join(dir, 'x) y (z');
      copyFileSync('/bin/sleep', program);
      chmodSync(program, 0o755);
      const child = spawn(program, ['5'], { detached: true, stdio: 'ignore' });
      started.push(child);
      await eventually((table) => table.get(child.pid!)?.command === 'x) y (z');
      expect(readProcessTable().get(child.pid!)).toMatchObject({ ppid: process.pid, command: 'x) y (z' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('processTree', () => {
  it("contains a program's children and grandchildren, and nothing else", async () => {
    const child = startShell('sleep 5 & sleep 5 & wait');
    await eventually((table) => {
      const sleeping = (childrenOf(table).get(child.pid!) ?? []).filter((pid) => table.get(pid)?.command === 'sleep');
      return sleeping.length === 2;
    });
    const table = readProcessTable();
    const tree = processTree(child.pid!, childrenOf(table));
    expect(tree[0]).toBe(child.pid);
    expect(tree).toHaveLength(3);
    for (const pid of tree.slice(1)) expect(table.get(pid)).toMatchObject({ ppid: child.pid, command: 'sleep' });
    expect(tree).not.toContain(process.pid);
  });

  it('is just the root for a process without children', () => {
    expect(processTree(123456789, new Map())).toEqual([123456789]);
  });
});

describe('residentBytes', () => {
  it('reports the memory of a live process and 0 for one that is gone', async () => {
    expect(residentBytes(process.pid)).toBeGreaterThan(10 * 1024 * 1024);
    const child = startShell('exit 0');
    await new Promise((done) => child.once('exit', done));
    // Reap it: a zombie has no resident memory either.
    expect(residentBytes(child.pid!)).toBe(0);
    expect(residentBytes(2 ** 22 + 1)).toBe(0);
  });
});

describe('commandLineOf and isRunning', () => {
  it("read a process's exact arguments and session, and see it running", async () => {
    const marker = `/tmp/slotdeck-test-${process.pid}-${Date.now()}.sock`;
    // A shell waiting on a builtin: no fork or exec changes the command line while we look.
    const child = spawn('/bin/sh', ['-c', 'read line', marker], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    started.push(child);
    await eventually(() => commandLineOf(child.pid!)?.includes(marker) ?? false);
    expect(commandLineOf(child.pid!)).toEqual(['/bin/sh', '-c', 'read line', marker]);
    expect(isRunning(child.pid!)).toBe(true);
    expect(readProcessTable().get(child.pid!)!.sid).toBe(child.pid);
  });

  it('counts a killed process that its parent has not reaped as ended, which kill(pid, 0) does not', async () => {
    // `exec sleep` becomes the parent of the first sleep and never waits for it: killed, it stays a zombie.
    const parent = startShell('sleep 600 & exec sleep 601');
    let orphan = 0;
    await eventually((table) => {
      orphan = [...table.values()].find((info) => info.ppid === parent.pid && info.command === 'sleep')?.pid ?? 0;
      return orphan > 0 && table.get(parent.pid!)?.command === 'sleep';
    });
    expect(isRunning(orphan)).toBe(true);
    process.kill(orphan, 'SIGKILL');
    await eventually((table) => table.get(orphan)?.zombie === true);
    expect(() => process.kill(orphan, 0)).not.toThrow();
    expect(isRunning(orphan)).toBe(false);
  });
});

describe('TreeSampler', () => {
  it("reports a busy program's CPU share from the second sample on, and the memory of its whole tree", async () => {
    const child = startShell('while :; do :; done & sleep 60 & wait');
    await eventually((table) => (childrenOf(table).get(child.pid!) ?? []).length >= 2);
    const sampler = new TreeSampler();
    const roots = new Map([['slot', child.pid!]]);
    const treeTicks = (table: ReturnType<typeof readProcessTable>): number =>
      processTree(child.pid!, childrenOf(table)).reduce((sum, pid) => sum + (table.get(pid)?.cpuTicks ?? 0), 0);

    // The sampler's clock is injected: a busy machine changes how much CPU the loop gets, not the arithmetic.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const start = Date.now();
      const before = readProcessTable();
      const first = sampler.sample(roots, before).get('slot')!;
      expect(first.cpuPercent).toBeNull();
      expect(first.pids).toHaveLength(3);
      expect(first.memoryBytes).toBeGreaterThan(0);

      // Real CPU time, however long the machine takes to give it: at least 0.2 s (20 ticks of 10 ms).
      const after = await until(
        'the busy loop to use CPU',
        () => readProcessTable(),
        (table) => treeTicks(table) - treeTicks(before) >= 20,
        { timeoutMs: 30_000 },
      );
      vi.setSystemTime(start + 2000);
      const second = sampler.sample(roots, after).get('slot')!;
      // Over 2 s of the injected clock: ticks of 10 ms / 2 s, as percent of one core.
      expect(second.cpuPercent).toBe((treeTicks(after) - treeTicks(before)) / 2);
      expect(second.cpuPercent).toBeGreaterThanOrEqual(10);
    } finally {
      vi.useRealTimers();
    }
  });

  it('leaves out slots whose process is gone', async () => {
    const child = startShell('exit 0');
    await new Promise((done) => child.once('exit', done));
    expect(new TreeSampler().sample(new Map([['gone', child.pid!]])).has('gone')).toBe(false);
  });
});
