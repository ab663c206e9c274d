import { z } from 'zod';

export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  uptimeS: z.number(),
  database: z.object({ ok: z.boolean(), schemaVersion: z.number(), error: z.string().optional() }),
  supervisor: z.object({
    ok: z.boolean(),
    kind: z.literal('pm2'),
    daemonPid: z.number().nullable(),
    error: z.string().optional(),
  }),
  slots: z.object({ total: z.number(), running: z.number(), failed: z.number() }),
});
export type Health = z.infer<typeof Health>;
