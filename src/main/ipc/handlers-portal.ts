import { adminApi, AUDIT_PATH, authAdminApi, shareApi, type User } from '../../../remote-agent/src/contract/index';
import type { AuditExportResult, IpcParsedInput } from '../../shared/ipc/contract';
import { IpcErrorCode } from '../../shared/ipc/errors';
import type { AgentClient } from '../services/agent/agent-client';
import type { HostService } from '../services/hosts/hosts';
import { exportFromAgent, type AgentExport } from './agent-export';
import type { Handlers } from './dispatch';

type PortalChannel =
  | 'signin:settings'
  | 'signin:update'
  | 'signin:set-github'
  | 'signin:pending'
  | 'users:sign-in'
  | 'users:unlock'
  | 'users:invite'
  | 'users:sessions'
  | 'users:revoke-session'
  | 'users:revoke-sessions'
  | 'users:approve'
  | 'users:link-github'
  | 'users:unlink-github'
  | 'shares:list'
  | 'shares:create'
  | 'shares:revoke'
  | 'audit:list'
  | 'audit:export';

export interface PortalHandlerServices {
  hosts: Pick<HostService, 'client'>;
  /** The Electron app's save dialog; browser mode has none (the export's content goes back to the page). */
  pickSaveFile?: (suggestedName: string) => Promise<string | null>;
}

/** Browser mode sends an export over its socket up to this size; larger ones need a narrower filter or the app. */
export { BROWSER_EXPORT_MAX_BYTES as AUDIT_BROWSER_EXPORT_MAX_BYTES } from './agent-export';
/** Inactive users looked at for a pending sign-up; more than this and the oldest are listed first page only. */
const PENDING_SCAN_LIMIT = 200;

/**
 * End-user sign-in settings, invites, sessions, share links and the audit log of a host: each a call to its agent
 * with the admin token, which stays in main. Invite and share links come back once, for the renderer to show; nothing
 * here keeps or logs them.
 */
export function createPortalHandlers({ hosts, pickSaveFile }: PortalHandlerServices): Pick<Handlers, PortalChannel> {
  const agent = (hostId: string) => hosts.client(hostId);
  return {
    'signin:settings': ({ hostId }, { signal }) => agent(hostId).call(authAdminApi.getAuthSettings, {}, signal),
    'signin:update': ({ hostId, changes }, { signal }) =>
      agent(hostId).call(authAdminApi.updateAuthSettings, { body: changes }, signal),
    'signin:set-github': ({ hostId, ...body }, { signal }) =>
      agent(hostId).call(authAdminApi.setGithub, { body }, signal),
    'signin:pending': async ({ hostId }, { signal }) => ({
      users: await pendingUsers(agent(hostId), signal),
    }),
    'users:sign-in': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(authAdminApi.getSignIn, { params: { id: userId } }, signal),
    'users:unlock': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(authAdminApi.unlockUser, { params: { id: userId } }, signal),
    'users:invite': ({ hostId, userId, expiresInHours }, { signal }) =>
      agent(hostId).call(authAdminApi.createInvite, { params: { id: userId }, body: { expiresInHours } }, signal),
    'users:sessions': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(authAdminApi.listSessions, { params: { id: userId } }, signal),
    'users:revoke-session': ({ hostId, userId, sessionId }, { signal }) =>
      agent(hostId).call(authAdminApi.revokeSession, { params: { id: userId, sessionId } }, signal),
    'users:revoke-sessions': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(authAdminApi.revokeAllSessions, { params: { id: userId } }, signal),
    'users:approve': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(authAdminApi.approveUser, { params: { id: userId } }, signal),
    'users:link-github': ({ hostId, userId, githubId }, { signal }) =>
      agent(hostId).call(authAdminApi.linkGithub, { params: { id: userId }, body: { githubId } }, signal),
    'users:unlink-github': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(authAdminApi.unlinkGithub, { params: { id: userId } }, signal),
    'shares:list': ({ hostId, slotId }, { signal }) =>
      agent(hostId).call(shareApi.listShares, { params: { id: slotId } }, signal),
    'shares:create': ({ hostId, slotId, share }, { signal }) =>
      agent(hostId).call(shareApi.createShare, { params: { id: slotId }, body: share }, signal),
    'shares:revoke': ({ hostId, shareId }, { signal }) =>
      agent(hostId).call(shareApi.revokeShare, { params: { id: shareId } }, signal),
    'audit:list': ({ hostId, ...query }, { signal }) => agent(hostId).call(authAdminApi.listAudit, { query }, signal),
    'audit:export': (input, { signal }) => exportAuditLog(agent(input.hostId), input, pickSaveFile, signal),
  };
}

/**
 * Users who signed up and wait for approval: they are inactive until approved, so only inactive users are asked for
 * their sign-in status (one request each, a handful in practice).
 */
export async function pendingUsers(client: AgentClient, signal: AbortSignal): Promise<User[]> {
  const { users } = await client.call(
    adminApi.listUsers,
    { query: { includeDeleted: 'false', limit: PENDING_SCAN_LIMIT, offset: 0 } },
    signal,
  );
  const inactive = users.filter((user) => !user.active && !user.deleted);
  const statuses = await Promise.all(
    inactive.map((user) => client.call(authAdminApi.getSignIn, { params: { id: user.id } }, signal)),
  );
  return inactive.filter((_, index) => statuses[index]!.pendingApproval);
}

/**
 * The audit log, filtered, as JSON lines or CSV. With a save dialog (the Electron app) it streams into the file the
 * admin picked; without one (browser mode) the content goes back for the page to download.
 */
export async function exportAuditLog(
  client: AgentClient,
  { hostId, format, ...filters }: IpcParsedInput<'audit:export'>,
  pickSaveFile: ((suggestedName: string) => Promise<string | null>) | undefined,
  signal: AbortSignal,
): Promise<AuditExportResult> {
  const day = (iso: string | undefined): string => (iso ? iso.slice(0, 10) : 'all');
  const exported: AgentExport = {
    path: AUDIT_PATH,
    query: { ...filters, format },
    fileName: `audit-${hostId}-${day(filters.since)}-to-${day(filters.until)}.${format}`,
    mimeType: format === 'csv' ? 'text/csv' : 'application/x-ndjson',
    writeFailedCode: IpcErrorCode.AUDIT_EXPORT_FAILED,
    tooLargeCode: IpcErrorCode.AUDIT_EXPORT_TOO_LARGE,
    narrowHint: 'Narrow the time range or the action',
  };
  return exportFromAgent(client, exported, pickSaveFile, signal);
}
