/**
 * The IPC contract of end-user sign-in (settings, invites, sessions, approval, GitHub links), share links of slots
 * and the audit log. Merged into `ipcContract` in ./contract.ts; kept apart so each domain's schemas sit together.
 *
 * The outputs that carry the agent's data are the agent's own schemas (remote-agent/src/contract/auth.ts, share.ts),
 * so main parses each answer with the schema the renderer relies on.
 */
import { z } from 'zod';
import {
  AuditFilterQuery,
  AuditList,
  AuthSettings,
  CreatedInvite,
  CreatedShare,
  CreateShareBody,
  EndedSessions,
  InviteBody,
  LinkGithubBody,
  SetGithubBody,
  Share,
  ShareId,
  ShareList,
  SignInStatus,
  SlotId,
  UpdateAuthSettingsBody,
  User,
  UserId,
  UserSessionList,
} from '../../../remote-agent/src/contract/index';

export type {
  AuditEntry,
  AuditList,
  AuthSettings,
  CreatedInvite,
  CreatedShare,
  CreateShareBody,
  SetGithubBody,
  Share,
  ShareMode,
  ShareState,
  SignInStatus,
  UpdateAuthSettingsBody,
  UserSession,
} from '../../../remote-agent/src/contract/index';
export {
  SHARE_MAX_EXPIRY_MINUTES,
  SHARE_MAX_FRAME_ANCESTORS,
  SHARE_MAX_VIEWERS,
} from '../../../remote-agent/src/contract/index';

const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });

/**
 * An origin the panel lets the admin allow to embed a share (`frame-ancestors`): https://host[:port] (http:// only for
 * localhost, for testing). Stricter than the agent's FrameAncestor (which takes any http origin): a share embedded in
 * a plain-http page leaks what it shows to the network.
 */
export function embedOriginProblem(value: string): string | null {
  const text = value.trim();
  if (!text) return 'enter an origin such as https://docs.example.com';
  if (text.includes('*')) return `${text}: wildcards are not allowed; list each origin`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${text} is not an address: write it as https://host or https://host:port`;
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    return `${text}: only https:// origins may embed a share (http:// only for localhost)`;
  if (url.username || url.password) return `${text}: an origin has no user name or password`;
  if (url.origin !== text.replace(/\/$/, ''))
    return `${text}: an origin is only scheme, host and port, in lower case (drop any path, query or fragment)`;
  return null;
}

/** An audit export: as a usage export, written to the file the admin picked, or (browser mode) returned to download. */
export const AuditExportResult = z.object({
  fileName: z.string(),
  mimeType: z.string(),
  bytes: z.number(),
  savedTo: z.string().nullable(),
  content: z.string().nullable(),
});
export type AuditExportResult = z.infer<typeof AuditExportResult>;

const userRef = z.strictObject({ hostId: HostId, userId: UserId });
const hostRef = z.strictObject({ hostId: HostId });

export const portalIpcContract = {
  'signin:settings': { input: hostRef, output: AuthSettings },
  'signin:update': { input: hostRef.extend({ changes: UpdateAuthSettingsBody }), output: AuthSettings },
  // The secret goes to the agent (kept encrypted there) and never comes back: the answer says only `secretConfigured`.
  'signin:set-github': { input: SetGithubBody.safeExtend({ hostId: HostId }), output: AuthSettings },
  /** Users who signed up and wait for an admin's approval. */
  'signin:pending': { input: hostRef, output: z.object({ users: z.array(User) }) },
  'users:sign-in': { input: userRef, output: SignInStatus },
  'users:unlock': { input: userRef, output: SignInStatus },
  // The answer holds the link (with its token) once: it goes to the renderer to be shown and is never logged or kept.
  'users:invite': { input: userRef.extend(InviteBody.shape), output: CreatedInvite },
  'users:sessions': { input: userRef, output: UserSessionList },
  'users:revoke-session': {
    input: userRef.extend({ sessionId: z.string().min(1).max(100) }),
    output: EndedSessions,
  },
  'users:revoke-sessions': { input: userRef, output: EndedSessions },
  'users:approve': { input: userRef, output: User },
  'users:link-github': { input: userRef.extend(LinkGithubBody.shape), output: SignInStatus },
  'users:unlink-github': { input: userRef, output: SignInStatus },
  'shares:list': { input: z.strictObject({ hostId: HostId, slotId: SlotId }), output: ShareList },
  // The answer holds the link (with its token) once: it goes to the renderer to be shown and is never logged or kept.
  'shares:create': {
    input: z.strictObject({ hostId: HostId, slotId: SlotId, share: CreateShareBody }),
    output: CreatedShare,
  },
  'shares:revoke': { input: z.strictObject({ hostId: HostId, shareId: ShareId }), output: Share },
  'audit:list': {
    input: AuditFilterQuery.extend({
      hostId: HostId,
      cursor: z
        .string()
        .regex(/^\d{1,15}$/, { message: 'must be the nextCursor of the previous page' })
        .optional(),
      limit: z.int().min(1).max(500).default(50),
    }),
    output: AuditList,
  },
  'audit:export': {
    input: AuditFilterQuery.extend({ hostId: HostId, format: z.enum(['jsonl', 'csv']) }),
    output: AuditExportResult,
  },
};
