import { randomBytes } from 'node:crypto';
import {
  AgentErrorCode,
  SHARE_TOKEN_PATTERN,
  type CreateShareBody,
  type CreatedShare,
  type Share,
  type SharePageData,
  type ShareTicket,
  PUBLIC_TERMINAL_PATH,
} from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { randomId } from '../../util/ids.js';
import type { AuditActor } from '../audit/audit-log.js';
import type { TerminalBackend } from '../terminal/backend.js';
import type { TicketStore } from '../terminal/tickets.js';
import { type ShareStore, tokenDigest, type ShareRow } from './store.js';
import { OncePer, TokenBuckets } from './throttle.js';

/** A share viewer's terminal ticket lives this long (the page exchanges and uses it at once). */
export const SHARE_TICKET_TTL_MS = 30_000;
/** How often open viewers of shares that expired (or lost their maker's rights) meanwhile are looked for. */
const EXPIRY_SWEEP_MS = 5_000;
/** An ended share stays watched this long: longer than a redeemed ticket may wait for its opening message. */
const ENDED_WATCH_MS = 60_000;
/** Viewers of one share at once, whatever its maxViewers says (or when it says nothing). */
export const SHARE_VIEWER_CAP = 20;
/** Active share links of one slot at once. */
export const MAX_ACTIVE_SHARES_PER_SLOT = 50;
/** Ticket exchanges: per address and per share, a burst then one more every refill. */
export const EXCHANGE_LIMITS = {
  perAddress: { burst: 30, refillMs: 2_000 },
  perShare: { burst: 60, refillMs: 1_000 },
};
/** At most one failed-open audit row per share and address this often (refused tries are otherwise free). */
const FAILURE_AUDIT_INTERVAL_MS = 60_000;

/** A refused ticket exchange that may be tried again later: the route sets Retry-After. */
export class ShareThrottledError extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      AgentErrorCode.SHARE_THROTTLED,
      429,
      `Too many tries to open this link from here. Wait ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'} and reload.`,
    );
  }
}

export const shareLease = (shareId: string): string => `share:${shareId}`;

/** The slot as shares need it. */
export interface ShareSlot {
  id: string;
  name: string;
  ownerId: string | null;
}

/** Where audit entries go (modules/audit's AuditLog). */
export interface ShareAudit {
  record(entry: {
    actor: AuditActor;
    action: string;
    target?: string | null;
    outcome?: 'success' | 'failure';
    ip?: string | null;
    userAgent?: string | null;
    detail?: Record<string, string | number | boolean | null>;
  }): void;
}

/** Who asks, for the audit log. */
export interface ShareRequestContext {
  actor: AuditActor;
  ip: string | null;
  userAgent: string | null;
}

export interface ShareServiceDeps {
  store: ShareStore;
  slotOf: (slotId: string) => ShareSlot | null;
  backendOf: (slotId: string) => TerminalBackend;
  tickets: TicketStore;
  audit: ShareAudit;
  /** Base of share links (portal.publicUrl, else the gateway's own URL); null while there is no public listener. */
  publicUrl: () => string | null;
  /**
   * Whether slot owners may share from the portal (the admin's sign-in settings). A share an owner made works only
   * while they still may: sharing allowed, the slot still theirs, the user active. Otherwise it counts as revoked
   * (it does not open, and the sweep closes its viewers); it works again if all of that holds again before it
   * expires. Absent: owners' shares stay subject to the rest only.
   */
  ownersMayShare?: () => boolean;
  now?: () => number;
  exchangeLimits?: typeof EXCHANGE_LIMITS;
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/**
 * Share links of slots. The token (32 random bytes) is handed out once, in the link; only its SHA-256 is stored.
 * Viewers open the slot terminal with tickets of lease `share:<id>`, so a revoke (or an expiry) closes them at once.
 */
export class ShareService {
  private readonly now: () => number;
  /**
   * Shares whose viewers may still be connected: checked by the sweep. An ended one stays for ENDED_WATCH_MS, so a
   * socket that opens late is closed by a later sweep too.
   */
  private readonly watched = new Map<string, { slotId: string; endedAt: number | null }>();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly perAddress: TokenBuckets;
  private readonly perShare: TokenBuckets;
  private readonly failureAudits: OncePer;

  constructor(private readonly deps: ShareServiceDeps) {
    this.now = deps.now ?? Date.now;
    const limits = deps.exchangeLimits ?? EXCHANGE_LIMITS;
    this.perAddress = new TokenBuckets(limits.perAddress.burst, limits.perAddress.refillMs, this.now);
    this.perShare = new TokenBuckets(limits.perShare.burst, limits.perShare.refillMs, this.now);
    this.failureAudits = new OncePer(FAILURE_AUDIT_INTERVAL_MS, this.now);
  }

  startExpirySweep(): void {
    this.sweeper ??= setInterval(() => this.sweepExpired(), EXPIRY_SWEEP_MS);
    this.sweeper.unref();
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /** Disconnects the viewers of shares that expired (or were revoked, or lost their maker's rights) since they opened. */
  sweepExpired(): number {
    let closed = 0;
    const now = this.now();
    for (const [shareId, watch] of this.watched) {
      const row = this.deps.store.get(shareId);
      if (row && this.stateOf(row) === 'active') {
        watch.endedAt = null;
        continue;
      }
      if (watch.endedAt === null) {
        watch.endedAt = now;
        this.deps.tickets.revokeLease(shareLease(shareId));
      } else if (now - watch.endedAt >= ENDED_WATCH_MS) this.watched.delete(shareId);
      closed += this.deps
        .backendOf(watch.slotId)
        .disconnectLease(
          shareLease(shareId),
          row?.revokedAt ? 'this share link was revoked' : 'this share link expired or no longer works',
        );
    }
    return closed;
  }

  findSlot(slotId: string): ShareSlot | null {
    return this.deps.slotOf(slotId);
  }

  find(shareId: string): ShareRow | null {
    return this.deps.store.get(shareId);
  }

  requireSlot(slotId: string): ShareSlot {
    const slot = this.deps.slotOf(slotId);
    if (!slot)
      throw new AppError(
        AgentErrorCode.SLOT_NOT_FOUND,
        404,
        `No slot with id ${slotId}. List slots: GET /api/v1/slots.`,
      );
    return slot;
  }

  create(slotId: string, body: CreateShareBody, createdBy: string, context: ShareRequestContext): CreatedShare {
    const slot = this.requireSlot(slotId);
    const base = this.deps.publicUrl();
    if (!base)
      throw new AppError(
        AgentErrorCode.SHARE_NOT_ALLOWED,
        409,
        "Share links are opened on the agent's public listener, which is off. Enable the gateway (gateway.enabled in the agent's config), or set portal.publicUrl, then try again.",
      );
    const active = this.deps.store.listForSlot(slotId).filter((row) => this.stateOf(row) === 'active').length;
    if (active >= MAX_ACTIVE_SHARES_PER_SLOT)
      throw new AppError(
        AgentErrorCode.SHARE_LIMIT,
        409,
        `This slot has ${active} active share links, the most it may have. Revoke some you no longer need, then try again.`,
      );
    const frameAncestors = [...new Set(body.frameAncestors ?? [])];
    const token = randomBytes(32).toString('base64url');
    const now = this.now();
    const row: Omit<ShareRow, 'revokedAt' | 'lastOpenedAt' | 'opens'> = {
      id: `sh_${randomId(10)}`,
      slotId,
      mode: body.mode,
      label: body.label ? body.label : null,
      expiresAt: new Date(now + body.expiresInMinutes * 60_000).toISOString(),
      maxViewers: body.maxViewers ?? null,
      signInRequired: body.signInRequired,
      allowedUserIds: body.signInRequired ? [...new Set(body.allowedUserIds ?? [])] : [],
      frameAncestors,
      createdBy,
      createdAt: new Date(now).toISOString(),
    };
    this.deps.store.insert(row, tokenDigest(token));
    this.deps.audit.record({
      ...this.auditFields(context),
      action: 'share.created',
      target: row.id,
      detail: { slotId, mode: row.mode, expiresAt: row.expiresAt, signInRequired: row.signInRequired },
    });
    const link = `${base.replace(/\/+$/, '')}/share/${token}`;
    // Only a writable share's program may put text on the viewer's clipboard (OSC 52): read-only embeds get no
    // clipboard permission at all.
    const allow = row.mode === 'write' ? ' allow="clipboard-write"' : '';
    const iframeSnippet = `<iframe src="${escapeHtml(link)}" width="100%" height="480" style="border:0"${allow} title="${escapeHtml(slot.name)} terminal"></iframe>`;
    return { share: this.view(this.deps.store.get(row.id)!), link, iframeSnippet };
  }

  list(slotId: string): Share[] {
    this.requireSlot(slotId);
    return this.deps.store.listForSlot(slotId).map((row) => this.view(row));
  }

  get(shareId: string): ShareRow {
    const row = this.deps.store.get(shareId);
    if (!row)
      throw new AppError(
        AgentErrorCode.SHARE_NOT_FOUND,
        404,
        `No share link with id ${shareId}. List a slot's links: GET /api/v1/slots/<id>/shares.`,
      );
    return row;
  }

  /** Revokes (idempotent) and closes its viewers at once. */
  revoke(shareId: string, context: ShareRequestContext): Share {
    const row = this.get(shareId);
    if (!row.revokedAt) {
      this.deps.store.revoke(shareId, new Date(this.now()).toISOString());
      this.deps.audit.record({
        ...this.auditFields(context),
        action: 'share.revoked',
        target: shareId,
        detail: { slotId: row.slotId },
      });
    }
    // Watched a while longer: a socket redeemed just before the revoke is closed when it opens (tickets.leaseEnded),
    // and the sweep looks again.
    this.watched.set(shareId, { slotId: row.slotId, endedAt: this.now() });
    // Tickets handed out a moment ago must not open a terminal after the revoke either.
    this.deps.tickets.revokeLease(shareLease(shareId));
    this.deps.backendOf(row.slotId).disconnectLease(shareLease(shareId), 'this share link was revoked');
    return this.view(this.get(shareId));
  }

  /** What the share page shows; `row` is null for an unknown or malformed token. */
  lookup(token: string): { row: ShareRow | null; page: SharePageData } {
    const row = SHARE_TOKEN_PATTERN.test(token) ? this.deps.store.byToken(token) : null;
    if (!row) return { row: null, page: { state: 'not-found', slotName: null, mode: null, signInRequired: false } };
    const state = this.stateOf(row);
    const slotName = this.deps.slotOf(row.slotId)?.name ?? null;
    return { row, page: { state, slotName, mode: row.mode, signInRequired: row.signInRequired } };
  }

  /**
   * Exchanges a share token for a terminal ticket (lease `share:<id>`, read-only for read shares, bound to the
   * page's Origin). `caller`: the signed-in user of the request, if any.
   */
  openTicket(
    token: string,
    origin: string | null,
    caller: { userId: string; sessionId?: string } | null,
    context: Omit<ShareRequestContext, 'actor'>,
  ): ShareTicket {
    this.throttle(this.perAddress, `ip:${context.ip ?? '-'}`);
    const { row } = this.lookup(token);
    if (!row)
      throw new AppError(
        AgentErrorCode.SHARE_NOT_FOUND,
        404,
        'This share link does not exist. Check that it was copied whole, or ask whoever shared it for a new one.',
      );
    const actor: AuditActor = caller ? { type: 'user', id: caller.userId } : { type: 'anonymous', id: null };
    this.throttle(this.perShare, row.id);
    const refuse = (code: AgentErrorCode, status: number, reason: string, message: string): never => {
      // Old links tried again and again must not grow the audit log at request rate.
      if (this.failureAudits.allow(`${row.id}|${context.ip ?? '-'}`))
        this.deps.audit.record({
          actor,
          ip: context.ip,
          userAgent: context.userAgent,
          action: 'share.opened',
          target: row.id,
          outcome: 'failure',
          detail: { slotId: row.slotId, reason },
        });
      throw new AppError(code, status, message);
    };
    const state = this.stateOf(row);
    if (state === 'revoked')
      refuse(
        AgentErrorCode.SHARE_REVOKED,
        410,
        'revoked',
        'This share link was revoked. Ask whoever shared it for a new one.',
      );
    if (state === 'expired')
      refuse(
        AgentErrorCode.SHARE_EXPIRED,
        410,
        'expired',
        'This share link has expired. Ask whoever shared it for a new one.',
      );
    if (row.signInRequired) {
      if (!caller)
        refuse(
          AgentErrorCode.SHARE_SIGN_IN_REQUIRED,
          401,
          'sign_in_required',
          'This share link is for signed-in users: sign in on this site (open it in its own tab), then reload.',
        );
      else if (!row.allowedUserIds.includes(caller.userId))
        refuse(
          AgentErrorCode.SHARE_NOT_ALLOWED,
          403,
          'user_not_allowed',
          'Your account is not among those this share link is for. Ask whoever shared it to add you.',
        );
    }
    const slot = this.deps.slotOf(row.slotId);
    const backend = this.deps.backendOf(row.slotId);
    if (!slot || !backend.isOpen(row.slotId))
      refuse(
        AgentErrorCode.SLOT_NOT_RUNNING,
        409,
        'slot_not_running',
        'The shared slot is not running right now. The page tries again by itself; ask its owner to start it.',
      );
    const lease = shareLease(row.id);
    const viewerLimit = Math.min(row.maxViewers ?? SHARE_VIEWER_CAP, SHARE_VIEWER_CAP);
    if (backend.leaseViewers(lease) >= viewerLimit)
      refuse(
        AgentErrorCode.SHARE_VIEWER_LIMIT,
        429,
        'viewer_limit',
        `This share link allows ${viewerLimit} viewer${viewerLimit === 1 ? '' : 's'} at once, and that many are watching. Try again later.`,
      );
    const { ticket, expiresAt } = this.deps.tickets.issue(
      {
        slotId: row.slotId,
        mode: row.mode === 'write' ? 'writable' : 'read-only',
        origin,
        audience: 'public',
        lease,
        // A signed-in viewer's terminal also ends with their session (sign-out, revoked, user disabled).
        ...(row.signInRequired && caller?.sessionId ? { alsoLease: `session:${caller.sessionId}` } : {}),
        leaseLimit: viewerLimit,
      },
      // Never beyond the share's own end.
      Math.max(1, Math.min(SHARE_TICKET_TTL_MS, Date.parse(row.expiresAt) - this.now())),
    );
    const at = new Date(this.now()).toISOString();
    this.deps.store.noteOpened(row.id, at);
    this.watched.set(row.id, { slotId: row.slotId, endedAt: null });
    this.deps.audit.record({
      actor,
      ip: context.ip,
      userAgent: context.userAgent,
      action: 'share.opened',
      target: row.id,
      detail: { slotId: row.slotId, mode: row.mode },
    });
    return {
      ticket,
      url: `${PUBLIC_TERMINAL_PATH.replace(':id', row.slotId)}?ticket=${encodeURIComponent(ticket)}`,
      mode: row.mode,
      slotName: slot!.name,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  stateOf(row: ShareRow): Share['state'] {
    if (row.revokedAt) return 'revoked';
    if (Date.parse(row.expiresAt) <= this.now()) return 'expired';
    if (!this.makerMayShare(row)) return 'revoked';
    return 'active';
  }

  /** An owner's share works while they may still share the slot (see ShareServiceDeps.ownersMayShare). */
  private makerMayShare(row: ShareRow): boolean {
    if (row.createdBy === 'admin') return true;
    if (this.deps.ownersMayShare && !this.deps.ownersMayShare()) return false;
    if (this.deps.slotOf(row.slotId)?.ownerId !== row.createdBy) return false;
    return this.deps.store.userActive(row.createdBy);
  }

  private throttle(buckets: TokenBuckets, key: string): void {
    const waitMs = buckets.take(key);
    if (waitMs > 0) throw new ShareThrottledError(Math.max(1, Math.ceil(waitMs / 1000)));
  }

  view(row: ShareRow): Share {
    return {
      ...row,
      viewersNow: this.deps.backendOf(row.slotId).leaseViewers(shareLease(row.id)),
      state: this.stateOf(row),
    };
  }

  private auditFields(context: ShareRequestContext): Pick<ShareRequestContext, 'actor'> & {
    ip: string | null;
    userAgent: string | null;
  } {
    return { actor: context.actor, ip: context.ip, userAgent: context.userAgent };
  }
}
