/**
 * Which backups to keep: the newest of each of the last `keepDaily` UTC days that have one, and the newest of each
 * of the last `keepWeekly` ISO weeks that have one (grandfather-father-son without the grandfathers). The newest
 * backup is always kept. Uploaded backups are not the schedule's to delete and are not passed in.
 */
export function backupsToKeep(
  backups: Array<{ id: string; createdAt: string }>,
  keepDaily: number,
  keepWeekly: number,
): Set<string> {
  const newestFirst = [...backups].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const keep = new Set<string>();
  if (newestFirst[0]) keep.add(newestFirst[0].id);
  const pick = (bucketOf: (at: Date) => string, count: number): void => {
    const seen = new Set<string>();
    for (const backup of newestFirst) {
      const bucket = bucketOf(new Date(backup.createdAt));
      if (seen.has(bucket)) continue;
      if (seen.size >= count) break;
      seen.add(bucket);
      keep.add(backup.id);
    }
  };
  pick((at) => at.toISOString().slice(0, 10), keepDaily);
  pick(isoWeek, keepWeekly);
  return keep;
}

/** `2026-W49`: the ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(at: Date): string {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
