import { z } from 'zod';

export const USER_ID_PATTERN = /^u_[a-z0-9]{10}$/;
export const UserId = z.string().regex(USER_ID_PATTERN, { message: 'must be a user id such as u_0123456789' });
export type UserId = z.infer<typeof UserId>;

export const KEY_ID_PATTERN = /^k_[a-z0-9]{10}$/;
export const ApiKeyId = z.string().regex(KEY_ID_PATTERN, { message: 'must be a key id such as k_0123456789' });
export type ApiKeyId = z.infer<typeof ApiKeyId>;

export const Username = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, {
    message: "must be 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit",
  });

export const UserRole = z.enum(['admin', 'member']);
export type UserRole = z.infer<typeof UserRole>;

const Email = z.email({ message: 'must be an email address such as ada@example.com' }).max(254);
const DisplayName = z.string().trim().min(1, { message: 'must not be empty' }).max(100);

export const User = z.object({
  id: UserId,
  username: z.string(),
  email: z.string().nullable(),
  displayName: z.string().nullable(),
  role: UserRole,
  /** A disabled user's keys stop working at once; their usage stays. */
  active: z.boolean(),
  /** Deleted users are kept (as `deleted`) so that their usage history stays attributed to them. */
  deleted: z.boolean(),
  /** Keys that work now (not revoked, not expired). */
  activeKeys: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  deletedAt: z.string().nullable(),
});
export type User = z.infer<typeof User>;

export const CreateUserBody = z.strictObject({
  username: Username,
  email: Email.nullable().optional(),
  displayName: DisplayName.nullable().optional(),
  role: UserRole.default('member'),
  active: z.boolean().default(true),
});
export type CreateUserBody = z.input<typeof CreateUserBody>;

export const UpdateUserBody = z
  .strictObject({
    username: Username,
    email: Email.nullable(),
    displayName: DisplayName.nullable(),
    role: UserRole,
    active: z.boolean(),
  })
  .partial()
  .refine((changes) => Object.keys(changes).length > 0, { message: 'send at least one field to change' });
export type UpdateUserBody = z.input<typeof UpdateUserBody>;

export const UserIdParams = z.strictObject({ id: UserId });

const booleanQuery = z.enum(['true', 'false']).transform((v) => v === 'true');

export const ListUsersQuery = z.strictObject({
  /** Matches username, email or display name, case-insensitively. */
  search: z.string().trim().max(100).optional(),
  includeDeleted: booleanQuery.default(false),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export const UserList = z.object({ users: z.array(User), total: z.number(), limit: z.number(), offset: z.number() });

/** `gateway`: call Claude through the gateway. `self`: read one's own usage and quotas. */
export const KeyScope = z.enum(['gateway', 'self']);
export type KeyScope = z.infer<typeof KeyScope>;

/** Per-key limits; null means the gateway's default. */
export const RateLimit = z.strictObject({
  requestsPerMinute: z.int().min(1).max(1_000_000).nullable(),
  concurrentStreams: z.int().min(1).max(10_000).nullable(),
});
export type RateLimit = z.infer<typeof RateLimit>;

export const ApiKeyState = z.enum(['active', 'rotating', 'expired', 'revoked']);

export const ApiKey = z.object({
  id: ApiKeyId,
  userId: UserId,
  name: z.string(),
  /** The first characters of the key, to recognise it; the key itself is shown once, at creation. */
  prefix: z.string(),
  scopes: z.array(KeyScope),
  /** `rotating`: replaced by a newer key and still accepted until expiresAt. */
  state: ApiKeyState,
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  rotatedToId: ApiKeyId.nullable(),
  /** The slot this key was issued for (a metered slot), if any. */
  slotId: z.string().nullable(),
  rateLimit: RateLimit,
  lastUsedAt: z.string().nullable(),
  createdAt: z.string(),
});
export type ApiKey = z.infer<typeof ApiKey>;

export const ApiKeyList = z.object({ keys: z.array(ApiKey) });

const KeyName = z.string().trim().min(1, { message: 'give the key a name' }).max(64);

export const CreateKeyBody = z.strictObject({
  name: KeyName,
  scopes: z
    .array(KeyScope)
    .min(1, { message: 'give the key at least one scope (gateway, self)' })
    .default(['gateway', 'self']),
  /** ISO time after which the key stops working; never when absent or null. */
  expiresAt: z.iso
    .datetime({ offset: true, message: 'must be an ISO date-time such as 2026-12-31T23:59:59Z' })
    .nullable()
    .optional(),
  rateLimit: RateLimit.partial().optional(),
});
export type CreateKeyBody = z.input<typeof CreateKeyBody>;

export const UpdateKeyBody = z
  .strictObject({ name: KeyName, rateLimit: RateLimit.partial() })
  .partial()
  .refine((changes) => Object.keys(changes).length > 0, { message: 'send at least one field to change' });

export const RotateKeyBody = z.strictObject({
  /** How long the old key keeps working, so that clients can move over. */
  graceSeconds: z
    .int()
    .min(0)
    .max(30 * 86_400)
    .default(3600),
});

/** The only answer that carries a key in clear: keep it now, it is not shown again. */
export const CreatedKey = z.object({ key: ApiKey, secret: z.string() });
export type CreatedKey = z.infer<typeof CreatedKey>;

export const KeyIdParams = z.strictObject({ keyId: ApiKeyId });

export const QuotaWindow = z.enum(['day', '5h', 'month']);
export type QuotaWindow = z.infer<typeof QuotaWindow>;

/** A budget over a window: UTC day, rolling 5 hours or calendar month (UTC); tokens, cost or both. */
export const Quota = z
  .strictObject({
    window: QuotaWindow,
    maxTokens: z.int().min(1).max(1e13).nullable().default(null),
    maxCostUsd: z.number().positive().max(1e9).nullable().default(null),
  })
  .refine((q) => q.maxTokens !== null || q.maxCostUsd !== null, {
    message: 'set maxTokens, maxCostUsd or both',
  });
export type Quota = z.output<typeof Quota>;

export const SetQuotasBody = z.strictObject({
  quotas: z
    .array(Quota)
    .max(3)
    .refine((list) => new Set(list.map((q) => q.window)).size === list.length, {
      message: 'at most one quota per window',
    }),
});

export const QuotaStatus = z.object({
  subject: z.enum(['user', 'key']),
  window: QuotaWindow,
  maxTokens: z.number().nullable(),
  maxCostUsd: z.number().nullable(),
  usedTokens: z.number(),
  usedCostUsd: z.number(),
  /** When the window's usage falls back (start of the next day or month; for 5h, when the oldest use leaves it). */
  resetsAt: z.string(),
  exceeded: z.boolean(),
});
export type QuotaStatus = z.infer<typeof QuotaStatus>;

export const QuotaList = z.object({ quotas: z.array(QuotaStatus) });
