import type { FastifyInstance } from 'fastify';
import { authAdminApi, type AuthSettings } from '../../contract/index.js';
import { bindRoute } from '../../http/route.js';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import type { UserService } from '../users/service.js';
import type { AuthService } from './service.js';

const ADMIN: AuditActor = { type: 'admin', id: 'admin' };

/** Admin routes for sign-in (the admin listener, admin token): settings, GitHub app, invites, sessions, links. */
export function registerAuthAdminRoutes(
  app: FastifyInstance,
  deps: { service: AuthService; users: UserService; audit: AuditLog },
): void {
  const { service, users, audit } = deps;
  const api = authAdminApi;

  bindRoute(app, api.getAuthSettings, () => service.settingsView());

  bindRoute(app, api.updateAuthSettings, ({ body }): AuthSettings => {
    service.settings.update(body);
    audit.record({
      actor: ADMIN,
      action: 'settings.updated',
      target: 'auth',
      detail: { fields: Object.keys(body).join(',') },
    });
    return service.settingsView();
  });

  bindRoute(app, api.setGithub, ({ body }): AuthSettings => {
    if (body.clientSecret !== undefined) service.secrets.setGithubClientSecret(body.clientSecret);
    service.settings.update({ github: { clientId: body.clientId, enabled: body.enabled } });
    audit.record({
      actor: ADMIN,
      action: 'settings.updated',
      target: 'auth.github',
      detail: { enabled: body.enabled, secretChanged: body.clientSecret !== undefined },
    });
    return service.settingsView();
  });

  bindRoute(app, api.getSignIn, ({ params }) => service.signInStatus(params.id));
  bindRoute(app, api.unlockUser, ({ params }) => service.unlock(params.id, ADMIN));
  bindRoute(app, api.createInvite, ({ params, body }) => service.createInvite(params.id, body.expiresInHours, ADMIN));
  bindRoute(app, api.listSessions, async ({ params }) => ({ sessions: await service.listSessions(params.id) }));
  bindRoute(app, api.revokeSession, ({ params }) => ({
    ended: service.revokeSession(params.id, params.sessionId, ADMIN),
  }));
  bindRoute(app, api.revokeAllSessions, ({ params }) => ({ ended: service.revokeAllSessions(params.id, ADMIN) }));
  bindRoute(app, api.approveUser, ({ params }) => {
    service.approve(params.id, ADMIN);
    return users.get(params.id);
  });
  bindRoute(app, api.linkGithub, ({ params, body }) => service.linkGithub(params.id, body.githubId, ADMIN));
  bindRoute(app, api.unlinkGithub, ({ params }) => service.unlinkGithub(params.id, ADMIN));
}
