import { createHash, randomBytes } from 'node:crypto';
import type { TerminalMode } from '../../contract/index.js';

/**
 * Which listener's terminal route takes a ticket: `admin` (the admin listener, minted with the admin token) or
 * `public` (the public listener's `/api/public/terminal/:id`: share viewers and signed-in portal users). A ticket
 * works only on its own audience's route.
 */
export type TicketAudience = 'admin' | 'public';

export interface TicketGrant {
  slotId: string;
  mode: TerminalMode;
  /** The page origin the ticket is bound to; null for non-browser clients (they send no Origin). */
  origin: string | null;
  audience: TicketAudience;
  /**
   * What the viewer's access hangs on (`share:<id>`, `session:<id>`): when it ends, the backend's
   * `disconnectLease(lease)` closes every terminal opened under it.
   */
  lease?: string;
  /**
   * A second lease the viewer also hangs on: a signed-in share viewer's `session:<id>`, so that signing out (or the
   * admin ending the session, or disabling the user) closes their share terminal too.
   */
  alsoLease?: string;
  /** Set by `issue`: when the ticket was minted (a lease that ended after this has ended for it). */
  issuedAt?: number;
  /** Most viewers at once under `lease` (a share's viewer limit): a socket beyond it is closed at the opening. */
  leaseLimit?: number;
}

interface StoredTicket extends TicketGrant {
  expiresAt: number;
}

/**
 * How long a lease that ended is remembered: longer than a redeemed ticket's wait for its opening message (10 s), so
 * a socket whose ticket was used up just before a revoke is refused when it finally opens.
 */
const ENDED_LEASE_MEMORY_MS = 60_000;

/** The leases a grant hangs on. */
export const leasesOf = (grant: Pick<TicketGrant, 'lease' | 'alsoLease'>): string[] =>
  [grant.lease, grant.alsoLease].filter((lease): lease is string => typeof lease === 'string');

const digest = (ticket: string): string => createHash('sha256').update(ticket).digest('hex');

/**
 * Single-use terminal tickets. Only their SHA-256 is kept, in memory: a ticket dies with the agent, which is fine
 * for something that lives seconds.
 */
export class TicketStore {
  private readonly tickets = new Map<string, StoredTicket>();
  /** Leases that ended recently, with when: see `leaseEnded`. */
  private readonly endedLeases = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(grant: TicketGrant, ttlMs: number): { ticket: string; expiresAt: number } {
    this.prune();
    const ticket = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + ttlMs;
    this.tickets.set(digest(ticket), { ...grant, issuedAt: this.now(), expiresAt });
    return { ticket, expiresAt };
  }

  /** The grant of a valid ticket, which is used up by this call; null when unknown, used or expired. */
  redeem(ticket: string): TicketGrant | null {
    const key = digest(ticket);
    const stored = this.tickets.get(key);
    if (!stored) return null;
    this.tickets.delete(key);
    if (stored.expiresAt <= this.now()) return null;
    const { expiresAt: _expiresAt, ...grant } = stored;
    return grant;
  }

  /** Forgets every ticket of a slot (it was stopped or deleted). */
  revokeSlot(slotId: string): void {
    for (const [key, stored] of this.tickets) if (stored.slotId === slotId) this.tickets.delete(key);
  }

  /** Forgets every ticket of a lease (its share was revoked, its session ended): none of them opens a terminal. */
  revokeLease(lease: string): void {
    for (const [key, stored] of this.tickets) if (leasesOf(stored).includes(lease)) this.tickets.delete(key);
    // A ticket redeemed at an upgrade a moment ago is no longer here, but its socket has not opened yet: it must
    // not open either (see leaseEnded).
    this.endedLeases.set(lease, this.now());
    this.prune();
  }

  /**
   * Whether a lease of a redeemed grant ended since the ticket was minted: checked when the socket's opening message
   * arrives, so a revoke (or expiry, or sign-out) between the upgrade and the opening still closes it.
   */
  leaseEnded(grant: TicketGrant): boolean {
    for (const lease of leasesOf(grant)) {
      const endedAt = this.endedLeases.get(lease);
      if (endedAt !== undefined && endedAt >= (grant.issuedAt ?? 0)) return true;
    }
    return false;
  }

  private prune(): void {
    const now = this.now();
    for (const [key, stored] of this.tickets) if (stored.expiresAt <= now) this.tickets.delete(key);
    for (const [lease, endedAt] of this.endedLeases)
      if (endedAt + ENDED_LEASE_MEMORY_MS <= now) this.endedLeases.delete(lease);
  }
}

/**
 * Whether a WebSocket upgrade's Origin header may use a ticket's grant. A ticket bound to an origin works only from
 * that origin; a ticket minted without one works only without an Origin (the CLI, scripts) or from an origin in the
 * agent's `terminal.allowedOrigins`. `Origin: null` is never taken, whatever the ticket and the allow-list: it is what
 * any sandboxed iframe, data: or file: page sends, so it identifies no page at all (the Electron panel is served from
 * `app://slotdeck` for that reason, and binds its tickets to that).
 */
export function originAccepted(
  bound: string | null,
  header: string | undefined,
  allowedOrigins: readonly string[],
): boolean {
  if (header === undefined) return bound === null;
  if (header === 'null') return false;
  if (bound === null) return allowedOrigins.includes(header);
  return header === bound;
}
