import { z } from 'zod';
import { ApiKeyId, UserId } from './users.js';

const isoTime = z.iso.datetime({ offset: true, message: 'must be an ISO date-time such as 2026-11-01T00:00:00Z' });

/**
 * One row of the request log: a request the gateway refused, or several identical ones close together (`count`),
 * so that a client retrying in a loop, or someone spraying made-up keys, takes one row instead of thousands. Never
 * holds a key: only the prefix of one the gateway did not know.
 */
export const RefusalRow = z.object({
  id: z.number(),
  /** The first (or only) refusal of the row. */
  at: z.string(),
  /** The last one; equals `at` when count is 1. */
  lastAt: z.string(),
  count: z.number(),
  status: z.number(),
  /** The stable code the client got (GATEWAY_KEY_REVOKED, GATEWAY_QUOTA_EXCEEDED...). */
  code: z.string(),
  /** The message the client got, which says why in words. */
  message: z.string(),
  userId: z.string().nullable(),
  username: z.string().nullable(),
  keyId: z.string().nullable(),
  keyName: z.string().nullable(),
  /** The key's visible prefix: the issued key's, or the first characters of a key the gateway did not know. */
  keyPrefix: z.string().nullable(),
  model: z.string().nullable(),
  method: z.string(),
  path: z.string(),
  ip: z.string(),
});
export type RefusalRow = z.infer<typeof RefusalRow>;

const refusalFilters = {
  userId: UserId.optional(),
  keyId: ApiKeyId.optional(),
  from: isoTime.optional(),
  to: isoTime.optional(),
};

const rangeInOrder = (q: { from?: string | undefined; to?: string | undefined }): boolean =>
  !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to);
const RANGE_MESSAGE = { message: '"from" must not be after "to"; swap them', path: ['from'] };

export const RefusalListQuery = z
  .strictObject({
    ...refusalFilters,
    status: z.coerce.number().int().min(400).max(599).optional(),
    code: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]{1,63}$/, { message: 'must be a code such as GATEWAY_KEY_REVOKED' })
      .optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    /** From a previous page's nextCursor. */
    cursor: z
      .string()
      .regex(/^\d{1,15}$/, { message: 'must be the nextCursor of a previous page' })
      .optional(),
  })
  .refine(rangeInOrder, RANGE_MESSAGE);
export type RefusalListQuery = z.input<typeof RefusalListQuery>;

/** Newest first. */
export const RefusalList = z.object({ rows: z.array(RefusalRow), nextCursor: z.string().nullable() });
export type RefusalList = z.infer<typeof RefusalList>;

export const RefusalCountQuery = z
  .strictObject({ ...refusalFilters, from: isoTime, to: isoTime.optional() })
  .refine(rangeInOrder, RANGE_MESSAGE);

/** How many requests were refused in a window (each row counts for its `count`). */
export const RefusalCount = z.object({ from: z.string(), to: z.string(), refusals: z.number() });
export type RefusalCount = z.infer<typeof RefusalCount>;

/** Why a test call to upstream failed, for the admin to act on. */
export const UpstreamProblem = z.enum([
  /** Upstream answered 401: the organisation key is wrong or was revoked. */
  'key_rejected',
  /** 403: the key lacks the permission. */
  'forbidden',
  /** 429 or 529: reachable and the key works, but upstream is limiting or overloaded. */
  'busy',
  /** Another error status from upstream. */
  'upstream_error',
  /** DNS, refused or reset connection. */
  'unreachable',
  /** The TLS handshake failed (certificate not trusted, wrong host name...). */
  'tls',
  /** No answer in time. */
  'timeout',
]);
export type UpstreamProblem = z.infer<typeof UpstreamProblem>;

/** The answer of a test call to upstream with the organisation's key (never the key). */
export const UpstreamTestResult = z.object({
  ok: z.boolean(),
  baseUrl: z.string(),
  /** Upstream's HTTP status, null when it did not answer. */
  status: z.number().nullable(),
  latencyMs: z.number().nullable(),
  problem: UpstreamProblem.nullable(),
  /** What happened, in words, and what to do about it. */
  message: z.string(),
  testedAt: z.string(),
});
export type UpstreamTestResult = z.infer<typeof UpstreamTestResult>;
