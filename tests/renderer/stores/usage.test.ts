import { describe, expect, it } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createUsageStore } from '../../../src/renderer/src/stores/usage';
import type { UsageSummary } from '../../../src/shared/ipc/contract';
import { fakeIpc } from '../fake-ipc';

const NOW = Date.parse('2026-03-10T15:20:00Z');

const summary = (groupBy: UsageSummary['groupBy'], totalTokens: number): UsageSummary => ({
  from: '',
  to: '',
  bucket: 'day',
  groupBy,
  totals: {
    requests: 1,
    errors: 0,
    inputTokens: totalTokens,
    outputTokens: 0,
    cacheCreationTokens: 0,
    cacheReadTokens: 0,
    totalTokens,
    costUsd: 0,
  },
  groups: [],
  series: [],
});

function setup() {
  const ipc = fakeIpc({
    'usage:summary': (input: { groupBy: UsageSummary['groupBy'] }) => summary(input.groupBy, 42),
    'usage:rows': () => ({ rows: [], nextCursor: null }),
    'usage:export': () => ({ fileName: 'f.csv', mimeType: 'text/csv', bytes: 1, savedTo: null, content: 'x' }),
  });
  let now = NOW;
  const store = createUsageStore(ipc.client, () => now);
  return { ipc, store, later: (ms: number) => (now += ms) };
}

describe('usage store', () => {
  it('shows the last 7 UTC days by day at first, by model and by user', async () => {
    const { ipc, store } = setup();
    await store.getState().load('prod');
    const range = { from: '2026-03-04T00:00:00.000Z', to: '2026-03-11T00:00:00.000Z', bucket: 'day' };
    expect(ipc.callsTo('usage:summary')).toEqual([
      { hostId: 'prod', ...range, groupBy: 'model' },
      { hostId: 'prod', ...range, groupBy: 'user' },
    ]);
    expect(ipc.callsTo('usage:rows')).toEqual([]);
    expect(store.getState().byModel?.groupBy).toBe('model');
    expect(store.getState().byOwner?.groupBy).toBe('user');
  });

  it('drills into a user: their models, their keys and their latest requests; and back out', async () => {
    const { ipc, store } = setup();
    await store.getState().load('prod');
    await store.getState().drillDown({ id: 'u_aaaaaaaaaa', label: 'ada' });
    const calls = ipc.callsTo('usage:summary').slice(2);
    expect(calls).toMatchObject([
      { groupBy: 'model', userId: 'u_aaaaaaaaaa' },
      { groupBy: 'key', userId: 'u_aaaaaaaaaa' },
    ]);
    expect(ipc.callsTo('usage:rows')).toMatchObject([{ hostId: 'prod', userId: 'u_aaaaaaaaaa', limit: 50 }]);
    expect(store.getState().rows).toEqual([]);
    await store.getState().drillDown(null);
    expect(ipc.callsTo('usage:summary').slice(4)).toMatchObject([{ groupBy: 'model' }, { groupBy: 'user' }]);
    expect(store.getState().user).toBeNull();
  });

  it('moves a preset range along with the clock when reloading, and keeps a custom one', async () => {
    const { ipc, store, later } = setup();
    await store.getState().setPreset('24h');
    await store.getState().load('prod');
    later(3_600_000);
    await store.getState().load('prod');
    const froms = ipc.callsTo('usage:summary').map((c) => (c as { from: string; bucket: string }).from);
    expect(froms).toEqual([
      '2026-03-09T16:00:00.000Z',
      '2026-03-09T16:00:00.000Z',
      '2026-03-09T17:00:00.000Z',
      '2026-03-09T17:00:00.000Z',
    ]);
    const custom = {
      preset: 'custom' as const,
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-02-01T00:00:00.000Z',
      bucket: 'day' as const,
    };
    await store.getState().setRange(custom);
    later(86_400_000);
    await store.getState().load('prod');
    expect(store.getState().range).toEqual(custom);
  });

  it('keeps the last figures and shows why when the agent refuses', async () => {
    const { ipc, store } = setup();
    await store.getState().load('prod');
    ipc.handle('usage:summary', () => {
      throw new IpcClientError({ code: 'USAGE_RANGE_INVALID', message: 'The range is too long.' });
    });
    await store.getState().load('prod');
    expect(store.getState().error).toEqual({ code: 'USAGE_RANGE_INVALID', message: 'The range is too long.' });
    expect(store.getState().byModel?.totals.totalTokens).toBe(42);
  });

  it('exports the range and user on screen', async () => {
    const { ipc, store } = setup();
    await store.getState().load('prod');
    await store.getState().drillDown({ id: 'u_aaaaaaaaaa', label: 'ada' });
    await store.getState().exportRows('json');
    expect(ipc.callsTo('usage:export')).toEqual([
      {
        hostId: 'prod',
        from: '2026-03-04T00:00:00.000Z',
        to: '2026-03-11T00:00:00.000Z',
        format: 'json',
        userId: 'u_aaaaaaaaaa',
      },
    ]);
  });
});
