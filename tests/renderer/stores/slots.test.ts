import { describe, expect, it, vi } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createSlotsStore } from '../../../src/renderer/src/stores/slots';
import type { Slot } from '../../../src/shared/ipc/contract';
import { fakeIpc, slot } from '../fake-ipc';

function setup(initial: Slot[]) {
  const ipc = fakeIpc({ 'slots:list': () => ({ slots: initial }) });
  const store = createSlotsStore(ipc.client);
  return {
    ipc,
    store,
    ids: (hostId = 'prod') => store.getState().byHost[hostId]?.slots.map((s) => s.id),
  };
}

describe('slots store', () => {
  it('stores the slots of a host on refresh, with no error and the time they were loaded', async () => {
    const { ipc, store, ids } = setup([slot('aaaaaaaaaa'), slot('bbbbbbbbbb')]);
    await store.getState().refresh('prod');
    expect(ipc.callsTo('slots:list')).toEqual([{ hostId: 'prod' }]);
    expect(ids()).toEqual(['aaaaaaaaaa', 'bbbbbbbbbb']);
    expect(store.getState().byHost.prod?.error).toBeNull();
    expect(store.getState().byHost.prod?.loadedAt).toEqual(expect.any(Number));
    expect(store.getState().byHost.stage).toBeUndefined();
  });

  it('keeps the last slots and shows the code and message when a refresh fails', async () => {
    const { ipc, store, ids } = setup([slot('aaaaaaaaaa')]);
    await store.getState().refresh('prod');
    ipc.handle('slots:list', () => {
      throw new IpcClientError({ code: 'HOST_NOT_CONNECTED', message: 'Connect to prod first.' });
    });
    await store.getState().refresh('prod');
    expect(store.getState().byHost.prod?.error).toEqual({
      code: 'HOST_NOT_CONNECTED',
      message: 'Connect to prod first.',
    });
    expect(ids()).toEqual(['aaaaaaaaaa']);
  });

  it('clears the error once a refresh works again', async () => {
    const { ipc, store, ids } = setup([]);
    ipc.handle('slots:list', () => {
      throw new IpcClientError({ code: 'HOST_NOT_CONNECTED', message: 'Connect to prod first.' });
    });
    await store.getState().refresh('prod');
    expect(store.getState().byHost.prod?.error?.code).toBe('HOST_NOT_CONNECTED');

    ipc.handle('slots:list', () => ({ slots: [slot('aaaaaaaaaa')] }));
    await store.getState().refresh('prod');
    expect(store.getState().byHost.prod?.error).toBeNull();
    expect(ids()).toEqual(['aaaaaaaaaa']);
  });

  it('adds a created slot to its host', async () => {
    const { ipc, store, ids } = setup([slot('aaaaaaaaaa')]);
    await store.getState().refresh('prod');
    ipc.handle('slots:create', () => slot('cccccccccc', { name: 'review' }));
    const created = await store.getState().create('prod', { name: 'review' });
    expect(created.id).toBe('cccccccccc');
    expect(ipc.callsTo('slots:create')).toEqual([{ hostId: 'prod', slot: { name: 'review' } }]);
    expect(ids()).toEqual(['aaaaaaaaaa', 'cccccccccc']);
  });

  it('removes a deleted slot and passes on whether to remove its work directory', async () => {
    const { ipc, store, ids } = setup([slot('aaaaaaaaaa'), slot('bbbbbbbbbb')]);
    await store.getState().refresh('prod');
    ipc.handle('slots:delete', () => ({ ok: true }));
    await store.getState().remove('prod', 'aaaaaaaaaa', 'remove');
    expect(ipc.callsTo('slots:delete')).toEqual([{ hostId: 'prod', slotId: 'aaaaaaaaaa', workDir: 'remove' }]);
    expect(ids()).toEqual(['bbbbbbbbbb']);
  });

  it('shows the slot main returns for stop at once, then refreshes the host', async () => {
    const { ipc, store, ids } = setup([slot('aaaaaaaaaa'), slot('bbbbbbbbbb')]);
    await store.getState().refresh('prod');
    const stopped = slot('aaaaaaaaaa', { state: 'stopped', desiredState: 'stopped', pid: null });
    let answerRefresh: () => void = () => undefined;
    ipc.handle('slots:stop', () => stopped);
    ipc.handle('slots:list', () => new Promise((resolve) => (answerRefresh = () => resolve({ slots: [stopped] }))));

    await store.getState().stop('prod', 'aaaaaaaaaa');
    expect(ipc.callsTo('slots:stop')).toEqual([{ hostId: 'prod', slotId: 'aaaaaaaaaa' }]);
    expect(store.getState().byHost.prod?.slots).toEqual([stopped, slot('bbbbbbbbbb')]);

    await vi.waitFor(() => expect(ipc.callsTo('slots:list')).toHaveLength(2));
    answerRefresh();
    await vi.waitFor(() => expect(ids()).toEqual(['aaaaaaaaaa']));
  });

  it('shows an edited slot as the agent answered it, without waiting for the next refresh', async () => {
    const { ipc, store } = setup([slot('aaaaaaaaaa', { name: 'old' }), slot('bbbbbbbbbb')]);
    await store.getState().refresh('prod');
    ipc.handle('slots:update', () => slot('aaaaaaaaaa', { name: 'new' }));
    const saved = await store.getState().update('prod', 'aaaaaaaaaa', { name: 'new' });
    expect(saved.name).toBe('new');
    expect(ipc.callsTo('slots:update')).toEqual([{ hostId: 'prod', slotId: 'aaaaaaaaaa', changes: { name: 'new' } }]);
    expect(store.getState().byHost.prod?.slots.map((s) => s.name)).toEqual(['new', 'slot-bbbbbbbbbb']);
  });

  it('forgets the slots of a host', async () => {
    const { store } = setup([slot('aaaaaaaaaa')]);
    await store.getState().refresh('prod');
    store.getState().forget('prod');
    expect(store.getState().byHost.prod).toBeUndefined();
  });
});
