import { z } from 'zod';
import { endpoint } from './http.js';

/** The admin API's contract for the log viewer (issue 13): sources, pages of lines, the whole log as a download. */

const API = '/api/v1';

/**
 * A log: `agent` (the agent's own JSON lines), or a slot's PM2 output, `slot-<id>.out` (stdout) or `slot-<id>.err`
 * (stderr) of the process PM2 runs for it.
 */
export const LogSourceId = z
  .string()
  .max(40)
  .regex(/^(agent|slot-[a-z0-9]{10}\.(out|err))$/, {
    message: 'must be "agent" or a slot\'s "slot-<id>.out" / "slot-<id>.err" (GET /api/v1/logs lists them)',
  });
export type LogSourceId = z.infer<typeof LogSourceId>;

export const LogSourceParams = z.strictObject({ source: LogSourceId });

export const LogLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
export type LogLevel = z.infer<typeof LogLevel>;

export const LogSource = z.object({
  id: LogSourceId,
  kind: z.enum(['agent', 'slot']),
  /** What the admin reads: "agent", or the slot's name and stream. */
  label: z.string(),
  slotId: z.string().nullable(),
  stream: z.enum(['json', 'out', 'err']),
  /** Bytes in the live file and the rotated ones together. */
  sizeBytes: z.int().min(0),
  files: z.int().min(0),
});
export type LogSource = z.infer<typeof LogSource>;

export const LogSourceList = z.object({ sources: z.array(LogSource) });
export type LogSourceList = z.infer<typeof LogSourceList>;

/**
 * An opaque position between two lines: which file of the rotation (by a fingerprint of its first bytes, which a
 * rename or a copy keeps) and the byte offset in it.
 */
export const LogCursor = z.string().min(1).max(80);

export const LogPageQuery = z
  .strictObject({
    /** Lines before this position (older ones); none of before/after/at: the newest lines. */
    before: LogCursor.optional(),
    /** Lines after this position (following a log). */
    after: LogCursor.optional(),
    /** The first line at or after this time, and the lines after it. */
    at: z.iso.datetime({ offset: true, message: 'must be an ISO time such as 2026-12-01T10:00:00Z' }).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(200),
    /** This level and above (lines without a level are left out while it is set). */
    level: LogLevel.optional(),
    /** Lines containing this text, ignoring case. */
    q: z.string().min(1).max(200).optional(),
  })
  .refine((query) => [query.before, query.after, query.at].filter((v) => v !== undefined).length <= 1, {
    message: 'give at most one of before, after and at',
    path: ['before'],
  });
export type LogPageQuery = z.input<typeof LogPageQuery>;

export const LogLine = z.object({
  /** Where this line starts: `before` it pages to older lines, `after` it to the line and newer ones. */
  cursor: z.string(),
  /** ISO time of the line, when it has one. */
  time: z.string().nullable(),
  level: LogLevel.nullable(),
  /** The line as written, without its time prefix (PM2's) and at most 8 KiB of it. */
  text: z.string(),
});
export type LogLine = z.infer<typeof LogLine>;

export const LogPage = z.object({
  source: LogSourceId,
  /** Oldest first. */
  lines: z.array(LogLine),
  /** Continue with `before` from here for older lines; null at the start of the oldest file kept. */
  before: z.string().nullable(),
  /** Continue with `after` from here for newer lines (the end of the log when the page reached it). */
  after: z.string(),
  /** Whether the page stopped at the end of the log (follow: nothing newer yet). */
  atEnd: z.boolean(),
  /** Bytes this page read: a page stops after a few MiB however few lines matched the filter (continue from it). */
  scannedBytes: z.int().min(0),
});
export type LogPage = z.infer<typeof LogPage>;

export const LOGS_PATH = `${API}/logs`;
export const LOG_DOWNLOAD_PATH = `${API}/logs/:source/download`;

export const logsApi = {
  listLogSources: endpoint({
    method: 'GET',
    path: LOGS_PATH,
    auth: 'admin',
    response: LogSourceList,
    status: 200,
    summary: "The logs the viewer can read: the agent's and each slot's PM2 output",
  }),
  readLog: endpoint({
    method: 'GET',
    path: `${API}/logs/:source`,
    auth: 'admin',
    params: LogSourceParams,
    query: LogPageQuery,
    response: LogPage,
    status: 200,
    summary: 'A page of lines: the newest, before or after a cursor, or from a time; filtered by level and text',
  }),
};
