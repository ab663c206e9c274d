import { createStore } from 'zustand/vanilla';
import type {
  GatewayStatus,
  IpcInput,
  IpcOutput,
  RefusalCount,
  UpstreamTestResult,
} from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';
import { errorShape, type ErrorShape } from './errors';

export interface HostGateway {
  status: GatewayStatus | null;
  error: ErrorShape | null;
}

export interface GatewayState {
  byHost: Record<string, HostGateway>;
  refresh(hostId: string): Promise<void>;
  update(hostId: string, changes: IpcInput<'gateway:update'>['changes']): Promise<GatewayStatus>;
  setUpstreamKey(hostId: string, apiKey: string): Promise<GatewayStatus>;
  /** One real call to upstream with the organisation's key: ok and latency, or why not. */
  testUpstream(hostId: string): Promise<UpstreamTestResult>;
  /** A page of the request log (refused requests), newest first; the list's state lives in its view. */
  refusals(hostId: string, query: IpcInput<'gateway:refusals'>['query']): Promise<IpcOutput<'gateway:refusals'>>;
  refusalCount(hostId: string, query: IpcInput<'gateway:refusal-count'>['query']): Promise<RefusalCount>;
  forget(hostId: string): void;
}

/** Each host's gateway: its URL, upstream key state and legacy mode (the app-wide banner reads it). */
export function createGatewayStore(ipc: IpcClient) {
  return createStore<GatewayState>()((set, get) => {
    const put = (hostId: string, patch: Partial<HostGateway>): void => {
      const current = get().byHost[hostId] ?? { status: null, error: null };
      set({ byHost: { ...get().byHost, [hostId]: { ...current, ...patch } } });
    };
    const keep = (hostId: string, status: GatewayStatus): GatewayStatus => {
      put(hostId, { status, error: null });
      return status;
    };
    return {
      byHost: {},
      async refresh(hostId) {
        try {
          keep(hostId, await ipc.invoke('gateway:status', { hostId }));
        } catch (error) {
          // The last status stays: a banner about legacy mode must not vanish because one poll failed.
          put(hostId, { error: errorShape(error) });
        }
      },
      async update(hostId, changes) {
        return keep(hostId, await ipc.invoke('gateway:update', { hostId, changes }));
      },
      async setUpstreamKey(hostId, apiKey) {
        return keep(hostId, await ipc.invoke('gateway:set-upstream-key', { hostId, apiKey }));
      },
      testUpstream: (hostId) => ipc.invoke('gateway:test-upstream', { hostId }),
      refusals: (hostId, query) => ipc.invoke('gateway:refusals', { hostId, query }),
      refusalCount: (hostId, query) => ipc.invoke('gateway:refusal-count', { hostId, query }),
      forget(hostId) {
        const next = { ...get().byHost };
        delete next[hostId];
        set({ byHost: next });
      },
    };
  });
}
