import type { LogLevel } from '../../contract/index.js';

/** How a log's lines are written: the agent's pino JSON, or a slot's PM2 stdout/stderr with PM2's time prefix. */
export type LogStream = 'json' | 'out' | 'err';

export interface ParsedLine {
  /** Epoch ms, when the line has a time. */
  time: number | null;
  level: LogLevel | null;
  text: string;
}

const PINO_LEVELS: Record<number, LogLevel> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
export const LEVEL_RANK: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** PM2's `time: true` prefix: dayjs `YYYY-MM-DDTHH:mm:ss` in the daemon's local time, then `: `. */
const PM2_PREFIX = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}): /;
const PINO_TIME = /"time":(\d{10,16})[,}]/;
/** Fields every agent line has, left out of the text the viewer shows. */
const QUIET_FIELDS = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);
export const MAX_TEXT = 8 * 1024;

const clip = (text: string): string => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text);

/** Just the time of a line, cheaply (the time search reads many lines and keeps none). */
export function lineTime(raw: string, stream: LogStream): number | null {
  if (stream === 'json') {
    const match = PINO_TIME.exec(raw.slice(0, 512));
    return match ? Number(match[1]) : null;
  }
  const match = PM2_PREFIX.exec(raw);
  if (!match) return null;
  // No offset in PM2's prefix: the daemon runs on this machine, in its time zone, so local time reads it back.
  const time = new Date(match[1]!).getTime();
  return Number.isNaN(time) ? null : time;
}

export function parseLine(raw: string, stream: LogStream): ParsedLine {
  if (stream !== 'json') {
    const match = PM2_PREFIX.exec(raw);
    return {
      time: lineTime(raw, stream),
      level: stream === 'err' ? 'error' : 'info',
      text: clip(match ? raw.slice(match[0].length) : raw),
    };
  }
  if (raw.startsWith('{')) {
    try {
      const record = JSON.parse(raw) as Record<string, unknown>;
      const rest = Object.fromEntries(Object.entries(record).filter(([key]) => !QUIET_FIELDS.has(key)));
      const msg = typeof record.msg === 'string' ? record.msg : '';
      const fields = Object.keys(rest).length > 0 ? JSON.stringify(rest) : '';
      return {
        time: typeof record.time === 'number' ? record.time : null,
        level: typeof record.level === 'number' ? (PINO_LEVELS[record.level] ?? null) : null,
        text: clip([msg, fields].filter(Boolean).join(' ')),
      };
    } catch {
      // not JSON after all (a crash's stack trace): shown as it is
    }
  }
  return { time: null, level: null, text: clip(raw) };
}

export interface LineFilter {
  level?: LogLevel | undefined;
  /** Lower-cased. */
  text?: string | undefined;
}

const PINO_LEVEL = /"level":(\d{2})[,}]/;

/** Just the level of a line, cheaply (a filtered page may look at megabytes of lines it does not keep). */
export function lineLevel(raw: string, stream: LogStream): LogLevel | null {
  if (stream === 'out') return 'info';
  if (stream === 'err') return 'error';
  const match = PINO_LEVEL.exec(raw.slice(0, 64));
  return match ? (PINO_LEVELS[Number(match[1])] ?? null) : null;
}

export function lineMatches(raw: string, stream: LogStream, filter: LineFilter): boolean {
  if (filter.text && !raw.toLowerCase().includes(filter.text)) return false;
  if (filter.level) {
    const level = lineLevel(raw, stream);
    if (level === null || LEVEL_RANK[level] < LEVEL_RANK[filter.level]) return false;
  }
  return true;
}
