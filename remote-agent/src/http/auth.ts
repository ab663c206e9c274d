import type { FastifyInstance } from 'fastify';
import { AgentErrorCode } from '../contract/index.js';
import { AppError } from '../errors.js';
import type { AdminTokenVerifier } from './admin-token.js';

/** Routes marked `auth: 'admin'` need `Authorization: Bearer <admin token>`. */
export function registerAdminAuth(app: FastifyInstance, verifier: AdminTokenVerifier): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config?.auth !== 'admin') {
      done();
      return;
    }
    const header = request.headers.authorization;
    if (!header) {
      done(
        new AppError(
          AgentErrorCode.AUTH_TOKEN_MISSING,
          401,
          'This route needs the admin token: send "Authorization: Bearer <token>" (print it on the host with: slotdeck-agent token).',
        ),
      );
      return;
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !verifier.verify(match[1]!)) {
      done(
        new AppError(
          AgentErrorCode.AUTH_TOKEN_INVALID,
          401,
          'The admin token is wrong. Print the current one on the host with: slotdeck-agent token',
        ),
      );
      return;
    }
    done();
  });
}
