import { endpoint } from './http.js';
import { Health } from './health.js';
import {
  CreateSlotBody,
  CreateTicketBody,
  DeleteSlotQuery,
  DeleteSlotResult,
  ListSlotsQuery,
  Slot,
  SlotEventList,
  SlotEventsQuery,
  SlotIdParams,
  SlotList,
  TerminalTicket,
} from './slots.js';

export * from './errors.js';
export * from './health.js';
export * from './http.js';
export * from './slots.js';
export * from './terminal.js';

export const API_PREFIX = '/api/v1';

/** The admin listener's HTTP API. The terminal WebSocket is described in ./terminal.ts. */
export const adminApi = {
  health: endpoint({
    method: 'GET',
    path: '/health',
    auth: 'none',
    response: Health,
    status: 200,
    summary: 'Database and supervisor state; needs no token',
  }),
  listSlots: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/slots`,
    auth: 'admin',
    query: ListSlotsQuery,
    response: SlotList,
    status: 200,
    summary: 'All slots with their live state',
  }),
  createSlot: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/slots`,
    auth: 'admin',
    body: CreateSlotBody,
    response: Slot,
    status: 201,
    summary: 'Register a slot and (by default) start it',
  }),
  getSlot: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/slots/:id`,
    auth: 'admin',
    params: SlotIdParams,
    response: Slot,
    status: 200,
    summary: 'One slot with its live state',
  }),
  startSlot: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/slots/:id/start`,
    auth: 'admin',
    params: SlotIdParams,
    response: Slot,
    status: 200,
    summary: 'Start a stopped or failed slot',
  }),
  stopSlot: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/slots/:id/stop`,
    auth: 'admin',
    params: SlotIdParams,
    response: Slot,
    status: 200,
    summary: 'Stop a slot (its program ends; the registry keeps it)',
  }),
  restartSlot: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/slots/:id/restart`,
    auth: 'admin',
    params: SlotIdParams,
    response: Slot,
    status: 200,
    summary: 'End the program and start it again',
  }),
  deleteSlot: endpoint({
    method: 'DELETE',
    path: `${API_PREFIX}/slots/:id`,
    auth: 'admin',
    params: SlotIdParams,
    query: DeleteSlotQuery,
    response: DeleteSlotResult,
    status: 200,
    summary: 'Stop and forget a slot, keeping or removing its folders',
  }),
  listSlotEvents: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/slots/:id/events`,
    auth: 'admin',
    params: SlotIdParams,
    query: SlotEventsQuery,
    response: SlotEventList,
    status: 200,
    summary: 'What happened to a slot, newest first',
  }),
  createTerminalTicket: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/slots/:id/tickets`,
    auth: 'admin',
    params: SlotIdParams,
    body: CreateTicketBody,
    response: TerminalTicket,
    status: 201,
    summary: 'A single-use ticket (valid under a minute) to open the slot terminal',
  }),
} as const;

export type AdminApi = typeof adminApi;

/** Path of a slot's terminal WebSocket (ticket in `?ticket=` or in the opening message's AuthToken). */
export const TERMINAL_PATH = `${API_PREFIX}/slots/:id/terminal`;
