import type { FastifyInstance } from 'fastify';
import { adminApi } from '../../contract/index.js';
import { bindRoute } from '../../http/route.js';
import type { SlotService } from './service.js';

export function registerSlotRoutes(app: FastifyInstance, slots: SlotService): void {
  bindRoute(app, adminApi.listSlots, async ({ query }) => ({ slots: await slots.list(query) }));
  bindRoute(app, adminApi.createSlot, ({ body }) => slots.create(body));
  bindRoute(app, adminApi.getSlot, ({ params }) => slots.get(params.id));
  bindRoute(app, adminApi.updateSlot, ({ params, body }) => slots.update(params.id, body));
  bindRoute(app, adminApi.startSlot, ({ params }) => slots.startSlot(params.id));
  bindRoute(app, adminApi.stopSlot, ({ params }) => slots.stopSlot(params.id));
  bindRoute(app, adminApi.restartSlot, ({ params }) => slots.restartSlot(params.id));
  bindRoute(app, adminApi.deleteSlot, ({ params, query }) => slots.deleteSlot(params.id, query.workDir));
  bindRoute(app, adminApi.listSlotEvents, ({ params, query }) => ({ events: slots.events(params.id, query.limit) }));
  bindRoute(app, adminApi.createTerminalTicket, ({ params, body }) =>
    slots.issueTicket(params.id, body.mode, body.origin ?? null),
  );
}
