import type { FastifyRequest } from 'fastify';
import { AgentErrorCode, CSRF_HEADER } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { sameOriginRequest } from '../site/site.js';
import type { AuthService } from './service.js';

export interface PortalCaller {
  userId: string;
  username: string;
  sessionId: string;
}

export interface SessionGuard {
  /** The signed-in, active user of this request, or null (no/expired/revoked session, disabled user). */
  caller(request: FastifyRequest): Promise<PortalCaller | null>;
  /** caller() or AppError 401 AUTH_SESSION_REQUIRED; for POST/PUT/PATCH/DELETE also the CSRF check:
   *  sameOriginRequest(request) AND header `x-slotdeck-csrf` equal to the session's CSRF token (else 403 AUTH_CSRF_REFUSED). */
  require(request: FastifyRequest): Promise<PortalCaller>;
  /** Sessions that ended (sign-out, revoke, user disabled, expiry found): open terminals of theirs are closed. */
  onSessionsEnded(listener: (sessionIds: string[]) => void): () => void;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What requests bring to better-auth: the peer's address (never a client's X-Forwarded-For), agent, cookies. */
export function requestContext(request: FastifyRequest): {
  ip: string | null;
  userAgent: string | null;
  cookie: string | null;
} {
  const userAgent = request.headers['user-agent'];
  const cookie = request.headers.cookie;
  return {
    ip: request.ip || null,
    userAgent: typeof userAgent === 'string' ? userAgent : null,
    cookie: typeof cookie === 'string' ? cookie : null,
  };
}

/** The session guard of the public site, on better-auth's sessions (one lookup per request). */
export class AuthSessionGuard implements SessionGuard {
  private readonly seen = new WeakMap<FastifyRequest, Promise<PortalCaller | null>>();

  constructor(private readonly service: AuthService) {}

  caller(request: FastifyRequest): Promise<PortalCaller | null> {
    let pending = this.seen.get(request);
    if (!pending) {
      pending = this.lookUp(request);
      this.seen.set(request, pending);
    }
    return pending;
  }

  async require(request: FastifyRequest): Promise<PortalCaller> {
    const caller = await this.caller(request);
    if (!caller)
      throw new AppError(
        AgentErrorCode.AUTH_SESSION_REQUIRED,
        401,
        'Sign in first (your session ended or never began).',
      );
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers[CSRF_HEADER];
      if (
        !sameOriginRequest(request) ||
        !this.service.csrfMatches(caller.sessionId, typeof header === 'string' ? header : undefined)
      )
        throw new AppError(
          AgentErrorCode.AUTH_CSRF_REFUSED,
          403,
          'This request did not come from the portal page itself. Reload the portal and try again.',
        );
    }
    return caller;
  }

  onSessionsEnded(listener: (sessionIds: string[]) => void): () => void {
    return this.service.onSessionsEnded(listener);
  }

  private async lookUp(request: FastifyRequest): Promise<PortalCaller | null> {
    const cookie = request.headers.cookie;
    if (typeof cookie !== 'string' || !cookie.includes(`${this.service.cookieName}=`)) return null;
    const auth = await this.service.auth();
    let found: { session: { id: string; userId: string; createdAt: Date; expiresAt: Date } } | null;
    try {
      found = await auth.api.getSession({ headers: this.service.headersOf(requestContext(request)) });
    } catch {
      return null;
    }
    if (!found) return null;
    const { session } = found;
    if (this.service.sessionEnd(session) <= this.service.clock()) {
      this.service.endSessions([session.id]);
      return null;
    }
    if (this.service.userProblem(session.userId)) return null;
    const user = this.service.sessionUser(session.userId);
    return { userId: user.id, username: user.username, sessionId: session.id };
  }
}
