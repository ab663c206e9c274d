import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AgentErrorCode, AUDIT_PATH, BACKUP_FILE_PATH, LOG_DOWNLOAD_PATH } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { runInAuditScope, type AuditLog, type AuditScope } from './audit-log.js';

/** The panel names the host profile it acts as, percent-encoded UTF-8 (a header carries only ASCII). */
export const ACTOR_HEADER = 'x-slotdeck-actor';
/** Who acted when a client (curl, the CLI) names nobody. */
export const UNNAMED_ADMIN = 'admin token';
const MAX_ACTOR = 64;

/** Invisible format characters (bidi overrides and isolates, zero-width spaces and joiners, BOM, soft hyphen...). */
const FORMAT_CHARACTERS = /\p{Cf}/gu;
/** Control characters and line/paragraph separators: no name holds one. */
const CONTROL_CHARACTERS = /[\p{Cc}\p{Zl}\p{Zp}]/u;

/**
 * The header's actor name, `admin token` without one; null when it is not a readable name. Invisible format
 * characters are removed, so a name cannot look like another one in the audit log (`Prod\u202Edb` or `Ad\u200Bmin`
 * are stored as the `Proddb` and `Admin` a reader sees); a name with a control character is refused.
 */
export function actorFromHeader(value: string | string[] | undefined): string | null {
  if (value === undefined) return UNNAMED_ADMIN;
  if (Array.isArray(value) || value.length > 4096) return null;
  let name: string;
  try {
    name = decodeURIComponent(value);
  } catch {
    return null;
  }
  if (CONTROL_CHARACTERS.test(name)) return null;
  name = name.replace(FORMAT_CHARACTERS, '').trim();
  if (name === '') return null;
  return [...name].slice(0, MAX_ACTOR).join('');
}

const scopes = new WeakMap<FastifyRequest, AuditScope>();
/** The id of what a request created, read from its JSON answer. */
const createdIds = new WeakMap<FastifyRequest, string>();
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Reads that hand data out whole: downloads of a backup or a log. The audit export is one too (with `format`). */
const DOWNLOADS = new Set<string>([BACKUP_FILE_PATH, LOG_DOWNLOAD_PATH]);
/** Answers bigger than this are not parsed for a created id (the ones that create something are small). */
const MAX_PARSED_ANSWER = 64 * 1024;

/** Whether an admin request is audited: every state-changing one, and the reads that download data. */
function audited(request: FastifyRequest): boolean {
  if (request.routeOptions.config?.auth !== 'admin') return false;
  if (!READS.has(request.method)) return true;
  const url = request.routeOptions.url ?? '';
  if (url === AUDIT_PATH)
    return typeof request.query === 'object' && request.query !== null && 'format' in request.query;
  return request.method === 'GET' && DOWNLOADS.has(url);
}

/** The string `id` of a JSON answer (a created slot, user, key or backup), when it has one. */
function answerId(payload: unknown, contentType: unknown): string | null {
  if (typeof payload !== 'string' || payload.length > MAX_PARSED_ANSWER) return null;
  if (typeof contentType !== 'string' || !contentType.startsWith('application/json')) return null;
  try {
    const body = JSON.parse(payload) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
    // `{ id }`, or one level down (`{ key: { id }, secret }`): only the id is kept, never anything beside it.
    for (const value of [body, ...Object.values(body as Record<string, unknown>)]) {
      const id = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).id : undefined;
      if (typeof id === 'string' && id.length > 0 && id.length <= 128) return id;
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * Every state-changing admin API call (a non-GET route marked `auth: 'admin'`) goes in the audit log, and so does
 * every download (a backup file, a log, the audit export itself): who (the panel's host profile, from
 * x-slotdeck-actor), the route (`POST /api/v1/slots/:id/start`), its target (the id in the path, or for a create
 * the id in its answer), when, from where and whether it worked (status below 400). A route that writes its own admin row (sign-in
 * settings, invites, share links: modules/auth, modules/share) gets that row instead of this one, with the same actor.
 * Registered after the admin token check, whose failure ends the request before this hook: refused requests are in
 * the agent's log, not here.
 */
export function registerAdminAudit(app: FastifyInstance, audit: AuditLog): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (!audited(request)) {
      done();
      return;
    }
    const name = actorFromHeader(request.headers[ACTOR_HEADER]);
    if (name === null) {
      done(
        new AppError(
          AgentErrorCode.VALIDATION_FAILED,
          400,
          `The ${ACTOR_HEADER} header must be a name (percent-encoded UTF-8, no control characters), or left out.`,
          [{ path: `headers.${ACTOR_HEADER}`, message: 'must be a percent-encoded name without control characters' }],
        ),
      );
      return;
    }
    const userAgent = request.headers['user-agent'];
    const scope: AuditScope = {
      actor: { type: 'admin', id: name },
      ip: request.ip,
      userAgent: typeof userAgent === 'string' ? userAgent : null,
      recorded: false,
    };
    scopes.set(request, scope);
    runInAuditScope(scope, () => done());
  });
  // A POST that creates something names it only in its answer: that id becomes the row's target.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (scopes.has(request) && (request.method === 'POST' || request.method === 'PUT') && reply.statusCode < 400) {
      const id = answerId(payload, reply.getHeader('content-type'));
      if (id !== null) createdIds.set(request, id);
    }
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const scope = scopes.get(request);
    if (!scope || scope.recorded) {
      done();
      return;
    }
    const params = (request.params ?? {}) as Record<string, unknown>;
    const values = Object.entries(params).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
    const targetKey = typeof params.id === 'string' ? 'id' : (values[0]?.[0] ?? null);
    const created = createdIds.get(request) ?? null;
    // No id in the path: the created thing is the target; else it is named beside it (a user's new key).
    const target = targetKey === null ? created : (params[targetKey] as string);
    const extra: Record<string, string> = {};
    if (created !== null && targetKey !== null && created !== target) extra.createdId = created;
    if (READS.has(request.method)) {
      const format = (request.query as Record<string, unknown> | undefined)?.format;
      if (typeof format === 'string') extra.format = format;
    }
    try {
      audit.record({
        actor: scope.actor,
        action: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
        target,
        outcome: reply.statusCode < 400 ? 'success' : 'failure',
        ip: scope.ip,
        userAgent: scope.userAgent,
        detail: {
          status: reply.statusCode,
          ...Object.fromEntries(values.filter(([key]) => key !== targetKey)),
          ...extra,
        },
      });
    } catch (error) {
      request.log.error({ err: error }, 'could not write the audit row of an admin action');
    }
    done();
  });
}
