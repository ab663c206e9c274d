import type { FastifyInstance } from 'fastify';
import { idleApi } from '../../contract/index.js';
import { bindRoute } from '../../http/route.js';
import type { IdleService } from './service.js';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * An admin call that changes something counts as activity; reads do not (the panel polls them, idle status
 * included, and would keep every host awake). Must be added after the admin auth hook: a request it refuses never
 * reaches this one, so a wrong or missing token never postpones the stop.
 */
export function registerAdminActivity(app: FastifyInstance, idle: IdleService): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config?.auth === 'admin' && !READS.has(request.method)) idle.noteActivity('admin');
    done();
  });
}

export function registerIdleRoutes(app: FastifyInstance, idle: IdleService): void {
  bindRoute(app, idleApi.getIdle, () => idle.status());
  bindRoute(app, idleApi.setIdle, ({ body }) => idle.setPolicy(body));
  bindRoute(app, idleApi.keepAwake, ({ body }) => idle.keepAwake(body.minutes));
}
