import type { WebSocket } from 'ws';
import { TerminalCloseCode } from '../../contract/index.js';
import { parseJson, toBuffer } from './client.js';
import type { TicketGrant, TicketStore } from './tickets.js';

const OPENING_TIMEOUT_MS = 10_000;

/**
 * Waits for a client's opening message (ttyd's JSON with AuthToken, columns and rows) and settles who the client is:
 * the grant of a ticket checked at the upgrade, or else the ticket in AuthToken, as ttyd's own client sends it.
 * A missing, malformed or unauthorized opening closes the socket with the reason. `opened` runs inside the message
 * handler, so whoever takes the socket over there receives every later message.
 */
export function awaitOpening(
  socket: WebSocket,
  slotId: string,
  grant: TicketGrant | null,
  tickets: TicketStore,
  opened: (opening: Record<string, unknown>, grant: TicketGrant) => void,
): void {
  const timer = setTimeout(
    () => socket.close(TerminalCloseCode.PROTOCOL_ERROR, 'no opening message'),
    OPENING_TIMEOUT_MS,
  );
  socket.once('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    clearTimeout(timer);
    const opening = parseJson(toBuffer(data));
    if (!opening) {
      socket.close(TerminalCloseCode.PROTOCOL_ERROR, 'the first message must be the JSON opening message');
      return;
    }
    const effective =
      grant ?? (typeof opening.AuthToken === 'string' && opening.AuthToken ? tickets.redeem(opening.AuthToken) : null);
    if (!effective || effective.slotId !== slotId) {
      socket.close(TerminalCloseCode.UNAUTHORIZED, 'a valid terminal ticket for this slot is required');
      return;
    }
    opened(opening, effective);
  });
}
