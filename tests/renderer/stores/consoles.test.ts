import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { consoleKey, createConsolesStore, MAX_SAVED_CONSOLES } from '../../../src/renderer/src/stores/consoles';
import type { ConsoleRef } from '../../../src/shared/ipc/contract';
import { fakeIpc } from '../fake-ipc';

const ref = (slotId: string, mode: ConsoleRef['mode'] = 'writable', hostId = 'prod'): ConsoleRef => ({
  hostId,
  slotId,
  mode,
});

const A = ref('aaaaaaaaaa');
const B = ref('bbbbbbbbbb');
const C = ref('cccccccccc');

function setup() {
  const ipc = fakeIpc({ 'app:set-preferences': (input: object) => ({ ...input }) });
  const store = createConsolesStore(ipc.client);
  return { ipc, store, keys: () => store.getState().tabs.map((tab) => tab.key) };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('consoles store', () => {
  it('opens a console as a new tab and makes it the active one', () => {
    const { store, keys } = setup();
    store.getState().open(A);
    store.getState().open(B);
    expect(keys()).toEqual([consoleKey(A), consoleKey(B)]);
    expect(store.getState().tabs[1]).toEqual({ ...B, key: consoleKey(B) });
    expect(store.getState().active).toBe(consoleKey(B));
  });

  it('switches to the existing tab instead of opening the same console twice', () => {
    const { store, keys } = setup();
    store.getState().open(A);
    store.getState().open(B);
    store.getState().open({ ...A });
    expect(keys()).toEqual([consoleKey(A), consoleKey(B)]);
    expect(store.getState().active).toBe(consoleKey(A));
  });

  it('gives the writable and the read-only console of one slot their own tabs', () => {
    const { store, keys } = setup();
    store.getState().open(ref('aaaaaaaaaa', 'writable'));
    store.getState().open(ref('aaaaaaaaaa', 'read-only'));
    expect(keys()).toEqual(['prod/aaaaaaaaaa/writable', 'prod/aaaaaaaaaa/read-only']);
  });

  it('activates the tab that takes the place of the closed active one', () => {
    const { store, keys } = setup();
    store.getState().restore([A, B, C]);
    store.getState().activate(consoleKey(B));
    store.getState().close(consoleKey(B));
    expect(keys()).toEqual([consoleKey(A), consoleKey(C)]);
    expect(store.getState().active).toBe(consoleKey(C));
  });

  it('activates the tab before when the last tab was the active one', () => {
    const { store } = setup();
    store.getState().restore([A, B, C]);
    store.getState().activate(consoleKey(C));
    store.getState().close(consoleKey(C));
    expect(store.getState().active).toBe(consoleKey(B));
  });

  it('keeps the active tab when another one is closed, and has none once all are closed', () => {
    const { store } = setup();
    store.getState().restore([A, B]);
    store.getState().close(consoleKey(B));
    expect(store.getState().active).toBe(consoleKey(A));
    store.getState().close(consoleKey(A));
    expect(store.getState()).toMatchObject({ tabs: [], active: null });
  });

  it('ignores activating a tab that is not open', () => {
    const { store } = setup();
    store.getState().restore([A]);
    store.getState().activate(consoleKey(B));
    expect(store.getState().active).toBe(consoleKey(A));
  });

  it('cycles through the tabs in both directions, wrapping around at the ends', () => {
    const { store } = setup();
    store.getState().restore([A, B, C]);
    const seen: Array<string | null> = [];
    for (let i = 0; i < 3; i += 1) {
      store.getState().cycle(1);
      seen.push(store.getState().active);
    }
    expect(seen).toEqual([consoleKey(B), consoleKey(C), consoleKey(A)]);
    store.getState().cycle(-1);
    expect(store.getState().active).toBe(consoleKey(C));
  });

  it('closes both tabs of a slot that is gone and keeps the others', () => {
    const { store, keys } = setup();
    const other = ref('aaaaaaaaaa', 'writable', 'stage');
    store.getState().restore([ref('aaaaaaaaaa', 'writable'), B, ref('aaaaaaaaaa', 'read-only'), other]);
    store.getState().closeSlot('prod', 'aaaaaaaaaa');
    expect(keys()).toEqual([consoleKey(B), consoleKey(other)]);
    expect(store.getState().active).toBe(consoleKey(B));
  });

  it('restores saved consoles as tabs with the first one active', () => {
    const { store, keys } = setup();
    store.getState().open(C);
    store.getState().restore([A, B]);
    expect(keys()).toEqual([consoleKey(A), consoleKey(B)]);
    expect(store.getState().active).toBe(consoleKey(A));
    store.getState().restore([]);
    expect(store.getState()).toMatchObject({ tabs: [], active: null });
  });

  it('restores the tab that was active, or the first when that one is not among them', () => {
    const { store } = setup();
    store.getState().restore([A, B, C], [], B);
    expect(store.getState().active).toBe(consoleKey(B));
    store.getState().restore([A, C], [], B);
    expect(store.getState().active).toBe(consoleKey(A));
  });

  it('saves the open consoles and the active one once per change, before the next task (a reload may follow)', async () => {
    const { ipc, store } = setup();
    store.getState().restore([A, B, C]);
    store.getState().close(consoleKey(C));
    await Promise.resolve();
    expect(ipc.callsTo('app:set-preferences')).toEqual([{ consoles: [A, B], activeConsole: A }]);

    store.getState().activate(consoleKey(B));
    await Promise.resolve();
    expect(ipc.callsTo('app:set-preferences').at(-1)).toEqual({ consoles: [A, B], activeConsole: B });
    store.getState().close(consoleKey(A));
    store.getState().close(consoleKey(B));
    await Promise.resolve();
    expect(ipc.callsTo('app:set-preferences').at(-1)).toEqual({ consoles: [], activeConsole: null });
    expect(ipc.callsTo('app:set-preferences')).toHaveLength(3);
  });

  it('saves at most as many consoles as the preferences keep, the active one always among them', async () => {
    const { ipc, store } = setup();
    const many = Array.from({ length: MAX_SAVED_CONSOLES + 8 }, (_, i) => ref(`slot${String(i).padStart(6, '0')}`));
    for (const console of many) store.getState().open(console);
    await Promise.resolve();
    const saved = ipc.callsTo('app:set-preferences').at(-1) as { consoles: ConsoleRef[]; activeConsole: ConsoleRef };
    expect(saved.consoles).toHaveLength(MAX_SAVED_CONSOLES);
    expect(saved.activeConsole).toEqual(many.at(-1));
    expect(saved.consoles).toContainEqual(many.at(-1));
    expect(saved.consoles.slice(0, MAX_SAVED_CONSOLES - 1)).toEqual(many.slice(0, MAX_SAVED_CONSOLES - 1));
  });

  it('does not save when nothing changed', async () => {
    const { ipc, store } = setup();
    store.getState().restore([A, B]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(ipc.callsTo('app:set-preferences')).toHaveLength(1);
    store.getState().activate(consoleKey(A));
    store.getState().open(A);
    store.getState().activate(consoleKey(C));
    await vi.advanceTimersByTimeAsync(1000);
    expect(ipc.callsTo('app:set-preferences')).toHaveLength(1);
  });

  it('keeps working when saving the consoles fails', async () => {
    const { ipc, store, keys } = setup();
    ipc.handle('app:set-preferences', () => {
      throw new Error('main is gone');
    });
    store.getState().open(A);
    await vi.advanceTimersByTimeAsync(0);
    expect(ipc.callsTo('app:set-preferences')).toHaveLength(1);
    store.getState().open(B);
    expect(keys()).toEqual([consoleKey(A), consoleKey(B)]);
  });

  it("remembers a slot's 'always allow clipboard writes' in the preferences, and restores it", () => {
    const { ipc, store } = setup();
    store.getState().setClipboardAlways('prod', 'aaaaaaaaaa', true);
    store.getState().setClipboardAlways('prod', 'bbbbbbbbbb', true);
    store.getState().setClipboardAlways('prod', 'aaaaaaaaaa', false);
    expect(store.getState().clipboardAlways).toEqual(['prod/bbbbbbbbbb']);
    expect(ipc.callsTo('app:set-preferences').at(-1)).toEqual({
      clipboardAlwaysAllowed: [{ hostId: 'prod', slotId: 'bbbbbbbbbb' }],
    });
    const next = setup().store;
    next.getState().restore([A], [{ hostId: 'prod', slotId: 'cccccccccc' }]);
    expect(next.getState().clipboardAlways).toEqual(['prod/cccccccccc']);
  });
});
