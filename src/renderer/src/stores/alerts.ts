import { createStore } from 'zustand/vanilla';
import type {
  AlertFilter,
  AlertList,
  AlertRuleList,
  IpcInput,
  WebhookDelivery,
  WebhookSettings,
} from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';

export interface AlertCounts {
  unread: number;
  firing: number;
}

export interface AlertsState {
  /** Per host, what the bell shows (kept fresh by main's `alerts:changed`). */
  counts: Record<string, AlertCounts>;
  /** Asks a host for its counts now (the bell on start, before main's first event). */
  refreshCounts(hostId: string): Promise<void>;
  list(hostId: string, filter: AlertFilter, cursor?: string): Promise<AlertList>;
  markRead(hostId: string, mark: IpcInput<'alerts:read'>['mark']): Promise<void>;
  rules(hostId: string): Promise<AlertRuleList>;
  setRules(hostId: string, changes: IpcInput<'alerts:set-rules'>['changes']): Promise<AlertRuleList>;
  webhook(hostId: string): Promise<WebhookSettings>;
  setWebhook(hostId: string, changes: IpcInput<'alerts:set-webhook'>['changes']): Promise<WebhookSettings>;
  testWebhook(hostId: string): Promise<WebhookDelivery>;
}

/** Alerts of the hosts: counts for the bell; the Alerts view's lists, rules and webhook go through here. */
export function createAlertsStore(ipc: IpcClient) {
  const store = createStore<AlertsState>()((set, get) => {
    const putCounts = (hostId: string, counts: AlertCounts): void =>
      set({ counts: { ...get().counts, [hostId]: counts } });
    return {
      counts: {},
      async refreshCounts(hostId) {
        try {
          const list = await ipc.invoke('alerts:list', { hostId, filter: 'firing', limit: 1 });
          putCounts(hostId, { unread: list.unread, firing: list.firing });
        } catch {
          // An agent without alerts, or a host going away: the bell shows nothing for it.
        }
      },
      async list(hostId, filter, cursor) {
        const list = await ipc.invoke('alerts:list', { hostId, filter, limit: 100, ...(cursor ? { cursor } : {}) });
        putCounts(hostId, { unread: list.unread, firing: list.firing });
        return list;
      },
      async markRead(hostId, mark) {
        const result = await ipc.invoke('alerts:read', { hostId, mark });
        putCounts(hostId, { unread: result.unread, firing: get().counts[hostId]?.firing ?? 0 });
      },
      rules: (hostId) => ipc.invoke('alerts:rules', { hostId }),
      setRules: (hostId, changes) => ipc.invoke('alerts:set-rules', { hostId, changes }),
      webhook: (hostId) => ipc.invoke('alerts:webhook', { hostId }),
      setWebhook: (hostId, changes) => ipc.invoke('alerts:set-webhook', { hostId, changes }),
      testWebhook: (hostId) => ipc.invoke('alerts:test-webhook', { hostId }),
    };
  });
  ipc.on('alerts:changed', ({ hostId, unread, firing }) =>
    store.setState({ counts: { ...store.getState().counts, [hostId]: { unread, firing } } }),
  );
  return store;
}
