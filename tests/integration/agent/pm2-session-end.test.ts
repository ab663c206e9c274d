import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { endSessions, sessionsOf } from '../../../remote-agent/src/supervisor/sessions.js';
import { sessionMembers } from '../helpers/pm2-faults.js';

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** A session like a slot's: a leader, a program that shrugs off hangups, and a child it left behind (ppid 1). */
async function session(): Promise<number> {
  const child = spawn(
    '/bin/sh',
    ['-c', `trap '' HUP TERM; (trap '' HUP TERM; exec sleep 301) & sh -c 'sleep 302 & exit 0'; sleep 303`],
    { detached: true, stdio: 'ignore' },
  );
  started.push(child.pid!);
  for (let i = 0; i < 100 && sessionMembers(child.pid!).length < 4; i++) await sleep(20);
  return child.pid!;
}

describe('ending a slot session', () => {
  it('finds the session from its leader and ends every member, those ignoring SIGHUP/SIGTERM and orphans included', async () => {
    const leader = await session();
    expect(sessionMembers(leader).length).toBeGreaterThanOrEqual(4);
    const sessions = sessionsOf([leader]);
    expect([...sessions]).toEqual([leader]);
    const ended = await endSessions(sessions, 100);
    expect(ended).toBeGreaterThanOrEqual(4);
    expect(sessionMembers(leader)).toEqual([]);
  });

  it('never takes the agent’s own session, and does nothing for processes already gone', async () => {
    const own = sessionsOf([process.pid]);
    expect(own.size).toBe(0);
    expect(await endSessions(sessionsOf([2 ** 22 + 12345]))).toBe(0);
  });
});
