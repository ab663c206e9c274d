import { createStore } from 'zustand/vanilla';
import type { CreatedShare, CreateShareBody, Share } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';
import { errorShape, type ErrorShape } from './errors';

export interface SlotShares {
  shares: Share[];
  error: ErrorShape | null;
  loadedAt: number | null;
}

export const sharesKey = (hostId: string, slotId: string): string => `${hostId}/${slotId}`;

export interface SharesState {
  /** By sharesKey(hostId, slotId). Never a link: the agent keeps only the tokens' hashes, and so does this store. */
  bySlot: Record<string, SlotShares>;
  load(hostId: string, slotId: string): Promise<void>;
  /** The answer holds the link and the iframe snippet: show them once, keep them nowhere. */
  create(hostId: string, slotId: string, share: CreateShareBody): Promise<CreatedShare>;
  revoke(hostId: string, slotId: string, shareId: string): Promise<Share>;
}

/** The share links of slots, as the agent lists them (state, viewers now, opens), reloaded after each change. */
export function createSharesStore(ipc: IpcClient) {
  return createStore<SharesState>()((set, get) => {
    const put = (key: string, patch: Partial<SlotShares>): void => {
      const current = get().bySlot[key] ?? { shares: [], error: null, loadedAt: null };
      set({ bySlot: { ...get().bySlot, [key]: { ...current, ...patch } } });
    };
    const load = async (hostId: string, slotId: string): Promise<void> => {
      const key = sharesKey(hostId, slotId);
      try {
        const { shares } = await ipc.invoke('shares:list', { hostId, slotId });
        put(key, { shares, error: null, loadedAt: Date.now() });
      } catch (error) {
        put(key, { error: errorShape(error) });
      }
    };
    return {
      bySlot: {},
      load,
      async create(hostId, slotId, share) {
        const created = await ipc.invoke('shares:create', { hostId, slotId, share });
        // The list gets the share without its link: the link stays with the caller, shown once.
        const key = sharesKey(hostId, slotId);
        const others = (get().bySlot[key]?.shares ?? []).filter((s) => s.id !== created.share.id);
        put(key, { shares: [created.share, ...others] });
        void load(hostId, slotId);
        return created;
      },
      async revoke(hostId, slotId, shareId) {
        const revoked = await ipc.invoke('shares:revoke', { hostId, shareId });
        const key = sharesKey(hostId, slotId);
        put(key, { shares: (get().bySlot[key]?.shares ?? []).map((s) => (s.id === revoked.id ? revoked : s)) });
        return revoked;
      },
    };
  });
}
