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
  /** Most viewers at once under `lease` (a share's viewer limit): a socket beyond it is closed at the opening. */
  leaseLimit?: number;
}

interface StoredTicket extends TicketGrant {
  expiresAt: number;
}

const digest = (ticket: string): string => createHash('sha256').update(ticket).digest('hex');

/**
 * Single-use terminal tickets. Only their SHA-256 is kept, in memory: a ticket dies with the agent, which is fine
 * for something that lives seconds.
 */
export class TicketStore {
  private readonly tickets = new Map<string, StoredTicket>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(grant: TicketGrant, ttlMs: number): { ticket: string; expiresAt: number } {
    this.prune();
    const ticket = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + ttlMs;
    this.tickets.set(digest(ticket), { ...grant, expiresAt });
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
    for (const [key, stored] of this.tickets) if (stored.lease === lease) this.tickets.delete(key);
  }

  private prune(): void {
    const now = this.now();
    for (const [key, stored] of this.tickets) if (stored.expiresAt <= now) this.tickets.delete(key);
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
