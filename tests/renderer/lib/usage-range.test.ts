import { describe, expect, it } from 'vitest';
import { bucketStarts, customRange, presetRange } from '../../../src/renderer/src/lib/usage-range';

const NOW = Date.parse('2026-03-10T15:20:00Z');

describe('usage ranges', () => {
  it('covers the last 24 whole hours by hour, this hour included', () => {
    const range = presetRange('24h', NOW);
    expect(range).toEqual({
      preset: '24h',
      from: '2026-03-09T16:00:00.000Z',
      to: '2026-03-10T16:00:00.000Z',
      bucket: 'hour',
    });
    expect(bucketStarts(range)).toHaveLength(24);
  });

  it('covers the last 7 and 30 UTC days by day, today included', () => {
    expect(presetRange('7d', NOW)).toMatchObject({ from: '2026-03-04T00:00:00.000Z', to: '2026-03-11T00:00:00.000Z' });
    const month = presetRange('30d', NOW);
    expect(month.from).toBe('2026-02-09T00:00:00.000Z');
    expect(bucketStarts(month)).toHaveLength(30);
  });

  it('takes custom dates as whole UTC days, both included, and says what is wrong with bad ones', () => {
    expect(customRange('2026-01-01', '2026-01-31')).toEqual({
      preset: 'custom',
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-02-01T00:00:00.000Z',
      bucket: 'day',
    });
    expect(customRange('2026-01-01', '2026-01-01')).toMatchObject({ bucket: 'hour' });
    expect(customRange('2026-02-01', '2026-01-01')).toEqual({ error: 'The end date is before the start date.' });
    expect(customRange('', '2026-01-01')).toEqual({ error: 'Pick both a start and an end date.' });
    expect(customRange('2020-01-01', '2026-01-01')).toEqual({ error: 'Pick at most 400 days.' });
  });
});
