import { createStore } from 'zustand/vanilla';
import type { ConsoleRef } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';

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
  restore(refs: ConsoleRef[], clipboardAlwaysAllowed?: Array<{ hostId: string; slotId: string }>): void;
  /** Slots (`host/slot`) whose clipboard writes (OSC 52) are copied without asking; kept in the preferences. */
  clipboardAlways: string[];
  setClipboardAlways(hostId: string, slotId: string, allowed: boolean): void;
}

export const slotKey = (hostId: string, slotId: string): string => `${hostId}/${slotId}`;

export const consoleKey = (ref: ConsoleRef): string => `${ref.hostId}/${ref.slotId}/${ref.mode}`;

/** Open consoles as tabs; the list is kept in the preferences, so the same consoles are open at the next start. */
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
    restore(refs, clipboardAlwaysAllowed = []) {
      const tabs = refs.map((ref) => ({ ...ref, key: consoleKey(ref) }));
      set({
        tabs,
        active: tabs[0]?.key ?? null,
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
  let timer: ReturnType<typeof setTimeout> | null = null;
  store.subscribe((state, previous) => {
    if (state.tabs === previous.tabs) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      void ipc
        .invoke('app:set-preferences', {
          consoles: state.tabs.map(({ hostId, slotId, mode }) => ({ hostId, slotId, mode })),
        })
        .catch(() => undefined);
    }, 300);
  });
  return store;
}
