/** 1234 → "1,234"; 1234567 → "1.23M": token counts as people read them. */
export function formatTokens(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  return n.toLocaleString('en-US');
}

/** US dollars: cents from $1 up; below, up to four decimals so that small usage does not read as $0.00 or $0.01. */
export function formatUsd(n: number): string {
  if (n === 0) return '$0.00';
  if (n > 0 && n < 0.0001) return '<$0.0001';
  if (Math.abs(n) >= 1) return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  const digits = n.toFixed(4).replace(/0+$/, '');
  return `$${digits.length - digits.indexOf('.') - 1 < 2 ? n.toFixed(2) : digits}`;
}

/** "3 min ago", "in 2 h", "5 days ago": how far a time is from now. */
export function formatRelative(iso: string | null, now: number = Date.now()): string {
  if (!iso) return 'never';
  const diff = Date.parse(iso) - now;
  const abs = Math.abs(diff);
  const [value, unit] =
    abs < 60_000
      ? [0, 'now']
      : abs < 3_600_000
        ? [Math.round(abs / 60_000), 'min']
        : abs < 86_400_000
          ? [Math.round(abs / 3_600_000), 'h']
          : [Math.round(abs / 86_400_000), abs < 2 * 86_400_000 ? 'day' : 'days'];
  if (unit === 'now') return 'just now';
  return diff < 0 ? `${value} ${unit} ago` : `in ${value} ${unit}`;
}

/** A local date and time, short. */
export const formatDateTime = (iso: string): string =>
  new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A log line's time: seconds matter when lines are read against each other. */
export const formatLogTime = (iso: string): string =>
  new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
