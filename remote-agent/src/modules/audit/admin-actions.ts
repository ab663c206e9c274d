import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AgentErrorCode } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { runInAuditScope, type AuditLog, type AuditScope } from './audit-log.js';

/** The panel names the host profile it acts as, percent-encoded UTF-8 (a header carries only ASCII). */
export const ACTOR_HEADER = 'x-slotdeck-actor';
/** Who acted when a client (curl, the CLI) names nobody. */
export const UNNAMED_ADMIN = 'admin token';
const MAX_ACTOR = 64;

/** The header's actor name, `admin token` without one; null when it is not a readable name. */
export function actorFromHeader(value: string | string[] | undefined): string | null {
  if (value === undefined) return UNNAMED_ADMIN;
  if (Array.isArray(value) || value.length > 4096) return null;
  let name: string;
  try {
    name = decodeURIComponent(value).trim();
  } catch {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (name === '' || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return null;
  return [...name].slice(0, MAX_ACTOR).join('');
}

const scopes = new WeakMap<FastifyRequest, AuditScope>();
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Every state-changing admin API call (a non-GET route marked `auth: 'admin'`) goes in the audit log: who (the
 * panel's host profile, from x-slotdeck-actor), the route (`POST /api/v1/slots/:id/start`), its target (the id in
 * the path), when, from where and whether it worked (status below 400). A route that writes its own admin row (sign-in
 * settings, invites, share links: modules/auth, modules/share) gets that row instead of this one, with the same actor.
 * Registered after the admin token check, whose failure ends the request before this hook: refused requests are in
 * the agent's log, not here.
 */
export function registerAdminAudit(app: FastifyInstance, audit: AuditLog): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config?.auth !== 'admin' || READS.has(request.method)) {
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
  app.addHook('onResponse', (request, reply, done) => {
    const scope = scopes.get(request);
    if (!scope || scope.recorded) {
      done();
      return;
    }
    const params = (request.params ?? {}) as Record<string, unknown>;
    const values = Object.entries(params).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
    const targetKey = typeof params.id === 'string' ? 'id' : (values[0]?.[0] ?? null);
    const target = targetKey === null ? null : (params[targetKey] as string);
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
        },
      });
    } catch (error) {
      request.log.error({ err: error }, 'could not write the audit row of an admin action');
    }
    done();
  });
}
