import { createStore } from 'zustand/vanilla';
import type { ConsoleRef } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';

/** As many consoles as the preferences keep (src/shared/ipc/contract.ts: Preferences.consoles). */
export const MAX_SAVED_CONSOLES = 32;

export interface ConsoleTab extends ConsoleRef {
  key: string;
}

export interface ConsolesState {
  tabs: ConsoleTab[];
  active: string | null;
  open(ref: ConsoleRef): void;
  close(key: string): void;
  activate(key: string): void;
  cycle(step: 1 | -1): void;
  /** Closes the tabs of a slot that is gone. */
  closeSlot(hostId: string, slotId: string): void;
  /** The saved consoles as tabs, `active` the active one again (else the first). */
  restore(
    refs: ConsoleRef[],
    clipboardAlwaysAllowed?: Array<{ hostId: string; slotId: string }>,
    active?: ConsoleRef | null,
  ): void;
  /** Slots (`host/slot`) whose clipboard writes (OSC 52) are copied without asking; kept in the preferences. */
  clipboardAlways: string[];
  setClipboardAlways(hostId: string, slotId: string, allowed: boolean): void;
}

export const slotKey = (hostId: string, slotId: string): string => `${hostId}/${slotId}`;

export const consoleKey = (ref: ConsoleRef): string => `${ref.hostId}/${ref.slotId}/${ref.mode}`;

/**
 * Open consoles as tabs; the list and the active one are kept in the preferences, so the same consoles are open, the
 * same one in front, at the next start or reload.
 */
export function createConsolesStore(ipc: IpcClient) {
  const store = createStore<ConsolesState>()((set, get) => ({
    tabs: [],
    active: null,
    clipboardAlways: [],
    open(ref) {
      const key = consoleKey(ref);
      if (!get().tabs.some((tab) => tab.key === key)) set({ tabs: [...get().tabs, { ...ref, key }] });
      set({ active: key });
    },
    close(key) {
      const tabs = get().tabs;
      const index = tabs.findIndex((tab) => tab.key === key);
      if (index < 0) return;
      const next = tabs.filter((tab) => tab.key !== key);
      const active = get().active === key ? (next[Math.min(index, next.length - 1)]?.key ?? null) : get().active;
      set({ tabs: next, active });
    },
    activate(key) {
      if (get().tabs.some((tab) => tab.key === key)) set({ active: key });
    },
    cycle(step) {
      const { tabs, active } = get();
      if (tabs.length === 0) return;
      const index = tabs.findIndex((tab) => tab.key === active);
      set({ active: tabs[(index + step + tabs.length) % tabs.length]!.key });
    },
    closeSlot(hostId, slotId) {
      for (const tab of get().tabs.filter((t) => t.hostId === hostId && t.slotId === slotId)) get().close(tab.key);
    },
    restore(refs, clipboardAlwaysAllowed = [], active = null) {
      const tabs = refs.map((ref) => ({ ...ref, key: consoleKey(ref) }));
      const activeKey = active ? consoleKey(active) : null;
      set({
        tabs,
        active: tabs.find((tab) => tab.key === activeKey)?.key ?? tabs[0]?.key ?? null,
        clipboardAlways: clipboardAlwaysAllowed.map(({ hostId, slotId }) => slotKey(hostId, slotId)),
      });
    },
    setClipboardAlways(hostId, slotId, allowed) {
      const key = slotKey(hostId, slotId);
      const others = get().clipboardAlways.filter((k) => k !== key);
      const next = allowed ? [...others, key] : others;
      set({ clipboardAlways: next });
      const refs = next.map((k) => {
        const [host = '', slot = ''] = k.split('/');
        return { hostId: host, slotId: slot };
      });
      void ipc.invoke('app:set-preferences', { clipboardAlwaysAllowed: refs }).catch(() => undefined);
    },
  }));
  // Saved at the end of the turn that changed them (a restore or closing a slot's tabs is one save), not later: a
  // reload right after switching tabs must find the new active one.
  let saving = false;
  store.subscribe((state, previous) => {
    if ((state.tabs === previous.tabs && state.active === previous.active) || saving) return;
    saving = true;
    queueMicrotask(() => {
      saving = false;
      const { tabs, active } = store.getState();
      const ref = ({ hostId, slotId, mode }: ConsoleRef): ConsoleRef => ({ hostId, slotId, mode });
      const activeTab = tabs.find((tab) => tab.key === active);
      // The preferences keep at most MAX_SAVED_CONSOLES (a longer list would be refused and nothing saved): the first
      // ones, and always the active one.
      const kept = tabs.filter((tab, index) => index < MAX_SAVED_CONSOLES - 1 || tab.key === active);
      void ipc
        .invoke('app:set-preferences', {
          consoles: kept.slice(0, MAX_SAVED_CONSOLES).map(ref),
          activeConsole: activeTab ? ref(activeTab) : null,
        })
        .catch(() => undefined);
    });
  });
  return store;
}
