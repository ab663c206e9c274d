export type RangePreset = '24h' | '7d' | '30d' | 'custom';

export interface UsageRange {
  preset: RangePreset;
  /** ISO times; `to` is exclusive. */
  from: string;
  to: string;
  bucket: 'hour' | 'day';
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The agent serves daily series over at most 400 days. */
export const MAX_CUSTOM_DAYS = 400;

const startOfUtcDay = (ms: number): number => Math.floor(ms / DAY) * DAY;

/**
 * The range a preset stands for at `now`: the last 24 hours by hour (this hour included), or the last 7 or 30 UTC
 * days by day (today included). Buckets are whole, so the totals match the chart.
 */
export function presetRange(preset: Exclude<RangePreset, 'custom'>, now: number): UsageRange {
  if (preset === '24h') {
    const to = Math.floor(now / HOUR) * HOUR + HOUR;
    return { preset, from: new Date(to - 24 * HOUR).toISOString(), to: new Date(to).toISOString(), bucket: 'hour' };
  }
  const days = preset === '7d' ? 7 : 30;
  const to = startOfUtcDay(now) + DAY;
  return { preset, from: new Date(to - days * DAY).toISOString(), to: new Date(to).toISOString(), bucket: 'day' };
}

/**
 * A custom range from two dates (YYYY-MM-DD, UTC, both included), or a message saying what to fix.
 */
export function customRange(fromDate: string, toDate: string): UsageRange | { error: string } {
  const from = Date.parse(`${fromDate}T00:00:00Z`);
  const last = Date.parse(`${toDate}T00:00:00Z`);
  if (Number.isNaN(from) || Number.isNaN(last)) return { error: 'Pick both a start and an end date.' };
  if (last < from) return { error: 'The end date is before the start date.' };
  const to = last + DAY;
  if ((to - from) / DAY > MAX_CUSTOM_DAYS) return { error: `Pick at most ${MAX_CUSTOM_DAYS} days.` };
  return {
    preset: 'custom',
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucket: (to - from) / DAY <= 2 ? 'hour' : 'day',
  };
}

/** Every bucket start of a range, so that the chart shows the quiet hours and days too. */
export function bucketStarts(range: Pick<UsageRange, 'from' | 'to' | 'bucket'>): string[] {
  const step = range.bucket === 'hour' ? HOUR : DAY;
  const starts: string[] = [];
  for (let t = Date.parse(range.from); t < Date.parse(range.to) && starts.length < 1000; t += step)
    starts.push(new Date(t).toISOString());
  return starts;
}
