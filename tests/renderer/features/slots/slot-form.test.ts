import { describe, expect, it } from 'vitest';
import {
  commandOfForm,
  formOfSlot,
  joinArgs,
  parseEnv,
  slotChanges,
  splitArgs,
} from '../../../../src/renderer/src/features/slots/SlotDialogs';
import { slotProblem, slotStateLabel } from '../../../../src/renderer/src/features/slots/SlotStatus';
import { slot } from '../../fake-ipc';

const custom = slot('aaaaaaaaaa', {
  name: 'review',
  command: { preset: 'custom', command: 'claude', args: ['--model', 'claude sonnet', `it's`] },
  env: { B: '2', A: '1' },
  memoryLimitMb: 512,
});

describe('the edit slot form', () => {
  it('opens with the slot as it is, so saving without a change changes nothing', () => {
    const form = formOfSlot(custom);
    expect(form).toMatchObject({ name: 'review', preset: 'custom', command: 'claude', memory: '512' });
    expect(splitArgs(form.args)).toEqual(['--model', 'claude sonnet', `it's`]);
    expect(commandOfForm(form)).toEqual(custom.command);
    expect(slotChanges(custom, form, parseEnv(form.env).env)).toEqual({ changes: {}, restart: false });
  });

  it('renames without a restart, and says a restart is needed for a new command or env', () => {
    const form = formOfSlot(custom);
    expect(slotChanges(custom, { ...form, name: 'renamed' }, custom.env)).toEqual({
      changes: { name: 'renamed' },
      restart: false,
    });
    const edited = { ...form, args: '--model opus' };
    expect(slotChanges(custom, edited, custom.env)).toEqual({
      changes: { command: { preset: 'custom', command: 'claude', args: ['--model', 'opus'] } },
      restart: true,
    });
    // The same variables in another order are no change.
    expect(slotChanges(custom, form, { A: '1', B: '2' }).restart).toBe(false);
    expect(slotChanges(custom, form, { A: '1' })).toEqual({ changes: { env: { A: '1' } }, restart: true });
  });

  it('clears the memory limit with an empty field, and meters through a chosen owner', () => {
    const form = formOfSlot(custom);
    expect(slotChanges(custom, { ...form, memory: '' }, custom.env).changes).toEqual({ memoryLimitMb: null });
    expect(slotChanges(custom, { ...form, ownerId: 'u_0123456789', metered: true }, custom.env)).toEqual({
      changes: { ownerId: 'u_0123456789', metered: true },
      restart: true,
    });
  });

  it('quotes arguments so that they split back the same', () => {
    const args = ['a b', '', 'say "hi"', 'plain'];
    expect(splitArgs(joinArgs(args))).toEqual(args);
  });
});

describe('slot states as the sidebar shows them', () => {
  it('says how far a crash loop got, and why a slot failed or keeps restarting', () => {
    const restarting = slot('bbbbbbbbbb', {
      state: 'restarting',
      crashLoop: { exits: 3, limit: 5, windowSeconds: 120, lastExit: 'sh exited with code 127 (command not found)' },
    });
    expect(slotStateLabel(restarting)).toBe('restarting 3/5');
    expect(slotProblem(restarting)).toEqual({
      tone: 'restarting',
      text: 'sh exited with code 127 (command not found)',
    });
    const failed = slot('cccccccccc', { state: 'failed', failure: { reason: 'it ended 6 times', at: '2026-01-01' } });
    expect(slotStateLabel(failed)).toBe('failed');
    expect(slotProblem(failed)).toEqual({ tone: 'failed', text: 'it ended 6 times' });
    expect(slotProblem(slot('dddddddddd'))).toBeNull();
  });
});
