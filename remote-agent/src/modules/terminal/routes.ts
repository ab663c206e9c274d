import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AgentErrorCode, PUBLIC_TERMINAL_PATH, SlotIdParams, TERMINAL_PATH } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import type { TerminalBackend } from './backend.js';
import type { OpeningPolicy } from './opening.js';
import { originAccepted, type TicketAudience, type TicketGrant, type TicketStore } from './tickets.js';

declare module 'fastify' {
  interface FastifyRequest {
    terminalGrant?: TicketGrant | null;
  }
}

/**
 * @fastify/websocket's errorHandler: a client that sends what is not WebSocket (a bad opcode, an oversized or
 * unmasked frame) is the client's problem. It is cut off and noted at debug level; the agent's error log stays for
 * the agent's own faults, so that no client can flood it.
 */
export function onWebSocketClientError(error: Error, socket: WebSocket, request: FastifyRequest): void {
  request.log.debug({ err: error }, 'websocket client sent an invalid frame; connection ended');
  socket.terminate();
}

const ticketProblem = (code: AgentErrorCode, message: string): AppError => new AppError(code, 401, message);

interface TerminalRouteDeps {
  /** The backend holding the slot's terminal (the built-in one for a slot that does not exist: it says so). */
  backendOf: (slotId: string) => TerminalBackend;
  tickets: TicketStore;
  opening: OpeningPolicy;
}

/**
 * The slot terminal: a WebSocket speaking ttyd's protocol. A ticket in `?ticket=` is checked (and used up) before
 * the upgrade, so a bad one gets a plain 401 and one used from another page origin a 403; without one, the opening
 * message's AuthToken must hold it, within `opening.timeoutMs`. Admin-listener route: only `admin` tickets.
 */
export function registerTerminalRoutes(app: FastifyInstance, deps: TerminalRouteDeps): void {
  registerTerminalSocket(app, TERMINAL_PATH, 'admin', deps.opening.allowedOrigins, deps, {
    ticketHelp: 'Ask for a new one: POST /api/v1/slots/<id>/tickets.',
    noOriginHelp:
      'This ticket was issued for a client without a page origin (such as slotdeck-agent attach); a web page must ask for a ticket with its own origin: POST /api/v1/slots/<id>/tickets {"origin": "<page origin>"}.',
  });
}

/**
 * The same terminal on the public listener (`/api/public/terminal/:id`), for share viewers and signed-in portal
 * users: only `public` tickets (an admin ticket is refused like an unknown one), and a ticket minted without an
 * origin opens only from a client that sends none (no allow-list here).
 */
export function registerPublicTerminalRoute(site: FastifyInstance, deps: TerminalRouteDeps): void {
  registerTerminalSocket(site, PUBLIC_TERMINAL_PATH, 'public', [], deps, {
    ticketHelp: 'Reload the page to get a new one.',
    noOriginHelp: 'This ticket was issued for a client without a page origin; a web page must ask for its own.',
  });
}

function registerTerminalSocket(
  app: FastifyInstance,
  path: string,
  audience: TicketAudience,
  allowedOrigins: readonly string[],
  deps: TerminalRouteDeps,
  help: { ticketHelp: string; noOriginHelp: string },
): void {
  app.route({
    method: 'GET',
    url: path,
    config: { auth: 'none' },
    preValidation: (request: FastifyRequest, _reply, done) => {
      const params = SlotIdParams.safeParse(request.params);
      if (!params.success) {
        done(new AppError(AgentErrorCode.VALIDATION_FAILED, 400, 'Invalid request: params.id must be a slot id'));
        return;
      }
      // A plain GET (a link preview, a prefetch) must not use the ticket up: it is answered below, unredeemed.
      if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
        done();
        return;
      }
      const query = request.query as Record<string, unknown>;
      const ticket = typeof query.ticket === 'string' ? query.ticket : undefined;
      if (ticket === undefined) {
        // The public route's pages always put the ticket in the URL: a socket without one is not held open there.
        if (audience === 'public') {
          done(
            ticketProblem(
              AgentErrorCode.TERMINAL_TICKET_INVALID,
              `A terminal ticket is required in ?ticket=. ${help.ticketHelp}`,
            ),
          );
          return;
        }
        request.terminalGrant = null;
        done();
        return;
      }
      const grant = deps.tickets.redeem(ticket);
      // A ticket for the other listener's route is used up and answered like an unknown one.
      if (!grant || grant.audience !== audience) {
        done(
          ticketProblem(
            AgentErrorCode.TERMINAL_TICKET_INVALID,
            `This terminal ticket is unknown, already used or expired (tickets are single-use and live under a minute). ${help.ticketHelp}`,
          ),
        );
        return;
      }
      if (grant.slotId !== params.data.id) {
        done(
          ticketProblem(
            AgentErrorCode.TERMINAL_TICKET_INVALID,
            'This ticket belongs to another slot. Ask for a ticket for this slot.',
          ),
        );
        return;
      }
      if (!originAccepted(grant.origin, request.headers.origin, allowedOrigins)) {
        done(
          new AppError(
            AgentErrorCode.TERMINAL_ORIGIN_REFUSED,
            403,
            grant.origin
              ? `This ticket was issued for pages of ${grant.origin}; open the terminal from that page (the ticket is now used up: ask for a new one).`
              : help.noOriginHelp,
          ),
        );
        return;
      }
      request.terminalGrant = grant;
      done();
    },
    handler: () => {
      throw new AppError(
        AgentErrorCode.TERMINAL_NOT_WEBSOCKET,
        400,
        'This is a WebSocket endpoint (subprotocol "tty", as ttyd). Connect with a WebSocket client.',
      );
    },
    wsHandler: (socket, request) => {
      const { id } = request.params as { id: string };
      const auth = {
        grant: request.terminalGrant ?? null,
        origin: request.headers.origin,
        audience,
        allowedOrigins,
        leaseEnded: (grant: TicketGrant) => deps.tickets.leaseEnded(grant),
      };
      deps.backendOf(id).accept(socket, id, auth);
    },
  });
}
