import { z } from 'zod';

/**
 * The version of the admin API's contract this agent speaks. It changes only when the panel must change with it
 * (a route removed or changed incompatibly); adding routes does not change it. The panel accepts agents in its own
 * [min, max] range (src/shared/agent-compat.ts) and refuses others with a message instead of half-working.
 * Agents before the number existed report none and count as 1.
 */
export const AGENT_CONTRACT_VERSION = 2;

export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  /** Missing on agents older than the handshake (contract 1). */
  contractVersion: z.int().min(1).optional(),
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
