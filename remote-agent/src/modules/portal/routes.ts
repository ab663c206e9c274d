import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  AgentErrorCode,
  PageOrigin,
  portalApi,
  PortalPrefs,
  PUBLIC_TERMINAL_PATH,
  USAGE_MAX_RANGE_DAYS,
  type ApiKey,
  type CreatedKey,
  type CreatedPortalKey,
  type Endpoint,
  type KeyScope,
  type PortalKey,
  type PortalLimits,
  type PortalQuota,
  type PortalSlot,
  type PortalUsage,
  type Slot,
  type UsageTotals,
  type ValidationIssue,
} from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { toIssues } from '../../http/route.js';
import type { AuditLog } from '../audit/audit-log.js';
import { withRemaining } from '../gateway/self-service.js';
import type { SlotService } from '../slots/service.js';
import type { TerminalBackend } from '../terminal/backend.js';
import type { TicketStore } from '../terminal/tickets.js';
import type { UsageQueries } from '../usage/queries.js';
import type { QuotaService } from '../usage/quotas.js';
import type { UserService } from '../users/service.js';
import type { ProcessInfo } from '../../util/procfs.js';
import { claudeStatus, processSnapshot } from './claude-status.js';
import type { PrefsStore } from './prefs.js';

/** The signed-in end user of a request (modules/auth/guard.ts's PortalCaller). */
export interface PortalCaller {
  userId: string;
  username: string;
  sessionId: string;
}

/** What the portal needs of the sign-in module's SessionGuard (modules/auth/guard.ts). */
export interface PortalGuard {
  caller(request: FastifyRequest): Promise<PortalCaller | null>;
  /** The caller or 401 AUTH_SESSION_REQUIRED; for state-changing methods also the CSRF check (403 AUTH_CSRF_REFUSED). */
  require(request: FastifyRequest): Promise<PortalCaller>;
  onSessionsEnded(listener: (sessionIds: string[]) => void): () => void;
}

export interface PortalDeps {
  guard: PortalGuard;
  slots: SlotService;
  users: UserService;
  usage: UsageQueries;
  quotas: QuotaService;
  tickets: TicketStore;
  prefs: PrefsStore;
  audit: AuditLog;
  /** What the admin allows end users (sign-in settings: portalKeyLimit, portalKeyScopes, sharing). */
  limits: () => PortalLimits;
  /** The address the admin configured for end users (config portal.publicUrl), or null. */
  publicUrl: () => string | null;
  /** Where programs reach the gateway when nothing else says (gateway.url()). */
  gatewayUrl: () => string | null;
  /** Every terminal backend, to close an ended session's terminals. */
  backends: () => TerminalBackend[];
  /** Lifetime of a portal terminal ticket. */
  ticketTtlMs?: number;
}

/** A portal ticket's lease: the terminals it opens close when the session ends (guard.onSessionsEnded). */
export const sessionLease = (sessionId: string): string => `session:${sessionId}`;

const slotNotYours = (id: string): AppError =>
  new AppError(
    AgentErrorCode.PORTAL_SLOT_NOT_YOURS,
    404,
    `You have no slot with id ${id}. Reload the list of your slots; ask your admin if a slot you expect is missing.`,
  );

const keyNotYours = (id: string): AppError =>
  new AppError(AgentErrorCode.KEY_NOT_FOUND, 404, `You have no API key with id ${id}. Reload the list of your keys.`);

function validationError(issues: ValidationIssue[]): AppError {
  const summary = issues.map((i) => `${i.path} ${i.message}`).join('; ');
  return new AppError(AgentErrorCode.VALIDATION_FAILED, 400, `Invalid request: ${summary}`, issues);
}

type Infer<T> = T extends z.ZodType ? z.output<T> : never;
interface Input<E extends Endpoint> {
  caller: PortalCaller;
  params: Infer<E['params']>;
  query: Infer<E['query']>;
  body: Infer<E['body']>;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * Like http/route.ts's bindRoute, but the session comes first: nobody learns what a route validates (or whether an
 * id exists) without being signed in, and a state-changing request passes the CSRF check before anything else.
 */
function portalRoute<E extends Endpoint>(
  site: FastifyInstance,
  guard: PortalGuard,
  endpoint: E,
  handler: (input: Input<E>) => Promise<z.input<E['response']>> | z.input<E['response']>,
): void {
  site.route({
    method: endpoint.method,
    url: endpoint.path,
    handler: async (request, reply) => {
      const caller = await guard.require(request);
      const issues: ValidationIssue[] = [];
      const part = (where: string, schema: z.ZodType | undefined, value: unknown): unknown => {
        if (!schema) return undefined;
        const parsed = schema.safeParse(where === 'body' && (value === undefined || value === null) ? {} : value);
        if (parsed.success) return parsed.data;
        issues.push(...toIssues(where, parsed.error));
        return undefined;
      };
      const params = part('params', endpoint.params, request.params);
      const query = part('query', endpoint.query, request.query ?? {});
      const body = part('body', endpoint.body, request.body);
      if (!endpoint.body && request.body !== undefined && request.body !== null) {
        const empty = typeof request.body === 'object' && Object.keys(request.body).length === 0;
        if (!empty) issues.push({ path: 'body', message: 'this route takes no body; send none' });
      }
      if (!endpoint.query && Object.keys((request.query as object | undefined) ?? {}).length > 0)
        issues.push({ path: 'query', message: 'this route takes no query parameters' });
      if (issues.length > 0) throw validationError(issues);
      reply.header('cache-control', 'no-store');
      const result = await handler({ caller, params, query, body, request, reply } as Input<E>);
      reply.status(endpoint.status);
      return result;
    },
  });
}

/** A Host header that can go into a URL and a shell line as it is (no spaces, quotes or shell characters). */
const SAFE_HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The gateway's base URL as this user reaches it: the admin's configured public address; else, as the portal and the
 * gateway share the public listener, the origin of the page (Origin or Referer, when they name this Host), else the
 * request's own scheme and Host.
 */
export function publicBaseUrl(request: FastifyRequest, configured: string | null, fallback: string | null): string {
  if (configured) return configured;
  const host = request.headers.host;
  if (host && SAFE_HOST.test(host)) {
    for (const candidate of [request.headers.origin, request.headers.referer]) {
      if (!candidate) continue;
      try {
        const url = new URL(candidate);
        if (url.host === host && (url.protocol === 'https:' || url.protocol === 'http:')) return url.origin;
      } catch {
        // not a URL: try the next
      }
    }
    return `${request.protocol === 'https' ? 'https' : 'http'}://${host}`;
  }
  return fallback ?? '';
}

const shellLines = (baseUrl: string, secret: string): string =>
  `export ANTHROPIC_BASE_URL=${baseUrl}\nexport ANTHROPIC_API_KEY=${secret}`;

const DAY_MS = 86_400_000;

export function registerPortalRoutes(site: FastifyInstance, deps: PortalDeps): void {
  const { guard, slots, users, audit } = deps;
  const ticketTtlMs = deps.ticketTtlMs ?? 30_000;

  const auditOf = (request: FastifyRequest, caller: PortalCaller) => ({
    actor: { type: 'user' as const, id: caller.userId },
    ip: request.ip,
    userAgent: request.headers['user-agent']?.slice(0, 300) ?? null,
  });

  // ------------------------------------------------------------ me and preferences

  portalRoute(site, guard, portalApi.me, ({ caller, request }) => {
    const user = users.get(caller.userId);
    return {
      user: { id: user.id, username: user.username, displayName: user.displayName, email: user.email },
      limits: deps.limits(),
      prefs: deps.prefs.get(caller.userId),
      gatewayBaseUrl: publicBaseUrl(request, deps.publicUrl(), deps.gatewayUrl()),
    };
  });

  portalRoute(site, guard, portalApi.getPrefs, ({ caller }) => deps.prefs.get(caller.userId));

  portalRoute(site, guard, portalApi.putPrefs, ({ caller, body }) => {
    const parsed = PortalPrefs.safeParse(body);
    if (!parsed.success) {
      const version = (body as { version?: unknown } | null)?.version;
      const issues = toIssues('body', parsed.error);
      const lead =
        typeof version === 'number' && version !== 1
          ? `Preferences version ${version} is unknown to this agent (it knows version 1).`
          : `Preferences not saved: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}.`;
      throw new AppError(
        AgentErrorCode.PORTAL_PREFS_INVALID,
        400,
        `${lead} Send {"version": 1, "theme": "light" | "dark" | "system", "terminalFontSize": 10 to 24}.`,
        issues,
      );
    }
    return deps.prefs.set(caller.userId, parsed.data);
  });

  // ------------------------------------------------------------ slots

  const toPortalSlot = (slot: Slot, table: Map<number, ProcessInfo> | null): PortalSlot => ({
    id: slot.id,
    name: slot.name,
    state: slot.state,
    failure: slot.failure,
    uptimeMs: slot.uptimeMs,
    viewers: slot.viewers,
    lastActivityAt: slot.lastActivityAt,
    claude: claudeStatus({ holderPid: slot.state === 'stopped' ? null : slot.pid, homeDir: slot.homeDir }, table),
    metered: slot.metered !== null,
  });

  /** The caller's slot, or the same 404 for a slot that is someone else's and one that does not exist. */
  const ownSlot = async (caller: PortalCaller, id: string): Promise<Slot> => {
    const slot = (await slots.list({ ownerId: caller.userId })).find((s) => s.id === id);
    if (!slot) throw slotNotYours(id);
    return slot;
  };

  portalRoute(site, guard, portalApi.listSlots, async ({ caller }) => {
    const mine = await slots.list({ ownerId: caller.userId });
    const table = processSnapshot();
    return { slots: mine.map((slot) => toPortalSlot(slot, table)) };
  });

  const slotAction = (
    endpoint: typeof portalApi.startSlot,
    action: 'slot.started' | 'slot.stopped' | 'slot.restarted',
    run: (id: string, by: string) => Promise<Slot>,
  ): void =>
    portalRoute(site, guard, endpoint, async ({ caller, params, request }) => {
      await ownSlot(caller, params.id);
      const entry = { ...auditOf(request, caller), action, target: params.id, detail: { via: 'portal' } };
      try {
        const slot = await run(params.id, `${caller.username} (portal)`);
        audit.record(entry);
        return toPortalSlot(slot, processSnapshot());
      } catch (error) {
        audit.record({ ...entry, outcome: 'failure' });
        throw error;
      }
    });
  slotAction(portalApi.startSlot, 'slot.started', (id) => slots.startSlot(id));
  slotAction(portalApi.stopSlot, 'slot.stopped', (id, by) => slots.stopSlot(id, by));
  slotAction(portalApi.restartSlot, 'slot.restarted', (id, by) => slots.restartSlot(id, by));

  portalRoute(site, guard, portalApi.slotTicket, async ({ caller, params, request }) => {
    const slot = await ownSlot(caller, params.id);
    // The ticket is bound to the page that asked: the WebSocket is refused from any other Origin.
    const origin = PageOrigin.safeParse(request.headers.origin);
    if (!origin.success || origin.data === 'app://slotdeck' || origin.data === 'file://') {
      throw new AppError(
        AgentErrorCode.TERMINAL_ORIGIN_REFUSED,
        403,
        'A terminal ticket is bound to the page that opens it, and this request named none (no Origin header). Open the terminal from the portal in a browser.',
      );
    }
    if (slot.state !== 'running' || !slots.backendOf(slot.id).isOpen(slot.id)) {
      throw new AppError(
        AgentErrorCode.SLOT_NOT_RUNNING,
        409,
        `Slot ${slot.name} is ${slot.state}; start it first (its Start button), then open the terminal.`,
      );
    }
    const { ticket, expiresAt } = deps.tickets.issue(
      {
        slotId: slot.id,
        mode: 'writable',
        origin: origin.data,
        audience: 'public',
        lease: sessionLease(caller.sessionId),
      },
      ticketTtlMs,
    );
    return {
      ticket,
      url: `${PUBLIC_TERMINAL_PATH.replace(':id', slot.id)}?ticket=${encodeURIComponent(ticket)}`,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  });

  // Ended sessions (sign-out, revoke, user disabled, expiry) close the terminals their tickets opened.
  guard.onSessionsEnded((sessionIds) => {
    for (const id of sessionIds) {
      // Tickets handed out a moment before must not open a terminal afterwards either.
      deps.tickets.revokeLease(sessionLease(id));
      for (const backend of deps.backends())
        backend.disconnectLease(sessionLease(id), 'your session ended; sign in again');
    }
  });

  // ------------------------------------------------------------ keys

  const toPortalKey = (key: ApiKey): PortalKey => ({ ...key, editable: key.slotId === null });
  const activeOwnKeys = (keys: ApiKey[]): number =>
    keys.filter((k) => k.slotId === null && k.state === 'active').length;

  /** The caller's key that they may change; another user's key answers like a missing one. */
  const ownEditableKey = (caller: PortalCaller, id: string): ApiKey => {
    const key = users.listKeys(caller.userId).find((k) => k.id === id);
    if (!key) throw keyNotYours(id);
    if (key.slotId !== null) {
      throw new AppError(
        AgentErrorCode.PORTAL_KEY_READ_ONLY,
        403,
        `Key ${key.prefix}… belongs to slot ${key.slotId}: your admin issued it for the slot and manages it. Create a key of your own instead.`,
      );
    }
    return key;
  };

  const created = (request: FastifyRequest, result: CreatedKey): CreatedPortalKey => {
    const gatewayBaseUrl = publicBaseUrl(request, deps.publicUrl(), deps.gatewayUrl());
    return {
      key: toPortalKey(result.key),
      secret: result.secret,
      shellLines: shellLines(gatewayBaseUrl, result.secret),
      gatewayBaseUrl,
    };
  };

  portalRoute(site, guard, portalApi.listKeys, ({ caller }) => {
    const keys = users.listKeys(caller.userId);
    return { keys: keys.map(toPortalKey), activeOwnKeys: activeOwnKeys(keys), limits: deps.limits() };
  });

  portalRoute(site, guard, portalApi.createKey, ({ caller, body, request }) => {
    const limits = deps.limits();
    const scopes: KeyScope[] = body.scopes ? [...new Set(body.scopes)] : limits.allowedScopes;
    const refused = scopes.filter((s) => !limits.allowedScopes.includes(s));
    const entry = { ...auditOf(request, caller), action: 'key.created' };
    if (refused.length > 0 || scopes.length === 0) {
      audit.record({ ...entry, outcome: 'failure', detail: { reason: 'scope', scopes: scopes.join(',') } });
      throw new AppError(
        AgentErrorCode.PORTAL_SCOPE_NOT_ALLOWED,
        403,
        limits.allowedScopes.length === 0
          ? 'Your admin does not let users create keys with any scope. Ask your admin for a key.'
          : `Your admin allows keys with ${limits.allowedScopes.join(' and ')} only; leave out ${refused.join(', ')}.`,
      );
    }
    // better-sqlite3 is synchronous: the count and the insert below cannot interleave with another request.
    const count = activeOwnKeys(users.listKeys(caller.userId));
    if (count >= limits.keyLimit) {
      audit.record({ ...entry, outcome: 'failure', detail: { reason: 'limit', limit: limits.keyLimit } });
      throw new AppError(
        AgentErrorCode.PORTAL_KEY_LIMIT,
        409,
        limits.keyLimit === 0
          ? 'Your admin does not let users create keys. Ask your admin for a key.'
          : `You have ${count} active keys, the most your admin allows (${limits.keyLimit}). Revoke one you no longer use, then create the new one.`,
      );
    }
    const result = users.createKey(caller.userId, {
      name: body.name,
      scopes,
      expiresAt: body.expiresAt ?? null,
    });
    audit.record({
      ...entry,
      target: result.key.id,
      detail: { name: result.key.name, prefix: result.key.prefix, scopes: scopes.join(','), via: 'portal' },
    });
    return created(request, result);
  });

  portalRoute(site, guard, portalApi.updateKey, ({ caller, params, body, request }) => {
    const current = ownEditableKey(caller, params.id);
    if (body.expiresAt !== undefined) {
      const wanted = body.expiresAt === null ? null : Date.parse(body.expiresAt);
      const currentEnd = current.expiresAt === null ? null : Date.parse(current.expiresAt);
      if (currentEnd !== null && (wanted === null || wanted > currentEnd) && !audit.keyMadeInPortal(current.id))
        throw new AppError(
          AgentErrorCode.PORTAL_KEY_READ_ONLY,
          403,
          `Your admin set key ${current.prefix}… to expire at ${current.expiresAt}: you may bring that sooner, not later. Ask your admin to extend it.`,
        );
      users.setKeyExpiry(params.id, wanted);
    }
    const key = body.name !== undefined ? users.updateKey(params.id, { name: body.name }) : users.getKey(params.id);
    audit.record({
      ...auditOf(request, caller),
      action: 'key.updated',
      target: key.id,
      detail: {
        via: 'portal',
        ...(body.name !== undefined ? { name: key.name } : {}),
        ...(body.expiresAt !== undefined ? { expiresAt: key.expiresAt } : {}),
      },
    });
    return toPortalKey(key);
  });

  portalRoute(site, guard, portalApi.revokeKey, ({ caller, params, request }) => {
    ownEditableKey(caller, params.id);
    const key = users.revokeKey(params.id);
    audit.record({ ...auditOf(request, caller), action: 'key.revoked', target: key.id, detail: { via: 'portal' } });
    return toPortalKey(key);
  });

  portalRoute(site, guard, portalApi.rotateKey, ({ caller, params, body, request }) => {
    const old = ownEditableKey(caller, params.id);
    // Only an active key rotates (a rotating one already has its replacement): each rotation adds an active key.
    if (old.state !== 'active')
      throw new AppError(
        AgentErrorCode.KEY_NOT_ACTIVE,
        409,
        `Key ${old.prefix}… is ${old.state}; only an active key can be rotated. Use its replacement, or create a new key.`,
      );
    const limits = deps.limits();
    // The old key stops counting as active, the new one counts: the total must stay within the admin's limit.
    const othersActive = activeOwnKeys(users.listKeys(caller.userId)) - 1;
    if (othersActive + 1 > limits.keyLimit)
      throw new AppError(
        AgentErrorCode.PORTAL_KEY_LIMIT,
        409,
        `You have ${othersActive + 1} active keys, more than your admin now allows (${limits.keyLimit}). Revoke one you no longer use, then rotate.`,
      );
    const scopes = old.scopes.filter((scope) => limits.allowedScopes.includes(scope));
    if (scopes.length === 0)
      throw new AppError(
        AgentErrorCode.PORTAL_SCOPE_NOT_ALLOWED,
        403,
        `Your admin no longer allows this key's scopes (${old.scopes.join(', ')}). Revoke it and create a new key.`,
      );
    const result = users.rotateKey(params.id, { graceSeconds: body.graceSeconds }, (kept) =>
      kept.filter((scope) => limits.allowedScopes.includes(scope)),
    );
    audit.record({
      ...auditOf(request, caller),
      action: 'key.rotated',
      target: params.id,
      detail: { via: 'portal', newKeyId: result.key.id, graceSeconds: body.graceSeconds },
    });
    return created(request, result);
  });

  // ------------------------------------------------------------ usage and quota

  portalRoute(site, guard, portalApi.usage, ({ caller, query }) => {
    const from = Date.parse(query.from);
    const to = Date.parse(query.to);
    if (!(from < to) || to - from > USAGE_MAX_RANGE_DAYS.day * DAY_MS) {
      throw new AppError(
        AgentErrorCode.USAGE_RANGE_INVALID,
        400,
        from < to
          ? `The range is too long: pick at most ${USAGE_MAX_RANGE_DAYS.day} days.`
          : '`from` must be before `to`: pick a start before the end.',
      );
    }
    const summary = deps.usage.summary({
      from: query.from,
      to: query.to,
      bucket: 'day',
      groupBy: 'model',
      userId: caller.userId,
    });
    const groups =
      query.groupBy === 'model'
        ? summary.groups
        : byDay(summary.series).map(([day, totals]) => ({ key: day, label: day.slice(0, 10), totals }));
    const answer: PortalUsage = {
      from: summary.from,
      to: summary.to,
      groupBy: query.groupBy,
      totals: summary.totals,
      groups,
      series: summary.series,
    };
    return answer;
  });

  portalRoute(site, guard, portalApi.quota, ({ caller }) => {
    const userQuotas = deps.quotas.status('user', caller.userId).map((q) => ({ ...withRemaining(q), key: null }));
    const keyQuotas = users
      .listKeys(caller.userId)
      .filter((k) => k.state === 'active' || k.state === 'rotating')
      .flatMap((k) =>
        deps.quotas
          .status('key', k.id)
          .map((q) => ({ ...withRemaining(q), key: { id: k.id, name: k.name, prefix: k.prefix } })),
      );
    const answer: PortalQuota = { quotas: [...userQuotas, ...keyQuotas] };
    return answer;
  });
}

/** Series points (per day and model) summed per day, oldest first. */
function byDay(series: PortalUsage['series']): Array<[string, UsageTotals]> {
  const days = new Map<string, UsageTotals>();
  for (const point of series) {
    const total = days.get(point.bucketStart);
    if (!total) {
      days.set(point.bucketStart, { ...point.totals });
      continue;
    }
    for (const field of Object.keys(total) as Array<keyof UsageTotals>) total[field] += point.totals[field];
  }
  return [...days].sort(([a], [b]) => (a < b ? -1 : 1));
}
