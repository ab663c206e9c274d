import { z } from 'zod';
import { QuotaStatus, UserId } from './users.js';
import { UsageTotals } from './usage.js';

/** What the admin sees of the gateway; the upstream key itself is never returned. */
export const GatewayStatus = z.object({
  /** Where end users point ANTHROPIC_BASE_URL (the public listener), or null when it is off. */
  url: z.string().nullable(),
  listen: z.object({ host: z.string(), port: z.number() }).nullable(),
  upstream: z.object({ baseUrl: z.string(), keyConfigured: z.boolean() }),
  /** Legacy mode: any key string is accepted and attributed to one user. Off by default. */
  legacyMode: z.object({ enabled: z.boolean(), userId: z.string().nullable(), username: z.string().nullable() }),
  defaultRateLimit: z.object({ requestsPerMinute: z.number(), concurrentStreams: z.number() }),
  /** Requests being served right now. */
  inFlight: z.number(),
  /**
   * Models used since the agent started that have no price (metered at cost 0; users and keys with a cost quota are
   * refused for them): the admin sets a price in gateway.prices. Absent from agents older than this field.
   */
  unpricedModels: z.array(z.string()).optional(),
});
export type GatewayStatus = z.infer<typeof GatewayStatus>;

export const UpdateGatewayBody = z
  .strictObject({
    legacyMode: z
      .strictObject({ enabled: z.boolean(), userId: UserId.nullable() })
      .refine((m) => !m.enabled || m.userId !== null, {
        message: 'name the user (userId) that legacy requests are attributed to',
      }),
    defaultRateLimit: z.strictObject({
      requestsPerMinute: z.int().min(1).max(1_000_000),
      concurrentStreams: z.int().min(1).max(10_000),
    }),
  })
  .partial()
  .refine((changes) => Object.keys(changes).length > 0, { message: 'send at least one field to change' });

export const SetUpstreamKeyBody = z.strictObject({
  apiKey: z
    .string()
    .trim()
    .min(8, { message: 'paste the organisation API key (sk-ant-...)' })
    .max(512)
    .regex(/^[\x21-\x7e]+$/, { message: 'must be one word of printable characters' }),
});

/** GET /v1/me/usage: the caller's own usage, compact enough for a status line. */
export const MeUsage = z.object({
  user: z.object({ id: z.string(), username: z.string() }),
  key: z.object({ id: z.string(), name: z.string(), prefix: z.string() }).nullable(),
  today: UsageTotals,
  last5h: UsageTotals,
  month: UsageTotals,
});
export type MeUsage = z.infer<typeof MeUsage>;

/** GET /v1/me/quota: what is used, what is left and when it resets. */
export const MeQuota = z.object({
  quotas: z.array(
    QuotaStatus.extend({
      remainingTokens: z.number().nullable(),
      remainingCostUsd: z.number().nullable(),
    }),
  ),
  rateLimit: z.object({ requestsPerMinute: z.number(), concurrentStreams: z.number() }),
});
export type MeQuota = z.infer<typeof MeQuota>;

/** Error bodies of the public listener have Anthropic's shape, so that SDKs and Claude Code show them. */
export const GatewayErrorType = z.enum([
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'request_too_large',
  'rate_limit_error',
  'api_error',
  'overloaded_error',
  'timeout_error',
]);
export type GatewayErrorType = z.infer<typeof GatewayErrorType>;

export const GatewayErrorBody = z.object({
  type: z.literal('error'),
  error: z.object({ type: z.string(), message: z.string() }),
  /** Our stable code (DOMAIN_REASON) next to Anthropic's type, for scripts that branch on it. */
  code: z.string().optional(),
});

/** Header on every gateway response: the gateway's own time, upstream's excluded, in milliseconds. */
export const OVERHEAD_HEADER = 'x-slotdeck-overhead-ms';

/** Stable codes in the `code` field of the gateway's error bodies. */
export const GatewayErrorCode = {
  KEY_MISSING: 'GATEWAY_KEY_MISSING',
  KEY_MALFORMED: 'GATEWAY_KEY_MALFORMED',
  KEY_UNKNOWN: 'GATEWAY_KEY_UNKNOWN',
  KEY_REVOKED: 'GATEWAY_KEY_REVOKED',
  KEY_EXPIRED: 'GATEWAY_KEY_EXPIRED',
  USER_DISABLED: 'GATEWAY_USER_DISABLED',
  USER_DELETED: 'GATEWAY_USER_DELETED',
  SCOPE_MISSING: 'GATEWAY_SCOPE_MISSING',
  RATE_LIMITED: 'GATEWAY_RATE_LIMITED',
  STREAMS_EXHAUSTED: 'GATEWAY_STREAMS_EXHAUSTED',
  QUOTA_EXCEEDED: 'GATEWAY_QUOTA_EXCEEDED',
  BODY_INVALID: 'GATEWAY_BODY_INVALID',
  BODY_TOO_LARGE: 'GATEWAY_BODY_TOO_LARGE',
  BODY_TIMEOUT: 'GATEWAY_BODY_TIMEOUT',
  REQUEST_MALFORMED: 'GATEWAY_REQUEST_MALFORMED',
  HEADERS_TOO_LARGE: 'GATEWAY_HEADERS_TOO_LARGE',
  MODEL_UNPRICED: 'GATEWAY_MODEL_UNPRICED',
  MODEL_ID_INVALID: 'GATEWAY_MODEL_ID_INVALID',
  ROUTE_NOT_FOUND: 'GATEWAY_ROUTE_NOT_FOUND',
  UPSTREAM_KEY_MISSING: 'GATEWAY_UPSTREAM_KEY_MISSING',
  UPSTREAM_TIMEOUT: 'GATEWAY_UPSTREAM_TIMEOUT',
  UPSTREAM_UNREACHABLE: 'GATEWAY_UPSTREAM_UNREACHABLE',
  SHUTTING_DOWN: 'GATEWAY_SHUTTING_DOWN',
  STORAGE_FULL: 'GATEWAY_STORAGE_FULL',
  INTERNAL_ERROR: 'GATEWAY_INTERNAL_ERROR',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];
