import { z } from 'zod';
import { LogLevel, LogPage, LogSourceId, LogSourceList } from '../../../remote-agent/src/contract/logs';

/**
 * The IPC contract of the logs area (issue 13): a host's log sources, a page of lines (the agent pages them: the
 * panel never holds a whole log), and the whole log saved to a file. Merged into `ipcContract` in ./contract.ts.
 */
const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });
const Cursor = z.string().min(1).max(80);

/** A download: written to the file the admin picked (the app), or returned for the page to save (browser mode). */
export const LogDownloadResult = z.object({
  fileName: z.string(),
  mimeType: z.string(),
  bytes: z.number(),
  savedTo: z.string().nullable(),
  content: z.string().nullable(),
});
export type LogDownloadResult = z.infer<typeof LogDownloadResult>;

export const logsIpcContract = {
  'logs:sources': { input: z.strictObject({ hostId: HostId }), output: LogSourceList },
  'logs:read': {
    input: z
      .strictObject({
        hostId: HostId,
        source: LogSourceId,
        before: Cursor.optional(),
        after: Cursor.optional(),
        at: z.iso.datetime({ offset: true, message: 'must be a date and time' }).optional(),
        limit: z.int().min(1).max(1000).default(200),
        level: LogLevel.optional(),
        q: z.string().min(1).max(200).optional(),
      })
      .refine((input) => [input.before, input.after, input.at].filter((v) => v !== undefined).length <= 1, {
        message: 'give at most one of before, after and at',
        path: ['before'],
      }),
    output: LogPage,
  },
  'logs:download': { input: z.strictObject({ hostId: HostId, source: LogSourceId }), output: LogDownloadResult },
};
export const logsEventContract = {};
export type { LogLine, LogPage, LogSource, LogSourceId } from '../../../remote-agent/src/contract/logs';
export type LogLevelName = z.infer<typeof LogLevel>;
