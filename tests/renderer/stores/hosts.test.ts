import { describe, expect, it, vi } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createHostsStore } from '../../../src/renderer/src/stores/hosts';
import type { Host } from '../../../src/shared/ipc/contract';
import { fakeIpc, host, status } from '../fake-ipc';

function setup(initial: Host[]) {
  let listed = initial;
  const ipc = fakeIpc({ 'hosts:list': () => ({ hosts: listed }) });
  const store = createHostsStore(ipc.client);
  return {
    ipc,
    store,
    /** What main's `hosts:list` answers from now on. */
    list: (hosts: Host[]): void => {
      listed = hosts;
    },
  };
}

describe('hosts store', () => {
  it('starts empty and holds the listed hosts after load', async () => {
    const { store } = setup([host('local', { kind: 'local' }), host('prod')]);
    expect(store.getState()).toMatchObject({ hosts: [], loaded: false });
    await store.getState().load();
    expect(store.getState().loaded).toBe(true);
    expect(store.getState().hosts.map((h) => h.id)).toEqual(['local', 'prod']);
  });

  it('shows a status pushed by main on the host it belongs to, and only there', async () => {
    const { ipc, store } = setup([host('prod'), host('stage')]);
    await store.getState().load();
    const connecting = status('connecting', { since: '2024-01-02T00:00:00.000Z' });
    ipc.emit('hosts:status', { hostId: 'prod', status: connecting });
    expect(store.getState().hosts.find((h) => h.id === 'prod')?.status).toEqual(connecting);
    expect(store.getState().hosts.find((h) => h.id === 'stage')?.status.state).toBe('disconnected');
  });

  it('reloads the list when main says the hosts changed', async () => {
    const { ipc, store, list } = setup([host('prod')]);
    await store.getState().load();
    list([host('prod'), host('added-elsewhere')]);
    ipc.emit('hosts:changed', {});
    await vi.waitFor(() => expect(store.getState().hosts.map((h) => h.id)).toEqual(['prod', 'added-elsewhere']));
  });

  it('shows the connected host and the reloaded list after connect', async () => {
    const { ipc, store, list } = setup([host('prod')]);
    await store.getState().load();
    const connected = host('prod', { status: status('connected') });
    ipc.handle('hosts:connect', () => connected);
    list([connected]);
    await expect(store.getState().connect('prod')).resolves.toEqual(connected);
    expect(ipc.callsTo('hosts:connect')).toEqual([{ id: 'prod' }]);
    expect(store.getState().hosts).toEqual([connected]);
  });

  it('still reloads the list when connect fails, so the failure shows, and passes the error on', async () => {
    const { ipc, store, list } = setup([host('prod')]);
    await store.getState().load();
    const refused = new IpcClientError({ code: 'SSH_AUTH_FAILED', message: 'The server refused the key.' });
    ipc.handle('hosts:connect', () => {
      throw refused;
    });
    const failed = status('failed', { error: { code: 'SSH_AUTH_FAILED', message: 'The server refused the key.' } });
    list([host('prod', { status: failed })]);

    await expect(store.getState().connect('prod')).rejects.toBe(refused);
    expect(store.getState().hosts[0]?.status).toEqual(failed);
    expect(ipc.callsTo('hosts:list')).toHaveLength(2);
  });

  it('adds a created host to the list', async () => {
    const { ipc, store } = setup([host('prod')]);
    await store.getState().load();
    const created = host('stage', { name: 'Staging' });
    ipc.handle('hosts:create', () => created);
    const input = { name: 'Staging', address: 'stage.example.com', user: 'ubuntu', auth: { method: 'agent' as const } };
    await expect(store.getState().create(input)).resolves.toEqual(created);
    expect(ipc.callsTo('hosts:create')).toEqual([input]);
    expect(store.getState().hosts.map((h) => h.id)).toEqual(['prod', 'stage']);
  });

  it('replaces an updated host in place', async () => {
    const { ipc, store } = setup([host('prod'), host('stage')]);
    await store.getState().load();
    const renamed = host('prod', { name: 'Production EU' });
    ipc.handle('hosts:update', () => renamed);
    await store.getState().update('prod', { name: 'Production EU' });
    expect(ipc.callsTo('hosts:update')).toEqual([{ id: 'prod', changes: { name: 'Production EU' } }]);
    expect(store.getState().hosts.map((h) => h.name)).toEqual(['Production EU', 'stage']);
  });

  it('drops a removed host from the list', async () => {
    const { ipc, store } = setup([host('prod'), host('stage')]);
    await store.getState().load();
    ipc.handle('hosts:remove', () => ({ ok: true }));
    await store.getState().remove('prod');
    expect(ipc.callsTo('hosts:remove')).toEqual([{ id: 'prod' }]);
    expect(store.getState().hosts.map((h) => h.id)).toEqual(['stage']);
  });

  it('keeps a host whose removal main refused', async () => {
    const { ipc, store } = setup([host('local', { kind: 'local' })]);
    await store.getState().load();
    const readOnly = new IpcClientError({ code: 'HOST_READ_ONLY', message: 'This computer cannot be removed.' });
    ipc.handle('hosts:remove', () => {
      throw readOnly;
    });
    await expect(store.getState().remove('local')).rejects.toBe(readOnly);
    expect(store.getState().hosts.map((h) => h.id)).toEqual(['local']);
  });
});
