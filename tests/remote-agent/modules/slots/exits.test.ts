import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_LAUNCH, describeExitStatus, SlotExits } from '../../../../remote-agent/src/modules/slots/exits.js';
import type { SlotPaths } from '../../../../remote-agent/src/modules/slots/paths.js';
import { SlotRepository } from '../../../../remote-agent/src/modules/slots/repository.js';
import { tempDb, type TempDb } from '../usage/helpers.js';

describe('how a program ended, in words', () => {
  it('names the shell statuses an admin meets: not found, not executable, killed by a signal', () => {
    expect(describeExitStatus('sh', 127)).toBe('sh exited with code 127 (command not found)');
    expect(describeExitStatus('./run', 126)).toBe(
      './run exited with code 126 (found but could not be run: not executable?)',
    );
    expect(describeExitStatus('claude', 137)).toBe('claude was ended by SIGKILL (exit status 137)');
    expect(describeExitStatus('claude', 143)).toBe('claude was ended by SIGTERM (exit status 143)');
    expect(describeExitStatus('make', 2)).toBe('make exited with code 2');
    expect(describeExitStatus('odd', 255)).toBe('odd exited with code 255');
  });
});

describe('the crash-loop count', () => {
  let t: TempDb;
  let repo: SlotRepository;
  let exits: SlotExits;
  const SLOT = 's_crashmemory';
  const ago = (seconds: number): string => new Date(Date.now() - seconds * 1000).toISOString();

  beforeEach(() => {
    t = tempDb();
    // The events alone matter here; the slot's own row is not needed.
    t.db.pragma('foreign_keys = OFF');
    repo = new SlotRepository(t.db);
    exits = new SlotExits({
      repo,
      paths: {} as SlotPaths,
      crashLoop: { maxRestarts: 5, windowSeconds: 300 },
    });
  });
  afterEach(() => t.cleanup());

  it('keeps counting across the agent’s own restarts (over memory, found not running), so the slot still fails', () => {
    repo.addEvent(SLOT, 'started', 'started', ago(100));
    for (let i = 0; i < 3; i++) repo.addEvent(SLOT, 'exited', 'claude exited with code 1; restarting it', ago(90 - i));
    repo.addEvent(SLOT, 'restarted', AGENT_LAUNCH.overMemory, ago(50));
    repo.addEvent(SLOT, 'started', AGENT_LAUNCH.pm2Had('stopped'), ago(45));
    repo.addEvent(SLOT, 'started', AGENT_LAUNCH.notRunning, ago(44));
    for (let i = 0; i < 3; i++) repo.addEvent(SLOT, 'exited', 'claude exited with code 1; restarting it', ago(40 - i));
    expect(exits.recent(SLOT)).toBe(6);
  });

  it('starts again from zero when the admin restarts or edits the slot', () => {
    repo.addEvent(SLOT, 'started', 'started', ago(100));
    for (let i = 0; i < 3; i++) repo.addEvent(SLOT, 'exited', 'claude exited with code 1; restarting it', ago(90 - i));
    repo.addEvent(SLOT, 'restarted', 'restarted to apply an edit', ago(50));
    repo.addEvent(SLOT, 'exited', 'claude exited with code 1; restarting it', ago(40));
    expect(exits.recent(SLOT)).toBe(1);
    repo.addEvent(SLOT, 'restarted', 'restarted by the admin', ago(30));
    expect(exits.recent(SLOT)).toBe(0);
  });
});
