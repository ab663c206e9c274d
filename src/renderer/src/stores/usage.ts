import { createStore } from 'zustand/vanilla';
import type { UsageExportResult, UsageRow, UsageSummary } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';
import { presetRange, type RangePreset, type UsageRange } from '../lib/usage-range';
import { errorShape, type ErrorShape } from './errors';

export const DRILL_DOWN_ROWS = 50;

export interface UsageState {
  range: UsageRange;
  /** The user drilled into, or null for everyone. */
  user: { id: string; label: string } | null;
  hostId: string | null;
  /** Totals and series grouped by model (for the charts), within the user when one is picked. */
  byModel: UsageSummary | null;
  /** Top users; when a user is picked, that user's keys instead. */
  byOwner: UsageSummary | null;
  /** The picked user's latest requests. */
  rows: UsageRow[] | null;
  loading: boolean;
  error: ErrorShape | null;
  setRange(range: UsageRange): Promise<void>;
  /** A preset range as of now. */
  setPreset(preset: Exclude<RangePreset, 'custom'>): Promise<void>;
  drillDown(user: { id: string; label: string } | null): Promise<void>;
  load(hostId: string): Promise<void>;
  exportRows(format: 'csv' | 'json'): Promise<UsageExportResult>;
}

/** The Usage view's state: one range, one optional user, the summaries of that selection. */
export function createUsageStore(ipc: IpcClient, now: () => number = Date.now) {
  let ticket = 0;
  return createStore<UsageState>()((set, get) => ({
    range: presetRange('7d', now()),
    user: null,
    hostId: null,
    byModel: null,
    byOwner: null,
    rows: null,
    loading: false,
    error: null,
    async setRange(range) {
      set({ range });
      if (get().hostId) await get().load(get().hostId!);
    },
    setPreset(preset) {
      return get().setRange(presetRange(preset, now()));
    },
    async drillDown(user) {
      set({ user, rows: null });
      if (get().hostId) await get().load(get().hostId!);
    },
    async load(hostId) {
      const mine = (ticket += 1);
      if (hostId !== get().hostId) set({ hostId, byModel: null, byOwner: null, rows: null, user: null });
      // A preset follows the clock: "last 24 hours" reloaded an hour later covers the new hour.
      const current = get().range;
      const range = current.preset === 'custom' ? current : presetRange(current.preset, now());
      const userId = get().user?.id;
      const base = { hostId, from: range.from, to: range.to, bucket: range.bucket, ...(userId ? { userId } : {}) };
      set({ range, loading: true });
      try {
        const [byModel, byOwner, rows] = await Promise.all([
          ipc.invoke('usage:summary', { ...base, groupBy: 'model' }),
          ipc.invoke('usage:summary', { ...base, groupBy: userId ? 'key' : 'user' }),
          userId
            ? ipc.invoke('usage:rows', { hostId, from: range.from, to: range.to, userId, limit: DRILL_DOWN_ROWS })
            : Promise.resolve(null),
        ]);
        if (mine !== ticket) return;
        set({ byModel, byOwner, rows: rows?.rows ?? null, loading: false, error: null });
      } catch (error) {
        if (mine !== ticket) return;
        set({ loading: false, error: errorShape(error) });
      }
    },
    async exportRows(format) {
      const { hostId, range } = get();
      const userId = get().user?.id;
      if (!hostId) throw new Error('Pick a host first.');
      return ipc.invoke('usage:export', {
        hostId,
        from: range.from,
        to: range.to,
        format,
        ...(userId ? { userId } : {}),
      });
    },
  }));
}
