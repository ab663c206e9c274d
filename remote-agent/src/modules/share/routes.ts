import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AgentErrorCode, SHARE_PAGE_PATH, shareApi, type SharePageData } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute } from '../../http/route.js';
import { sendPage } from '../site/pages.js';
import { allowFraming } from '../site/site.js';
import { ShareThrottledError, type ShareRequestContext, type ShareService } from './service.js';

/** The signed-in end user of a public request (modules/auth's SessionGuard has this shape). */
export interface ShareSessions {
  caller(request: FastifyRequest): Promise<{ userId: string; sessionId?: string } | null>;
  /** The caller, or a 401; for state-changing requests also the CSRF check (403). */
  require(request: FastifyRequest): Promise<{ userId: string }>;
}

const userAgentOf = (request: FastifyRequest): string | null => {
  const value = request.headers['user-agent'];
  return typeof value === 'string' ? value : null;
};

const adminContext = (request: FastifyRequest): ShareRequestContext => ({
  actor: { type: 'admin', id: null },
  ip: request.ip,
  userAgent: userAgentOf(request),
});

/** Admin listener: create, list and revoke a slot's share links. */
export function registerShareAdminRoutes(app: FastifyInstance, shares: ShareService): void {
  bindRoute(app, shareApi.createShare, ({ params, body, request }) =>
    shares.create(params.id, body, 'admin', adminContext(request)),
  );
  bindRoute(app, shareApi.listShares, ({ params }) => ({ shares: shares.list(params.id) }));
  bindRoute(app, shareApi.revokeShare, ({ params, request }) => shares.revoke(params.id, adminContext(request)));
}

export interface SharePublicDeps {
  shares: ShareService;
  /** Sign-in (modules/auth); null until it is wired: sign-in-required shares then open for nobody. */
  sessions: ShareSessions | null;
  /** The admin's sign-in settings: whether slot owners may share their slots from the portal. */
  ownersMayShare: () => boolean;
  /** Sends the share page (default: the web bundle's share.html through pages.ts). */
  sendSharePage?: (reply: FastifyReply, data: SharePageData) => Promise<FastifyReply>;
}

const PAGE_STATUS: Record<SharePageData['state'], number> = {
  active: 200,
  expired: 410,
  revoked: 410,
  'not-found': 404,
};

/**
 * Public listener: the share page, its ticket exchange, and the owner's share routes in the portal. The token is in
 * the path of the first two; the agent's request logging redacts it (logger.ts redactUrl).
 */
export function registerSharePublicRoutes(site: FastifyInstance, deps: SharePublicDeps): void {
  const { shares } = deps;
  const sendSharePage = deps.sendSharePage ?? ((reply, data) => sendPage(reply, 'share', data));

  site.get<{ Params: { token: string } }>(SHARE_PAGE_PATH, async (request, reply) => {
    const { row, page } = shares.lookup(request.params.token);
    // The link must not leak to other sites through Referer, from the page or anything it loads.
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    // A known share keeps its embedders even once expired or revoked, so the embedding site shows the clear page.
    if (row) allowFraming(reply, row.frameAncestors);
    reply.status(PAGE_STATUS[page.state]);
    return sendSharePage(reply, page);
  });

  bindRoute(site, shareApi.shareTicket, async ({ params, request, reply }) => {
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    const origin = request.headers.origin;
    // The share page always sends its Origin; `null` (a sandboxed frame, a file) or none gets a ticket that could
    // never open, so none is minted (nor counted as an open).
    if (typeof origin !== 'string' || origin === 'null')
      throw new AppError(
        AgentErrorCode.SHARE_NOT_ALLOWED,
        403,
        'This share link opens only from its own page: open the link itself in a browser tab.',
      );
    const caller = deps.sessions ? await deps.sessions.caller(request) : null;
    try {
      return shares.openTicket(params.token, origin, caller, { ip: request.ip, userAgent: userAgentOf(request) });
    } catch (error) {
      if (error instanceof ShareThrottledError) reply.header('retry-after', String(error.retryAfterSeconds));
      throw error;
    }
  });

  /**
   * The signed-in caller; for making links also that the admin lets owners share (checked before anything about the
   * slot is said). Listing and revoking stay open to owners when sharing is turned off, so they can see and end
   * their old links (which do not open meanwhile: ShareService's ownersMayShare).
   */
  const ownerSession = async (request: FastifyRequest, creating = false): Promise<ShareRequestContext> => {
    if (!deps.sessions)
      throw new AppError(AgentErrorCode.AUTH_SESSION_REQUIRED, 401, 'Sign in first: open / on this site.');
    const caller = await deps.sessions.require(request);
    if (creating && !deps.ownersMayShare())
      throw new AppError(
        AgentErrorCode.SHARE_NOT_ALLOWED,
        403,
        'The administrator has not allowed slot owners to share their slots. Ask them to share it, or to turn sharing on.',
      );
    return { actor: { type: 'user', id: caller.userId }, ip: request.ip, userAgent: userAgentOf(request) };
  };
  const requireOwner = (context: ShareRequestContext, slotId: string): void => {
    const slot = shares.findSlot(slotId);
    // Someone else's slot and no slot at all get the same answer: ids of others' slots are not confirmed.
    if (!slot || slot.ownerId !== context.actor.id)
      throw new AppError(
        AgentErrorCode.PORTAL_SLOT_NOT_YOURS,
        404,
        'You have no slot with this id: only its owner (or the administrator) can share a slot.',
      );
  };

  bindRoute(site, shareApi.portalCreateShare, async ({ params, body, request }) => {
    const context = await ownerSession(request, true);
    requireOwner(context, params.id);
    return shares.create(params.id, body, context.actor.id!, context);
  });
  bindRoute(site, shareApi.portalListShares, async ({ params, request }) => {
    const context = await ownerSession(request);
    requireOwner(context, params.id);
    return { shares: shares.list(params.id) };
  });
  bindRoute(site, shareApi.portalRevokeShare, async ({ params, request }) => {
    const context = await ownerSession(request);
    const share = shares.find(params.id);
    if (!share) throw new AppError(AgentErrorCode.SHARE_NOT_FOUND, 404, 'No share link with this id among your slots.');
    try {
      requireOwner(context, share.slotId);
    } catch {
      throw new AppError(AgentErrorCode.SHARE_NOT_FOUND, 404, 'No share link with this id among your slots.');
    }
    if (share.createdBy === 'admin')
      throw new AppError(
        AgentErrorCode.SHARE_NOT_ALLOWED,
        403,
        'The administrator made this share link; only they can revoke it. Ask them to.',
      );
    return shares.revoke(params.id, context);
  });
}
