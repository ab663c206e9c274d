import { describe, expect, it } from 'vitest';
import { programPid } from '../../../../remote-agent/src/modules/slots/views.js';

/** A process table as /proc shows it: pid → [parent, command]. */
function tableOf(processes: Record<number, [number, string]>) {
  const table = new Map<number, { command: string }>();
  const children = new Map<number, number[]>();
  for (const [pid, [ppid, command]] of Object.entries(processes)) {
    table.set(Number(pid), { command });
    children.set(ppid, [...(children.get(ppid) ?? []), Number(pid)]);
  }
  return { table, children };
}

const LAUNCHER_LINE = '/bin/sh\0/opt/agent/slot-launch.sh\0/data/slots/a/env\0/data/slots/a/exit\0';

describe('the program pid a slot reports', () => {
  it('is the launcher’s child that runs the slot’s command', () => {
    const { table, children } = tableOf({ 10: [1, 'dtach'], 11: [10, 'sh'], 12: [11, 'bash'] });
    expect(programPid(10, children, table, () => null)).toBe(12);
  });

  it('is none while the launcher only waits for the terminal size or prepares the home (those pids end at once)', () => {
    for (const helper of ['sleep', 'stty', 'chmod', 'mkdir', 'cp']) {
      const { table, children } = tableOf({ 10: [1, 'dtach'], 11: [10, 'sh'], 12: [11, helper] });
      expect(programPid(10, children, table, () => null)).toBeNull();
    }
  });

  it('is none while the launcher’s own $(…) subshell runs, yet a program that is itself sh counts', () => {
    const { table, children } = tableOf({ 10: [1, 'dtach'], 11: [10, 'sh'], 12: [11, 'sh'] });
    const subshell = (pid: number) => (pid === 11 || pid === 12 ? LAUNCHER_LINE : null);
    expect(programPid(10, children, table, subshell)).toBeNull();
    const ownProgram = (pid: number) => (pid === 11 ? LAUNCHER_LINE : 'sh\0-c\0make watch\0');
    expect(programPid(10, children, table, ownProgram)).toBe(12);
  });

  it('looks through sudo on an isolated host (PM2 runs sudo, dtach is its child)', () => {
    const { table, children } = tableOf({ 9: [1, 'sudo'], 10: [9, 'dtach'], 11: [10, 'sh'], 12: [11, 'claude'] });
    expect(programPid(9, children, table, () => null)).toBe(12);
  });
});
