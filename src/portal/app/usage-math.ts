import type { UsageTotals } from '../../../remote-agent/src/contract/usage';

export interface DayTotal {
  day: string;
  tokens: number;
  costUsd: number;
}

/** Sums the per-day-and-model series into one row per UTC day, every day of the range included (zeros too). */
export function dailyTotals(
  series: { bucketStart: string; totals: Pick<UsageTotals, 'totalTokens' | 'costUsd'> }[],
  from: Date,
  to: Date,
): DayTotal[] {
  const byDay = new Map<string, DayTotal>();
  for (let time = startOfUtcDay(from); time < to.getTime(); time += 86_400_000) {
    const day = new Date(time).toISOString().slice(0, 10);
    byDay.set(day, { day, tokens: 0, costUsd: 0 });
  }
  for (const point of series) {
    const day = point.bucketStart.slice(0, 10);
    const row = byDay.get(day) ?? { day, tokens: 0, costUsd: 0 };
    row.tokens += point.totals.totalTokens;
    row.costUsd += point.totals.costUsd;
    byDay.set(day, row);
  }
  return [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day));
}

export function startOfUtcDay(date: Date): number {
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

/** The range of the last `days` UTC days, today included. */
export function lastDays(days: number, now: Date = new Date()): { from: Date; to: Date } {
  const to = new Date(startOfUtcDay(now) + 86_400_000);
  return { from: new Date(to.getTime() - days * 86_400_000), to };
}

/** A bar's share of the largest value, in percent (0 for an empty chart). */
export function barPercent(value: number, max: number): number {
  return max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0;
}

export function formatTokens(tokens: number): string {
  if (tokens >= 1e9) return `${(tokens / 1e9).toFixed(1)}B`;
  if (tokens >= 1e6) return `${(tokens / 1e6).toFixed(1)}M`;
  if (tokens >= 1e3) return `${(tokens / 1e3).toFixed(1)}k`;
  return String(tokens);
}

export function formatUsd(usd: number): string {
  if (usd === 0) return '$0';
  return usd >= 100 ? `$${usd.toFixed(0)}` : usd >= 1 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(4)}`;
}
