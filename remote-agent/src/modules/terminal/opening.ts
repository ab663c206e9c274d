import type { WebSocket } from 'ws';
import { TerminalCloseCode } from '../../contract/index.js';
import { parseJson, toBuffer } from './client.js';
import { originAccepted, type TicketAudience, type TicketGrant, type TicketStore } from './tickets.js';

const AUTHENTICATED_OPENING_TIMEOUT_MS = 10_000;

/** How a terminal WebSocket proves itself: set from the agent's `terminal` config. */
export interface OpeningPolicy {
  /** A socket without a ticket at the upgrade that sends no opening message (with one) within this time is closed. */
  timeoutMs: number;
  /** Page origins that may use tickets minted without an origin (future share pages). */
  allowedOrigins: readonly string[];
}

/**
 * Who is knocking: the grant of a ticket checked at the upgrade (null: it must come in AuthToken), the Origin, and
 * which route the socket came in on (only tickets of that audience are taken).
 */
export interface UpgradeAuth {
  grant: TicketGrant | null;
  origin: string | undefined;
  audience: TicketAudience;
  /** Origins that may use tickets minted without one (the admin route's `terminal.allowedOrigins`); default policy's. */
  allowedOrigins?: readonly string[];
  /** Whether a grant's share or session ended since it was minted (the route's ticket store); default: the backend's. */
  leaseEnded?: (grant: TicketGrant) => boolean;
}

/**
 * Waits for a client's opening message (ttyd's JSON with AuthToken, columns and rows) and settles who the client is:
 * the grant of a ticket checked at the upgrade, or else the ticket in AuthToken, as ttyd's own client sends it.
 * A missing, malformed or unauthorized opening closes the socket with the reason. `opened` runs inside the message
 * handler, so whoever takes the socket over there receives every later message.
 */
export function awaitOpening(
  socket: WebSocket,
  slotId: string,
  auth: UpgradeAuth,
  tickets: TicketStore,
  policy: OpeningPolicy,
  opened: (opening: Record<string, unknown>, grant: TicketGrant) => void,
): void {
  const { grant } = auth;
  // Unauthenticated sockets are held briefly; one whose ticket was checked at the upgrade may take its time.
  const timer = setTimeout(
    () => socket.close(TerminalCloseCode.PROTOCOL_ERROR, 'no opening message with a terminal ticket in time'),
    grant ? AUTHENTICATED_OPENING_TIMEOUT_MS : policy.timeoutMs,
  );
  // A socket that closes first needs no timer (it would hold a closed socket's memory until it fires).
  socket.once('close', () => clearTimeout(timer));
  socket.once('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    clearTimeout(timer);
    const opening = parseJson(toBuffer(data));
    if (!opening) {
      socket.close(TerminalCloseCode.PROTOCOL_ERROR, 'the first message must be the JSON opening message');
      return;
    }
    const effective =
      grant ?? (typeof opening.AuthToken === 'string' && opening.AuthToken ? tickets.redeem(opening.AuthToken) : null);
    if (!effective || effective.slotId !== slotId || effective.audience !== auth.audience) {
      socket.close(TerminalCloseCode.UNAUTHORIZED, 'a valid terminal ticket for this slot is required');
      return;
    }
    if (!grant && !originAccepted(effective.origin, auth.origin, auth.allowedOrigins ?? policy.allowedOrigins)) {
      socket.close(TerminalCloseCode.UNAUTHORIZED, 'this ticket was issued for another page origin');
      return;
    }
    // The ticket was good at the upgrade; its share or session may have ended in the seconds since.
    if ((auth.leaseEnded ?? ((checked: TicketGrant) => tickets.leaseEnded(checked)))(effective)) {
      socket.close(TerminalCloseCode.ACCESS_ENDED, 'the link or session this terminal was opened with has ended');
      return;
    }
    opened(opening, effective);
  });
}
