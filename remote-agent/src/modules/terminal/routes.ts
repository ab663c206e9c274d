import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AgentErrorCode, SlotIdParams, TERMINAL_PATH } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import type { SlotService } from '../slots/service.js';
import type { TerminalHost } from './host.js';
import type { TicketGrant, TicketStore } from './tickets.js';
import type { TtydBridge } from './ttyd.js';

declare module 'fastify' {
  interface FastifyRequest {
    terminalGrant?: TicketGrant | null;
  }
}

const ticketProblem = (code: AgentErrorCode, message: string): AppError => new AppError(code, 401, message);

/**
 * The slot terminal: a WebSocket speaking ttyd's protocol. A ticket in `?ticket=` is checked (and used up) before
 * the upgrade, so a bad one gets a plain 401; without one, the opening message's AuthToken must hold it.
 */
export function registerTerminalRoutes(
  app: FastifyInstance,
  deps: { slots: SlotService; terminals: TerminalHost; ttyd: TtydBridge; tickets: TicketStore },
): void {
  app.route({
    method: 'GET',
    url: TERMINAL_PATH,
    config: { auth: 'none' },
    preValidation: (request: FastifyRequest, _reply, done) => {
      const params = SlotIdParams.safeParse(request.params);
      if (!params.success) {
        done(new AppError(AgentErrorCode.VALIDATION_FAILED, 400, 'Invalid request: params.id must be a slot id'));
        return;
      }
      const query = request.query as Record<string, unknown>;
      const ticket = typeof query.ticket === 'string' ? query.ticket : undefined;
      if (ticket === undefined) {
        request.terminalGrant = null;
        done();
        return;
      }
      const grant = deps.tickets.redeem(ticket);
      if (!grant) {
        done(
          ticketProblem(
            AgentErrorCode.TERMINAL_TICKET_INVALID,
            'This terminal ticket is unknown, already used or expired (tickets are single-use and live under a minute). Ask for a new one: POST /api/v1/slots/<id>/tickets.',
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
      const grant = request.terminalGrant ?? null;
      if (deps.slots.terminalBackendOf(id) === 'ttyd') deps.ttyd.accept(socket, id, grant);
      else deps.terminals.accept(socket, id, grant);
    },
  });
}
