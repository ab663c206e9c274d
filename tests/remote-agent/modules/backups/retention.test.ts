import { describe, expect, it } from 'vitest';
import { backupsToKeep, isoWeek } from '../../../../remote-agent/src/modules/backups/retention.js';

const at = (iso: string, n = 0) => ({ id: `b-${iso}-${n}`, createdAt: iso });

describe('retention: 7 daily + 4 weekly', () => {
  it('keeps the newest of each of the last 7 days and of each of the last 4 ISO weeks', () => {
    // Two a day for 60 days, from 2026-10-03 to 2026-12-01.
    const backups = [];
    for (let d = 0; d < 60; d++) {
      const day = new Date(Date.UTC(2026, 11, 1) - d * 86_400_000).toISOString().slice(0, 10);
      backups.push(at(`${day}T03:00:00.000Z`, 0), at(`${day}T15:00:00.000Z`, 1));
    }
    const keep = backupsToKeep(backups, 7, 4);
    const kept = backups.filter((b) => keep.has(b.id)).map((b) => b.createdAt);
    const days = kept.filter((t) => t >= '2026-11-25');
    expect(days).toEqual([
      '2026-12-01T15:00:00.000Z',
      '2026-11-30T15:00:00.000Z',
      '2026-11-29T15:00:00.000Z',
      '2026-11-28T15:00:00.000Z',
      '2026-11-27T15:00:00.000Z',
      '2026-11-26T15:00:00.000Z',
      '2026-11-25T15:00:00.000Z',
    ]);
    // Weekly: the newest of weeks 49 (Dec 1), 48, 47, 46: Sundays' afternoon backups before this week.
    expect(kept.filter((t) => t < '2026-11-25')).toEqual(['2026-11-22T15:00:00.000Z', '2026-11-15T15:00:00.000Z']);
    expect(keep.size).toBe(9);
  });

  it('always keeps the newest, and ISO weeks start on Monday', () => {
    expect([...backupsToKeep([at('2026-01-01T00:00:00.000Z')], 1, 0)]).toEqual(['b-2026-01-01T00:00:00.000Z-0']);
    expect(isoWeek(new Date('2026-11-30T00:00:00Z'))).toBe('2026-W49');
    expect(isoWeek(new Date('2026-11-29T23:59:59Z'))).toBe('2026-W48');
    expect(isoWeek(new Date('2021-01-03T12:00:00Z'))).toBe('2020-W53');
  });
});
