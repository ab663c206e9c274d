import { createStore } from 'zustand/vanilla';
import type { CreateSlotBody, IpcInput, Slot } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';
import { IpcClientError } from '../lib/ipc';

export interface HostSlots {
  slots: Slot[];
  error: { code: string; message: string } | null;
  loadedAt: number | null;
}

export interface SlotsState {
  byHost: Record<string, HostSlots>;
  refresh(hostId: string): Promise<void>;
  create(hostId: string, slot: CreateSlotBody): Promise<Slot>;
  start(hostId: string, slotId: string): Promise<void>;
  stop(hostId: string, slotId: string): Promise<void>;
  restart(hostId: string, slotId: string): Promise<void>;
  /** Changes a slot's settings; the agent restarts a running slot when the change needs it. */
  update(hostId: string, slotId: string, changes: IpcInput<'slots:update'>['changes']): Promise<Slot>;
  remove(hostId: string, slotId: string, workDir: 'keep' | 'remove'): Promise<void>;
  forget(hostId: string): void;
}

const EMPTY: HostSlots = { slots: [], error: null, loadedAt: null };

/** The slots of each connected host, refreshed by polling (and at once after each change). */
export function createSlotsStore(ipc: IpcClient) {
  return createStore<SlotsState>()((set, get) => {
    const put = (hostId: string, patch: Partial<HostSlots>): void => {
      set({ byHost: { ...get().byHost, [hostId]: { ...(get().byHost[hostId] ?? EMPTY), ...patch } } });
    };
    const replace = (hostId: string, slot: Slot): void => {
      const slots = get().byHost[hostId]?.slots ?? [];
      put(hostId, {
        slots: slots.some((s) => s.id === slot.id) ? slots.map((s) => (s.id === slot.id ? slot : s)) : [...slots, slot],
      });
    };
    const change = async (hostId: string, run: () => Promise<Slot | null>): Promise<void> => {
      const slot = await run();
      if (slot) replace(hostId, slot);
      void get().refresh(hostId);
    };
    return {
      byHost: {},
      async refresh(hostId) {
        try {
          const { slots } = await ipc.invoke('slots:list', { hostId });
          put(hostId, { slots, error: null, loadedAt: Date.now() });
        } catch (error) {
          const shape =
            error instanceof IpcClientError
              ? { code: error.code, message: error.message }
              : { code: 'UNKNOWN', message: String(error) };
          put(hostId, { error: shape });
        }
      },
      async create(hostId, slot) {
        const created = await ipc.invoke('slots:create', { hostId, slot });
        replace(hostId, created);
        return created;
      },
      start: (hostId, slotId) => change(hostId, () => ipc.invoke('slots:start', { hostId, slotId })),
      stop: (hostId, slotId) => change(hostId, () => ipc.invoke('slots:stop', { hostId, slotId })),
      restart: (hostId, slotId) => change(hostId, () => ipc.invoke('slots:restart', { hostId, slotId })),
      async update(hostId, slotId, changes) {
        const updated = await ipc.invoke('slots:update', { hostId, slotId, changes });
        replace(hostId, updated);
        return updated;
      },
      async remove(hostId, slotId, workDir) {
        await ipc.invoke('slots:delete', { hostId, slotId, workDir });
        put(hostId, { slots: (get().byHost[hostId]?.slots ?? []).filter((s) => s.id !== slotId) });
      },
      forget(hostId) {
        const next = { ...get().byHost };
        delete next[hostId];
        set({ byHost: next });
      },
    };
  });
}
