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

/** A problem the details found; `code` is stable (DISK_LOW, MEMORY_HIGH, DB_NOT_WRITABLE, PM2_DOWN, ...). */
export const HealthProblem = z.object({ code: z.string(), message: z.string() });

/**
 * GET /api/v1/health/details (admin): what an operator checks first. Every part says what it saw; a part that could
 * not be read is null with the reason in `problems`, never a failed request.
 */
export const HealthDetails = z.object({
  status: z.enum(['ok', 'degraded']),
  checkedAt: z.string(),
  problems: z.array(HealthProblem),
  version: z.string(),
  uptimeS: z.number(),
  agent: z.object({
    pid: z.int(),
    startedAt: z.string(),
    rssBytes: z.number(),
    heapUsedBytes: z.number(),
    /** 99th percentile of the event loop's delay over the last minute. */
    eventLoopDelayP99Ms: z.number().nullable(),
  }),
  database: z.object({
    ok: z.boolean(),
    schemaVersion: z.int(),
    sizeBytes: z.number(),
    walBytes: z.number(),
    lastCheckpointAt: z.string().nullable(),
    /** The last `PRAGMA integrity_check` (run with each backup, and daily). */
    integrity: z.object({
      ok: z.boolean().nullable(),
      checkedAt: z.string().nullable(),
      detail: z.string().nullable(),
    }),
    /** False while writes fail (disk full, read-only); the gateway refuses new requests then. */
    writable: z.boolean(),
    lastWriteError: z.string().nullable(),
  }),
  supervisor: z.object({ ok: z.boolean(), daemonPid: z.int().nullable(), error: z.string().nullable() }),
  slots: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      state: z.string(),
      pid: z.int().nullable(),
      restarts: z.int(),
      memoryBytes: z.number().nullable(),
      cpuPercent: z.number().nullable(),
      viewers: z.int(),
    }),
  ),
  disk: z
    .object({ path: z.string(), freeBytes: z.number(), totalBytes: z.number(), freePercent: z.number() })
    .nullable(),
  memory: z.object({ totalBytes: z.number(), availableBytes: z.number(), usedPercent: z.number() }),
  load: z.object({ one: z.number(), five: z.number(), fifteen: z.number(), cpus: z.int() }),
  upstream: z.object({
    lastStatus: z.int().nullable(),
    lastAt: z.string().nullable(),
    lastError: z.string().nullable(),
    /** Share of gateway requests in the last 5 minutes that the upstream failed (0..1); null with no requests. */
    errorRate5m: z.number().nullable(),
  }),
  backup: z.object({
    lastSuccessAt: z.string().nullable(),
    ageS: z.number().nullable(),
    lastError: z.string().nullable(),
  }),
  tls: z.object({ configured: z.boolean(), notAfter: z.string().nullable(), daysLeft: z.number().nullable() }),
});
export type HealthDetails = z.infer<typeof HealthDetails>;
