import { createStore } from 'zustand/vanilla';
import type { Host, HostStatus, IpcInput } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';

export interface HostsState {
  hosts: Host[];
  loaded: boolean;
  load(): Promise<void>;
  applyStatus(hostId: string, status: HostStatus): void;
  connect(id: string): Promise<Host>;
  disconnect(id: string): Promise<void>;
  create(input: IpcInput<'hosts:create'>): Promise<Host>;
  update(id: string, changes: IpcInput<'hosts:update'>['changes']): Promise<Host>;
  remove(id: string): Promise<void>;
  trustKey(id: string, fingerprint: string, replace: boolean): Promise<Host>;
}

/** Hosts and their live status (pushed by main as `hosts:status` events). */
export function createHostsStore(ipc: IpcClient) {
  const store = createStore<HostsState>()((set, get) => {
    const upsert = (host: Host): Host => {
      const hosts = get().hosts;
      set({
        hosts: hosts.some((h) => h.id === host.id) ? hosts.map((h) => (h.id === host.id ? host : h)) : [...hosts, host],
      });
      return host;
    };
    return {
      hosts: [],
      loaded: false,
      async load() {
        const { hosts } = await ipc.invoke('hosts:list', {});
        set({ hosts, loaded: true });
      },
      applyStatus(hostId, status) {
        set({ hosts: get().hosts.map((host) => (host.id === hostId ? { ...host, status } : host)) });
      },
      async connect(id) {
        try {
          return upsert(await ipc.invoke('hosts:connect', { id }));
        } finally {
          // Status events already carry the failure; reload so that the list holds it too.
          await get().load();
        }
      },
      async disconnect(id) {
        upsert(await ipc.invoke('hosts:disconnect', { id }));
      },
      async create(input) {
        return upsert(await ipc.invoke('hosts:create', input));
      },
      async update(id, changes) {
        return upsert(await ipc.invoke('hosts:update', { id, changes }));
      },
      async remove(id) {
        await ipc.invoke('hosts:remove', { id });
        set({ hosts: get().hosts.filter((host) => host.id !== id) });
      },
      async trustKey(id, fingerprint, replace) {
        try {
          return upsert(await ipc.invoke('hosts:trust-key', { id, fingerprint, replace }));
        } finally {
          await get().load();
        }
      },
    };
  });
  ipc.on('hosts:status', ({ hostId, status }) => store.getState().applyStatus(hostId, status));
  ipc.on(
    'hosts:changed',
    () =>
      void store
        .getState()
        .load()
        .catch(() => undefined),
  );
  return store;
}
