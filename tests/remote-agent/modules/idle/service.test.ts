/**
 * The idle auto-stop's clock and stop, on a real SQLite file with a clock the test moves (never sleeping). The stop
 * command is a recorder here; tests/remote-agent/modules/idle/stop-command.test.ts runs real programs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IdleStatus } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { IdleService } from '../../../../remote-agent/src/modules/idle/service.js';
import type { StopOutcome } from '../../../../remote-agent/src/modules/idle/stop-command.js';
import { IdleStore } from '../../../../remote-agent/src/modules/idle/store.js';

const START = Date.parse('2026-12-01T10:00:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const STOP = ['/usr/bin/sudo', '-n', 'shutdown', '-h', 'now'];

let dir: string;
let db: Db;
let nowMs: number;
let runs: string[][];
let outcomes: StopOutcome[];
const logs: string[] = [];

function service(options: { run?: (argv: readonly string[]) => Promise<StopOutcome> } = {}): IdleService {
  return new IdleService({
    store: new IdleStore(db),
    stopCommand: STOP,
    logger: createLogger('info', { write: (line: string) => void logs.push(line) }),
    now: () => nowMs,
    run:
      options.run ??
      ((argv) => {
        runs.push([...argv]);
        return Promise.resolve(outcomes.shift() ?? { exitCode: 0, output: 'system is going down' });
      }),
  });
}

const advance = (ms: number): void => {
  nowMs += ms;
};

/** The status as the route sends it: it must always match the contract. */
const status = (idle: IdleService): IdleStatus => IdleStatus.parse(idle.status());

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-idle-'));
  db = openDatabase(join(dir, 'agent.db'));
  nowMs = START;
  runs = [];
  outcomes = [];
  logs.length = 0;
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('policy', () => {
  it('is off by default: nothing is counted and nothing runs, however long the host is idle', async () => {
    const idle = service();
    expect(status(idle)).toMatchObject({
      policy: { enabled: false, minutes: 60 },
      state: 'off',
      stopAt: null,
      secondsLeft: null,
      lastActivity: 'start',
      lastActivityAt: new Date(START).toISOString(),
      stopCommand: '/usr/bin/sudo -n shutdown -h now',
      lastStop: null,
    });
    advance(30 * 24 * 60 * MINUTE);
    await idle.tick();
    expect(runs).toEqual([]);
  });

  it('is kept in the database: a restarted agent has the same policy, and its clock starts again at its start', () => {
    service().setPolicy({ enabled: true, minutes: 15 });
    advance(10 * MINUTE);
    const restarted = service();
    expect(status(restarted)).toMatchObject({
      policy: { enabled: true, minutes: 15 },
      state: 'counting',
      lastActivity: 'start',
      stopAt: new Date(nowMs + 15 * MINUTE).toISOString(),
      secondsLeft: 15 * 60,
    });
  });

  it('counts from the change when turned on, so a host idle for hours is not stopped the moment it is enabled', async () => {
    const idle = service();
    advance(5 * 60 * MINUTE);
    idle.setPolicy({ enabled: true, minutes: 1 });
    await idle.tick();
    expect(runs).toEqual([]);
    expect(status(idle)).toMatchObject({ state: 'counting', secondsLeft: 60, lastActivity: 'admin' });
  });
});

describe('the countdown and the stop', () => {
  it('runs the stop command once when idle for the policy minutes, and says stopping', async () => {
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    advance(59 * SECOND);
    await idle.tick();
    expect(runs).toEqual([]);
    expect(status(idle).secondsLeft).toBe(1);

    advance(SECOND);
    await idle.tick();
    expect(runs).toEqual([STOP]);
    expect(status(idle)).toMatchObject({
      state: 'stopping',
      secondsLeft: 0,
      lastStop: { at: new Date(nowMs).toISOString(), exitCode: 0, output: 'system is going down' },
    });

    // The machine may take a while to go down: later checks never run the command again.
    for (let i = 0; i < 10; i++) {
      advance(MINUTE);
      await idle.tick();
    }
    expect(runs).toHaveLength(1);
    expect(status(idle).state).toBe('stopping');
  });

  it('is postponed by each kind of activity, which starts the countdown over', async () => {
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    for (const kind of ['terminal', 'gateway', 'admin'] as const) {
      advance(50 * SECOND);
      idle.noteActivity(kind);
      advance(50 * SECOND);
      await idle.tick();
      expect(runs, kind).toEqual([]);
      expect(status(idle), kind).toMatchObject({ state: 'counting', lastActivity: kind, secondsLeft: 10 });
    }
    advance(10 * SECOND);
    await idle.tick();
    expect(runs).toHaveLength(1);
  });

  it('keep-awake holds the stop off until its end even when the policy time is shorter', async () => {
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    idle.keepAwake(60);
    expect(status(idle)).toMatchObject({
      lastActivity: 'keep-awake',
      keepAwakeUntil: new Date(START + 60 * MINUTE).toISOString(),
      stopAt: new Date(START + 60 * MINUTE).toISOString(),
    });
    advance(59 * MINUTE);
    await idle.tick();
    expect(runs).toEqual([]);
    advance(MINUTE);
    await idle.tick();
    expect(runs).toHaveLength(1);
    expect(status(idle).keepAwakeUntil).toBeNull();
  });

  it('keep-awake that ended leaves the ordinary countdown from the last activity', async () => {
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 30 });
    idle.keepAwake(10);
    advance(20 * MINUTE);
    idle.noteActivity('terminal');
    advance(29 * MINUTE);
    await idle.tick();
    expect(runs).toEqual([]);
    expect(status(idle)).toMatchObject({ keepAwakeUntil: null, secondsLeft: 60 });
  });

  it('a failed stop says failed, keeps its exit code and output, and waits a whole period before trying again', async () => {
    outcomes.push({ exitCode: 1, output: 'sudo: a password is required' });
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 5 });
    advance(5 * MINUTE);
    await idle.tick();
    expect(runs).toHaveLength(1);
    expect(status(idle)).toMatchObject({
      state: 'failed',
      secondsLeft: 5 * 60,
      lastStop: { exitCode: 1 },
    });
    expect(status(idle).lastStop?.output).toMatch(/^sudo: a password is required\n/);
    // It says why the stop can never work as it is, and what to change.
    expect(status(idle).lastStop?.output).toContain('without a password, so the idle stop cannot work here');
    // Not a tight loop: every check before the next period is a no-op.
    for (let i = 0; i < 29; i++) {
      advance(10 * SECOND);
      await idle.tick();
    }
    expect(runs).toHaveLength(1);
    expect(status(idle).state).toBe('failed');
    advance(10 * SECOND);
    await idle.tick();
    expect(runs).toHaveLength(2);
    expect(status(idle).state).toBe('stopping');
    expect(logs.join('\n')).toContain('the stop command failed');
  });

  it('activity after a failed stop turns it back into an ordinary countdown', async () => {
    outcomes.push({ exitCode: 127, output: 'not found' });
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    advance(MINUTE);
    await idle.tick();
    expect(status(idle).state).toBe('failed');
    idle.noteActivity('terminal');
    expect(status(idle)).toMatchObject({ state: 'counting', lastStop: { exitCode: 127 } });
  });

  it('a stop command that throws counts as failed with the reason', async () => {
    const idle = service({ run: () => Promise.reject(new Error('spawn EACCES')) });
    idle.setPolicy({ enabled: true, minutes: 1 });
    advance(MINUTE);
    await idle.tick();
    expect(status(idle)).toMatchObject({ state: 'failed', lastStop: { exitCode: null } });
    expect(status(idle).lastStop!.output).toContain('spawn EACCES');
  });

  it('never runs twice at once: checks while the command runs wait for it, and the record exists before it ends', async () => {
    let finish: (outcome: StopOutcome) => void = () => undefined;
    let calls = 0;
    const idle = service({
      run: () => {
        calls += 1;
        return new Promise((resolve) => (finish = resolve));
      },
    });
    idle.setPolicy({ enabled: true, minutes: 1 });
    advance(MINUTE);
    const first = idle.tick();
    const second = idle.tick();
    advance(MINUTE);
    void idle.tick();
    expect(calls).toBe(1);
    // Written before the command ends: if the machine goes down first, the record still says when it started.
    expect(status(idle)).toMatchObject({ state: 'stopping', lastStop: { exitCode: null, output: '' } });
    // Changing the policy meanwhile does not start another run.
    idle.setPolicy({ enabled: true, minutes: 1 });
    finish({ exitCode: 0, output: 'bye' });
    await Promise.all([first, second]);
    expect(calls).toBe(1);
    expect(status(idle)).toMatchObject({ state: 'stopping', lastStop: { exitCode: 0, output: 'bye' } });
  });

  it('after a stop that did not take the machine down, keep-awake re-arms it for a fresh period', async () => {
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    advance(MINUTE);
    await idle.tick();
    advance(10 * MINUTE);
    idle.noteActivity('terminal');
    await idle.tick();
    // Ordinary activity does not re-arm a stop that succeeded: the machine is going down.
    expect(status(idle).state).toBe('stopping');
    idle.keepAwake(1);
    expect(status(idle)).toMatchObject({ state: 'counting', secondsLeft: 60 });
    advance(MINUTE);
    await idle.tick();
    expect(runs).toHaveLength(2);
  });

  it('turning the policy off stops the countdown: the status says off and nothing runs', async () => {
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    idle.setPolicy({ enabled: false, minutes: 1 });
    advance(60 * MINUTE);
    await idle.tick();
    expect(runs).toEqual([]);
    expect(status(idle)).toMatchObject({ state: 'off', stopAt: null, secondsLeft: null });
  });

  it('keeps only the newest 20 stop records', async () => {
    outcomes = Array.from({ length: 25 }, (_, i) => ({ exitCode: 1, output: `attempt ${i + 1}` }));
    const idle = service();
    idle.setPolicy({ enabled: true, minutes: 1 });
    for (let i = 0; i < 25; i++) {
      advance(MINUTE);
      await idle.tick();
    }
    expect(runs).toHaveLength(25);
    expect(db.prepare('SELECT count(*) AS n FROM idle_stops').get()).toEqual({ n: 20 });
    expect(status(idle).lastStop!.output).toBe('attempt 25');
  });
});
