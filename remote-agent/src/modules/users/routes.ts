import type { FastifyInstance } from 'fastify';
import { adminApi } from '../../contract/index.js';
import { bindRoute } from '../../http/route.js';
import type { UserService } from './service.js';

export function registerUserRoutes(app: FastifyInstance, users: UserService): void {
  bindRoute(app, adminApi.listUsers, ({ query }) => users.list(query));
  bindRoute(app, adminApi.createUser, ({ body }) => users.create(body));
  bindRoute(app, adminApi.getUser, ({ params }) => users.get(params.id));
  bindRoute(app, adminApi.updateUser, ({ params, body }) => users.update(params.id, body));
  bindRoute(app, adminApi.deleteUser, ({ params }) => users.delete(params.id));
  bindRoute(app, adminApi.listKeys, ({ params }) => ({ keys: users.listKeys(params.id) }));
  bindRoute(app, adminApi.createKey, ({ params, body }) => users.createKey(params.id, body));
  bindRoute(app, adminApi.updateKey, ({ params, body }) => users.updateKey(params.keyId, body));
  bindRoute(app, adminApi.revokeKey, ({ params }) => users.revokeKey(params.keyId));
  bindRoute(app, adminApi.rotateKey, ({ params, body }) => users.rotateKey(params.keyId, body));
}
