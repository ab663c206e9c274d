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
  UpdateSlotBody,
} from './slots.js';
import {
  ArchiveUsageBody,
  ArchiveUsageResult,
  UsageRows,
  UsageRowsQuery,
  UsageSummary,
  UsageSummaryQuery,
} from './usage.js';
import { GatewayStatus, SetUpstreamKeyBody, UpdateGatewayBody } from './gateway.js';
import { RefusalCount, RefusalCountQuery, RefusalList, RefusalListQuery, UpstreamTestResult } from './request-log.js';
import {
  ApiKey,
  ApiKeyList,
  CreatedKey,
  CreateKeyBody,
  CreateUserBody,
  KeyIdParams,
  ListUsersQuery,
  QuotaList,
  RotateKeyBody,
  SetQuotasBody,
  UpdateKeyBody,
  UpdateUserBody,
  User,
  UserIdParams,
  UserList,
} from './users.js';

export * from './errors.js';
export * from './health.js';
export * from './http.js';
export * from './slots.js';
export * from './terminal.js';
export * from './users.js';
export * from './usage.js';
export * from './gateway.js';
export * from './request-log.js';
export * from './release.js';
export * from './idle.js';
export * from './auth.js';
export * from './portal.js';
export * from './share.js';
export * from './metrics.js';
export * from './alerts.js';
export * from './logs.js';
export * from './backups.js';

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
  updateSlot: endpoint({
    method: 'PATCH',
    path: `${API_PREFIX}/slots/:id`,
    auth: 'admin',
    params: SlotIdParams,
    body: UpdateSlotBody,
    response: Slot,
    status: 200,
    summary: "Change a slot's name, command, env, memory limit, owner or metering (restarting it when that is needed)",
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
  listUsers: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/users`,
    auth: 'admin',
    query: ListUsersQuery,
    response: UserList,
    status: 200,
    summary: 'Users, searched and paginated',
  }),
  createUser: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/users`,
    auth: 'admin',
    body: CreateUserBody,
    response: User,
    status: 201,
    summary: 'Add a user',
  }),
  getUser: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/users/:id`,
    auth: 'admin',
    params: UserIdParams,
    response: User,
    status: 200,
    summary: 'One user',
  }),
  updateUser: endpoint({
    method: 'PATCH',
    path: `${API_PREFIX}/users/:id`,
    auth: 'admin',
    params: UserIdParams,
    body: UpdateUserBody,
    response: User,
    status: 200,
    summary: 'Change a user; active: false disables every key of the user at once',
  }),
  deleteUser: endpoint({
    method: 'DELETE',
    path: `${API_PREFIX}/users/:id`,
    auth: 'admin',
    params: UserIdParams,
    response: User,
    status: 200,
    summary: 'Delete a user: keys revoked, usage history kept',
  }),
  listKeys: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/users/:id/keys`,
    auth: 'admin',
    params: UserIdParams,
    response: ApiKeyList,
    status: 200,
    summary: "A user's API keys (never the keys themselves)",
  }),
  createKey: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/users/:id/keys`,
    auth: 'admin',
    params: UserIdParams,
    body: CreateKeyBody,
    response: CreatedKey,
    status: 201,
    summary: 'Issue an API key; the answer is the only time it is shown',
  }),
  updateKey: endpoint({
    method: 'PATCH',
    path: `${API_PREFIX}/keys/:keyId`,
    auth: 'admin',
    params: KeyIdParams,
    body: UpdateKeyBody,
    response: ApiKey,
    status: 200,
    summary: 'Rename a key or change its rate limits',
  }),
  revokeKey: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/keys/:keyId/revoke`,
    auth: 'admin',
    params: KeyIdParams,
    response: ApiKey,
    status: 200,
    summary: 'Stop a key at once',
  }),
  rotateKey: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/keys/:keyId/rotate`,
    auth: 'admin',
    params: KeyIdParams,
    body: RotateKeyBody,
    response: CreatedKey,
    status: 201,
    summary: 'Issue a replacement key; the old one keeps working for the grace period',
  }),
  getUserQuotas: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/users/:id/quotas`,
    auth: 'admin',
    params: UserIdParams,
    response: QuotaList,
    status: 200,
    summary: "A user's quotas with what is used",
  }),
  setUserQuotas: endpoint({
    method: 'PUT',
    path: `${API_PREFIX}/users/:id/quotas`,
    auth: 'admin',
    params: UserIdParams,
    body: SetQuotasBody,
    response: QuotaList,
    status: 200,
    summary: "Replace a user's quotas (an empty list removes them)",
  }),
  getKeyQuotas: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/keys/:keyId/quotas`,
    auth: 'admin',
    params: KeyIdParams,
    response: QuotaList,
    status: 200,
    summary: "A key's quotas with what is used",
  }),
  setKeyQuotas: endpoint({
    method: 'PUT',
    path: `${API_PREFIX}/keys/:keyId/quotas`,
    auth: 'admin',
    params: KeyIdParams,
    body: SetQuotasBody,
    response: QuotaList,
    status: 200,
    summary: "Replace a key's quotas",
  }),
  usageSummary: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/usage/summary`,
    auth: 'admin',
    query: UsageSummaryQuery,
    response: UsageSummary,
    status: 200,
    summary: 'Totals, groups and a series by hour or day over a bounded range (from rollups)',
  }),
  usageRows: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/usage/rows`,
    auth: 'admin',
    query: UsageRowsQuery,
    response: UsageRows,
    status: 200,
    summary: 'Raw usage rows, newest first, paginated by cursor',
  }),
  archiveUsage: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/usage/archive`,
    auth: 'admin',
    body: ArchiveUsageBody,
    response: ArchiveUsageResult,
    status: 200,
    summary: 'Move old usage rows into the archive database (rollups stay)',
  }),
  gatewayStatus: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/gateway`,
    auth: 'admin',
    response: GatewayStatus,
    status: 200,
    summary: 'The public listener, upstream and legacy mode',
  }),
  updateGateway: endpoint({
    method: 'PATCH',
    path: `${API_PREFIX}/gateway`,
    auth: 'admin',
    body: UpdateGatewayBody,
    response: GatewayStatus,
    status: 200,
    summary: 'Legacy mode and default rate limits',
  }),
  setUpstreamKey: endpoint({
    method: 'PUT',
    path: `${API_PREFIX}/gateway/upstream-key`,
    auth: 'admin',
    body: SetUpstreamKeyBody,
    response: GatewayStatus,
    status: 200,
    summary: "Store the organisation's upstream API key (never shown again)",
  }),
  testUpstream: endpoint({
    method: 'POST',
    path: `${API_PREFIX}/gateway/upstream-test`,
    auth: 'admin',
    response: UpstreamTestResult,
    status: 200,
    summary: "A minimal call to upstream with the organisation's key: ok and latency, or why it failed",
  }),
  listRefusals: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/gateway/refusals`,
    auth: 'admin',
    query: RefusalListQuery,
    response: RefusalList,
    status: 200,
    summary: 'Requests the gateway refused, newest first, filtered and paginated by cursor',
  }),
  countRefusals: endpoint({
    method: 'GET',
    path: `${API_PREFIX}/gateway/refusals/count`,
    auth: 'admin',
    query: RefusalCountQuery,
    response: RefusalCount,
    status: 200,
    summary: 'How many requests the gateway refused in a window',
  }),
} as const;

/** Streamed CSV or JSON export of usage rows (not JSON-parsed by clients, so not an `endpoint`). */
export const USAGE_EXPORT_PATH = `${API_PREFIX}/usage/export`;

export type AdminApi = typeof adminApi;

/** Path of a slot's terminal WebSocket (ticket in `?ticket=` or in the opening message's AuthToken). */
export const TERMINAL_PATH = `${API_PREFIX}/slots/:id/terminal`;
