import { z } from 'zod';
import { ApiKeyId, UserId } from './users.js';

export const UsageStatus = z.enum(['success', 'error', 'timeout', 'client_abort']);
export type UsageStatus = z.infer<typeof UsageStatus>;

/** One gateway request, as metered. Times are ISO strings; durations in milliseconds. */
export const UsageRow = z.object({
  id: z.number(),
  /** Upstream's request id (its `request-id` header), when it answered. */
  requestId: z.string().nullable(),
  userId: z.string().nullable(),
  username: z.string().nullable(),
  keyId: z.string().nullable(),
  slotId: z.string().nullable(),
  model: z.string(),
  provider: z.string(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  cacheCreationTokens: z.number(),
  cacheReadTokens: z.number(),
  costUsd: z.number(),
  status: UsageStatus,
  errorType: z.string().nullable(),
  httpStatus: z.number().nullable(),
  latencyMs: z.number(),
  ttfbMs: z.number().nullable(),
  startedAt: z.string(),
  endedAt: z.string(),
});
export type UsageRow = z.infer<typeof UsageRow>;

export const UsageTotals = z.object({
  requests: z.number(),
  errors: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  cacheCreationTokens: z.number(),
  cacheReadTokens: z.number(),
  /** All four token kinds together: what token quotas count. */
  totalTokens: z.number(),
  costUsd: z.number(),
});
export type UsageTotals = z.infer<typeof UsageTotals>;

const isoTime = z.iso.datetime({ offset: true, message: 'must be an ISO date-time such as 2026-11-01T00:00:00Z' });

/** Longest range a summary covers: hourly series over at most 31 days, daily over at most 400. */
export const USAGE_MAX_RANGE_DAYS = { hour: 31, day: 400 } as const;

export const UsageGroupBy = z.enum(['user', 'key', 'model', 'provider']);
export type UsageGroupBy = z.infer<typeof UsageGroupBy>;

const filters = {
  userId: UserId.optional(),
  keyId: ApiKeyId.optional(),
  model: z.string().min(1).max(200).optional(),
};

export const UsageSummaryQuery = z.strictObject({
  from: isoTime,
  to: isoTime,
  bucket: z.enum(['hour', 'day']).default('day'),
  groupBy: UsageGroupBy.default('model'),
  ...filters,
});

export const UsageSummary = z.object({
  from: z.string(),
  to: z.string(),
  bucket: z.enum(['hour', 'day']),
  groupBy: UsageGroupBy,
  totals: UsageTotals,
  /** One entry per group (user, key, model or provider), largest cost first. */
  groups: z.array(z.object({ key: z.string(), label: z.string(), totals: UsageTotals })),
  /** One point per bucket and group that had usage; buckets are UTC hours or days (ISO start times). */
  series: z.array(z.object({ bucketStart: z.string(), key: z.string(), totals: UsageTotals })),
});
export type UsageSummary = z.infer<typeof UsageSummary>;

export const UsageRowsQuery = z.strictObject({
  from: isoTime,
  to: isoTime,
  ...filters,
  status: UsageStatus.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** From a previous page's nextCursor. */
  cursor: z
    .string()
    .regex(/^\d{1,19}$/, { message: 'must be the nextCursor of a previous page' })
    .optional(),
});

export const UsageRows = z.object({ rows: z.array(UsageRow), nextCursor: z.string().nullable() });

export const UsageExportQuery = z.strictObject({
  from: isoTime,
  to: isoTime,
  ...filters,
  format: z.enum(['csv', 'json']).default('csv'),
});

export const ArchiveUsageBody = z.strictObject({
  /** Rows that started before this many days ago move to the archive database (default: the agent's setting). */
  olderThanDays: z.int().min(1).max(3650).optional(),
});

export const ArchiveUsageResult = z.object({
  archivedRows: z.number(),
  archiveFile: z.string(),
  before: z.string(),
});
