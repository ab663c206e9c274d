import { z } from 'zod';
import { endpoint } from './http.js';
import { MeQuota } from './gateway.js';
import { SlotId, SlotState } from './slots.js';
import { UsageSummary } from './usage.js';
import { ApiKey, ApiKeyId, KeyScope } from './users.js';

/**
 * The end users' portal API on the public listener (modules/portal). Every route needs a signed-in session (the
 * `__Host-slotdeck-session` cookie); POST/PUT/PATCH also need the page's own Origin and the `x-slotdeck-csrf` header
 * (the csrfToken of GET /api/public/auth/session). Without a session: 401 AUTH_SESSION_REQUIRED; a refused CSRF
 * check: 403 AUTH_CSRF_REFUSED. A slot or key that is not the caller's answers exactly like one that does not exist.
 */
export const PORTAL_API_PREFIX = '/api/public/portal';
const P = PORTAL_API_PREFIX;

// ------------------------------------------------------------------ preferences

/** Version 1 of the portal's per-user preferences. A later version gets a schema of its own beside this one. */
export const PortalPrefsV1 = z.strictObject({
  version: z.literal(1, { message: 'must be 1 (the only preferences version this agent knows)' }),
  theme: z.enum(['light', 'dark', 'system'], { message: "must be 'light', 'dark' or 'system'" }),
  terminalFontSize: z
    .int({ message: 'must be a whole number of pixels' })
    .min(10, { message: 'at least 10' })
    .max(24, { message: 'at most 24' }),
});
/** Every preferences version this agent accepts (a discriminated union on `version` as versions are added). */
export const PortalPrefs = PortalPrefsV1;
export type PortalPrefs = z.infer<typeof PortalPrefs>;
export const DEFAULT_PORTAL_PREFS: PortalPrefs = { version: 1, theme: 'system', terminalFontSize: 14 };

// ------------------------------------------------------------------ me

export const PortalProfile = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string().nullable(),
  email: z.string().nullable(),
});
export type PortalProfile = z.infer<typeof PortalProfile>;

/** What the admin lets end users do themselves (the agent's sign-in settings). */
export const PortalLimits = z.object({
  /** At most this many active keys of their own (slot keys the admin made do not count); 0: none. */
  keyLimit: z.number(),
  /** Scopes their own keys may have. */
  allowedScopes: z.array(KeyScope),
  /** Whether they may share their own slots (share links, modules/share). */
  mayShare: z.boolean(),
});
export type PortalLimits = z.infer<typeof PortalLimits>;

export const PortalMe = z.object({
  user: PortalProfile,
  limits: PortalLimits,
  prefs: PortalPrefs,
  /**
   * Where Claude Code reaches the gateway: the origin this page was served from (the portal and the gateway share
   * the public listener). For `export ANTHROPIC_BASE_URL=…`.
   */
  gatewayBaseUrl: z.string(),
});
export type PortalMe = z.infer<typeof PortalMe>;

// ------------------------------------------------------------------ slots

/**
 * Claude Code in a slot: `running` (a `claude` process in the slot's process tree), `signed-in` (its own Claude
 * config folder holds a login; only existence and shape are read, never a token), `signed-out`, or `unknown` (the
 * agent cannot read that slot account's home on this host, or the slot is not running and nothing could be read).
 */
export const ClaudeStatus = z.enum(['running', 'signed-in', 'signed-out', 'unknown']);
export type ClaudeStatus = z.infer<typeof ClaudeStatus>;

export const PortalSlot = z.object({
  id: SlotId,
  name: z.string(),
  state: SlotState,
  failure: z.object({ reason: z.string(), at: z.string() }).nullable(),
  uptimeMs: z.number().nullable(),
  viewers: z.object({ writable: z.number(), readOnly: z.number() }),
  lastActivityAt: z.string().nullable(),
  claude: ClaudeStatus,
  /** The slot calls Claude through the gateway with a key the admin issued (listed read-only under keys). */
  metered: z.boolean(),
});
export type PortalSlot = z.infer<typeof PortalSlot>;

export const PortalSlotList = z.object({ slots: z.array(PortalSlot) });
export const PortalSlotParams = z.strictObject({ id: SlotId });

/** A single-use ticket for the slot's terminal WebSocket on the public listener, bound to this page's Origin. */
export const PortalTicket = z.object({
  ticket: z.string(),
  /** `/api/public/terminal/<id>?ticket=…`: open it (ws:/wss: on the same host) within `expiresAt`. */
  url: z.string(),
  expiresAt: z.string(),
});
export type PortalTicket = z.infer<typeof PortalTicket>;

// ------------------------------------------------------------------ keys

export const PortalKey = ApiKey.extend({
  /** false: a key the admin issued for a metered slot; listed, but only the admin changes it. */
  editable: z.boolean(),
});
export type PortalKey = z.infer<typeof PortalKey>;

export const PortalKeyList = z.object({
  keys: z.array(PortalKey),
  /** Own active keys now (what keyLimit counts), the limit and the scopes allowed. */
  activeOwnKeys: z.number(),
  limits: PortalLimits,
});
export type PortalKeyList = z.infer<typeof PortalKeyList>;

const PortalKeyName = z.string().trim().min(1, { message: 'give the key a name' }).max(64);
const FutureIso = z.iso.datetime({ offset: true, message: 'must be an ISO date-time such as 2026-12-31T23:59:59Z' });

export const CreatePortalKeyBody = z.strictObject({
  name: PortalKeyName,
  /** Default: every scope the admin allows. */
  scopes: z.array(KeyScope).min(1, { message: 'give the key at least one scope (gateway, self)' }).optional(),
  /** When the key stops working; never when absent or null. */
  expiresAt: FutureIso.nullable().optional(),
});
export type CreatePortalKeyBody = z.input<typeof CreatePortalKeyBody>;

export const UpdatePortalKeyBody = z
  .strictObject({ name: PortalKeyName, expiresAt: FutureIso.nullable() })
  .partial()
  .refine((changes) => Object.keys(changes).length > 0, { message: 'send name, expiresAt or both' });
export type UpdatePortalKeyBody = z.input<typeof UpdatePortalKeyBody>;

export const RotatePortalKeyBody = z.strictObject({
  /** How long the old key keeps working (default an hour, at most a week). */
  graceSeconds: z
    .int()
    .min(0)
    .max(7 * 86_400)
    .default(3600),
});

export const PortalKeyParams = z.strictObject({ id: ApiKeyId });

/** The only answer that carries the key in clear, with the lines to paste into a shell for Claude Code. */
export const CreatedPortalKey = z.object({
  key: PortalKey,
  secret: z.string(),
  /** `export ANTHROPIC_BASE_URL=<gatewayBaseUrl>\nexport ANTHROPIC_API_KEY=<secret>` */
  shellLines: z.string(),
  gatewayBaseUrl: z.string(),
});
export type CreatedPortalKey = z.infer<typeof CreatedPortalKey>;

// ------------------------------------------------------------------ usage and quota

const isoTime = z.iso.datetime({ offset: true, message: 'must be an ISO date-time such as 2026-11-01T00:00:00Z' });

export const PortalUsageQuery = z.strictObject({
  from: isoTime,
  to: isoTime,
  /** `day`: groups are UTC days; `model`: groups are models. The series is always per day and model. */
  groupBy: z.enum(['day', 'model']).default('day'),
});

/** The admin's usage summary (daily rollups) restricted to the caller; `series` keys are models. */
export const PortalUsage = UsageSummary.omit({ groupBy: true, bucket: true }).extend({
  groupBy: z.enum(['day', 'model']),
});
export type PortalUsage = z.infer<typeof PortalUsage>;

export const PortalQuotaEntry = MeQuota.shape.quotas.element.extend({
  /** For a key's quota: which key (subject 'key'); null for the user's own quotas. */
  key: z.object({ id: z.string(), name: z.string(), prefix: z.string() }).nullable(),
});
export const PortalQuota = z.object({ quotas: z.array(PortalQuotaEntry) });
export type PortalQuota = z.infer<typeof PortalQuota>;

// ------------------------------------------------------------------ endpoints

export const portalApi = {
  me: endpoint({
    method: 'GET',
    path: `${P}/me`,
    auth: 'session',
    response: PortalMe,
    status: 200,
    summary: 'The signed-in user, what the admin allows them, their preferences and the gateway URL',
  }),
  listSlots: endpoint({
    method: 'GET',
    path: `${P}/slots`,
    auth: 'session',
    response: PortalSlotList,
    status: 200,
    summary: 'The slots the admin gave the caller, with state and Claude Code status',
  }),
  startSlot: endpoint({
    method: 'POST',
    path: `${P}/slots/:id/start`,
    auth: 'session',
    params: PortalSlotParams,
    response: PortalSlot,
    status: 200,
    summary: 'Start one of the caller’s slots',
  }),
  stopSlot: endpoint({
    method: 'POST',
    path: `${P}/slots/:id/stop`,
    auth: 'session',
    params: PortalSlotParams,
    response: PortalSlot,
    status: 200,
    summary: 'Stop one of the caller’s slots',
  }),
  restartSlot: endpoint({
    method: 'POST',
    path: `${P}/slots/:id/restart`,
    auth: 'session',
    params: PortalSlotParams,
    response: PortalSlot,
    status: 200,
    summary: 'Restart one of the caller’s slots',
  }),
  slotTicket: endpoint({
    method: 'POST',
    path: `${P}/slots/:id/ticket`,
    auth: 'session',
    params: PortalSlotParams,
    response: PortalTicket,
    status: 201,
    summary: 'A single-use terminal ticket for the public listener, bound to this page’s Origin and session',
  }),
  listKeys: endpoint({
    method: 'GET',
    path: `${P}/keys`,
    auth: 'session',
    response: PortalKeyList,
    status: 200,
    summary: 'The caller’s API keys (never the keys themselves) and the admin’s limits',
  }),
  createKey: endpoint({
    method: 'POST',
    path: `${P}/keys`,
    auth: 'session',
    body: CreatePortalKeyBody,
    response: CreatedPortalKey,
    status: 201,
    summary: 'Create a key within the admin’s limits; the answer is the only time it is shown',
  }),
  updateKey: endpoint({
    method: 'PATCH',
    path: `${P}/keys/:id`,
    auth: 'session',
    params: PortalKeyParams,
    body: UpdatePortalKeyBody,
    response: PortalKey,
    status: 200,
    summary: 'Rename a key or change when it expires',
  }),
  revokeKey: endpoint({
    method: 'POST',
    path: `${P}/keys/:id/revoke`,
    auth: 'session',
    params: PortalKeyParams,
    response: PortalKey,
    status: 200,
    summary: 'Stop a key at once',
  }),
  rotateKey: endpoint({
    method: 'POST',
    path: `${P}/keys/:id/rotate`,
    auth: 'session',
    params: PortalKeyParams,
    body: RotatePortalKeyBody,
    response: CreatedPortalKey,
    status: 201,
    summary: 'A replacement key (shown once); the old one works for the grace period',
  }),
  usage: endpoint({
    method: 'GET',
    path: `${P}/usage`,
    auth: 'session',
    query: PortalUsageQuery,
    response: PortalUsage,
    status: 200,
    summary: 'The caller’s tokens and cost per day or model over a range (daily rollups, at most 400 days)',
  }),
  quota: endpoint({
    method: 'GET',
    path: `${P}/quota`,
    auth: 'session',
    response: PortalQuota,
    status: 200,
    summary: 'What each of the caller’s quotas (and their keys’) leaves and when it resets',
  }),
  getPrefs: endpoint({
    method: 'GET',
    path: `${P}/prefs`,
    auth: 'session',
    response: PortalPrefs,
    status: 200,
    summary: 'The caller’s portal preferences (defaults until saved)',
  }),
  putPrefs: endpoint({
    method: 'PUT',
    path: `${P}/prefs`,
    auth: 'session',
    body: z.unknown(),
    response: PortalPrefs,
    status: 200,
    summary: 'Replace the caller’s preferences; an unknown version or bad value: 400 PORTAL_PREFS_INVALID',
  }),
} as const;
export type PortalApi = typeof portalApi;
