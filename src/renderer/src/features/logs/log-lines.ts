import type { LogLine, LogPage } from '../../../../shared/ipc/contract';

/** Lines the view keeps at most: older or newer ones beyond it are dropped and paged in again on demand. */
export const MAX_KEPT_LINES = 5000;

export interface LogWindow {
  lines: LogLine[];
  /** Cursor for older lines; null at the start of the oldest file kept on the host. */
  before: string | null;
  /** Cursor for newer lines. */
  after: string;
  /** Whether the newest line shown is the newest there is (follow polls from here). */
  atEnd: boolean;
}

export const windowOf = (page: LogPage): LogWindow => ({
  lines: page.lines,
  before: page.before,
  after: page.after,
  atEnd: page.atEnd,
});

/** Newer lines appended (a follow poll or "newer"): the oldest are dropped past the cap. */
export function appendNewer(current: LogWindow, page: LogPage, max = MAX_KEPT_LINES): LogWindow {
  const lines = [...current.lines, ...page.lines];
  const dropped = Math.max(0, lines.length - max);
  const kept = lines.slice(dropped);
  return {
    lines: kept,
    before: dropped > 0 ? kept[0]!.cursor : current.before,
    after: page.after,
    atEnd: page.atEnd,
  };
}

/** Older lines prepended ("load older"): the newest are dropped past the cap, and the view is no longer at the end. */
export function prependOlder(current: LogWindow, page: LogPage, max = MAX_KEPT_LINES): LogWindow {
  const lines = [...page.lines, ...current.lines];
  if (lines.length <= max) return { ...current, lines, before: page.before };
  return { lines: lines.slice(0, max), before: page.before, after: lines[max]!.cursor, atEnd: false };
}

/** `<input type="datetime-local">` (local time) as an ISO time, or null when it is not one. */
export function localToIso(local: string): string | null {
  const time = new Date(local).getTime();
  return Number.isNaN(time) ? null : new Date(time).toISOString();
}
