// End-user sign-in: public sign-in routes, and admin routes for sign-in settings, invites, sessions and the audit log (modules/auth, modules/audit).
import { z } from 'zod';
import { endpoint } from './http.js';
import { KeyScope, User, UserId, UserIdParams } from './users.js';

const API = '/api/v1';
export const PUBLIC_AUTH_PREFIX = '/api/public/auth';

/** The session cookie (Secure, HttpOnly, SameSite=Lax, Path=/); `slotdeck-session` on plain http from a non-loopback host. */
export const SESSION_COOKIE = '__Host-slotdeck-session';
export const INSECURE_SESSION_COOKIE = 'slotdeck-session';
/** Every POST/PUT/PATCH/DELETE of a signed-in browser carries this header with `csrfToken` from GET session. */
export const CSRF_HEADER = 'x-slotdeck-csrf';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

// ---- Settings (admin) ------------------------------------------------------------------------------------------

export const AUTH_SETTINGS_VERSION = 1;

/** What is stored (auth_settings.settings_json), validated on read and write. */
export const StoredAuthSettings = z.strictObject({
  version: z.literal(AUTH_SETTINGS_VERSION),
  signUpEnabled: z.boolean(),
  sessionIdleMinutes: z
    .int()
    .min(5, { message: 'at least 5 minutes' })
    .max(30 * 24 * 60, { message: 'at most 30 days' }),
  sessionAbsoluteHours: z
    .int()
    .min(1, { message: 'at least 1 hour' })
    .max(90 * 24, { message: 'at most 90 days' }),
  portalKeyLimit: z.int().min(0).max(100),
  portalKeyScopes: z.array(KeyScope).max(2),
  ownersMayShare: z.boolean(),
  github: z.strictObject({ clientId: z.string().nullable(), enabled: z.boolean() }),
});
export type StoredAuthSettings = z.infer<typeof StoredAuthSettings>;

export const DEFAULT_AUTH_SETTINGS: StoredAuthSettings = {
  version: AUTH_SETTINGS_VERSION,
  signUpEnabled: false,
  sessionIdleMinutes: 720,
  sessionAbsoluteHours: 168,
  portalKeyLimit: 5,
  portalKeyScopes: ['gateway', 'self'],
  ownersMayShare: false,
  github: { clientId: null, enabled: false },
};

/** What the admin API answers: the secret is never shown, only whether one is stored. */
export const AuthSettings = z.object({
  signUpEnabled: z.boolean(),
  sessionIdleMinutes: z.number(),
  sessionAbsoluteHours: z.number(),
  portalKeyLimit: z.number(),
  portalKeyScopes: z.array(KeyScope),
  ownersMayShare: z.boolean(),
  github: z.object({
    clientId: z.string().nullable(),
    secretConfigured: z.boolean(),
    /** On only with a client id and a secret. */
    enabled: z.boolean(),
    /** The Authorization callback URL to enter in the GitHub OAuth app. */
    callbackUrl: z.string(),
  }),
  /** The address end users open (portal.publicUrl, else the gateway's own URL). */
  publicUrl: z.string().nullable(),
});
export type AuthSettings = z.infer<typeof AuthSettings>;

export const UpdateAuthSettingsBody = z
  .strictObject({
    signUpEnabled: z.boolean(),
    sessionIdleMinutes: StoredAuthSettings.shape.sessionIdleMinutes,
    sessionAbsoluteHours: StoredAuthSettings.shape.sessionAbsoluteHours,
    portalKeyLimit: StoredAuthSettings.shape.portalKeyLimit,
    portalKeyScopes: z
      .array(KeyScope)
      .max(2)
      .refine((s) => new Set(s).size === s.length, { message: 'list each scope once' }),
    ownersMayShare: z.boolean(),
  })
  .partial()
  .refine((changes) => Object.keys(changes).length > 0, { message: 'send at least one setting to change' });
export type UpdateAuthSettingsBody = z.input<typeof UpdateAuthSettingsBody>;

export const GithubClientId = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9._-]{4,100}$/, { message: 'must be the OAuth app client id shown by GitHub' });

/** The secret is write-only: omit it to keep the stored one; `null` removes it (GitHub sign-in then stops). */
export const SetGithubBody = z.strictObject({
  clientId: GithubClientId.nullable(),
  clientSecret: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{8,200}$/, { message: 'must be the client secret GitHub showed for the OAuth app' })
    .nullable()
    .optional(),
  enabled: z.boolean(),
});
export type SetGithubBody = z.input<typeof SetGithubBody>;

// ---- Per-user sign-in (admin) -----------------------------------------------------------------------------------

export const InviteBody = z.strictObject({
  /** Default 72 hours, at most 30 days. */
  expiresInHours: z
    .int()
    .min(1)
    .max(30 * 24, { message: 'at most 30 days (720 hours)' })
    .default(72),
});
export type InviteBody = z.input<typeof InviteBody>;

export const Invite = z.object({ id: z.string(), userId: UserId, expiresAt: z.string(), createdAt: z.string() });
/** `link` (`${publicUrl}/invite/<token>`) is shown only in this answer. */
export const CreatedInvite = z.object({ invite: Invite, link: z.string() });
export type CreatedInvite = z.infer<typeof CreatedInvite>;

export const UserSession = z.object({
  id: z.string(),
  createdAt: z.string(),
  /** The last request that refreshed the session (better-auth refreshes at most once per `updateAge`). */
  lastSeenAt: z.string(),
  /** When it ends: the earlier of idle expiry and absolute expiry. */
  expiresAt: z.string(),
  ipAddress: z.string().nullable(),
  userAgent: z.string().nullable(),
});
export type UserSession = z.infer<typeof UserSession>;
export const UserSessionList = z.object({ sessions: z.array(UserSession) });
export const SessionParams = z.strictObject({ id: UserId, sessionId: z.string().min(1).max(100) });
export const EndedSessions = z.object({ ended: z.number() });

export const GithubId = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
export const LinkGithubBody = z.strictObject({ githubId: GithubId });

/** How a user can sign in (never a secret). */
export const SignInStatus = z.object({
  userId: UserId,
  hasPassword: z.boolean(),
  twoFactorEnabled: z.boolean(),
  githubId: z.number().nullable(),
  pendingApproval: z.boolean(),
  /** Locked after 100 failures in a row until an admin unlocks (or an invite / password reset succeeds). */
  locked: z.boolean(),
  failures: z.number(),
  activeSessions: z.number(),
  pendingInvites: z.number(),
});
export type SignInStatus = z.infer<typeof SignInStatus>;

// ---- Audit log (admin) ------------------------------------------------------------------------------------------

export const AuditActor = z.object({
  type: z.enum(['admin', 'user', 'anonymous', 'system']),
  id: z.string().nullable(),
});
export const AuditEntry = z.object({
  id: z.string(),
  at: z.string(),
  actor: AuditActor,
  action: z.string(),
  target: z.string().nullable(),
  outcome: z.enum(['success', 'failure']),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

const isoTime = z.iso.datetime({ offset: true, message: 'must be an ISO time such as 2026-12-01T00:00:00Z' });
export const AuditFilterQuery = z.strictObject({
  since: isoTime.optional(),
  until: isoTime.optional(),
  actor: z.string().min(1).max(100).optional(),
  action: z
    .string()
    .regex(/^[a-z_]+(\.[a-z_]+)+$/, { message: 'must be an action such as auth.sign_in' })
    .optional(),
});
export const AuditListQuery = AuditFilterQuery.extend({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z
    .string()
    .regex(/^\d{1,15}$/, { message: 'must be the nextCursor of the previous page' })
    .optional(),
});
/** Same path with `format=jsonl|csv`: the filtered entries streamed oldest first (a download, not JSON-parsed). */
export const AuditExportQuery = AuditFilterQuery.extend({ format: z.enum(['jsonl', 'csv']) });
export const AuditList = z.object({ entries: z.array(AuditEntry), nextCursor: z.string().nullable() });
export type AuditList = z.infer<typeof AuditList>;
export const AUDIT_PATH = `${API}/audit`;

// ---- Public (the portal, on the gateway's listener) -------------------------------------------------------------

export const SessionUser = z.object({
  id: UserId,
  username: z.string(),
  email: z.string().nullable(),
  displayName: z.string().nullable(),
  twoFactorEnabled: z.boolean(),
  githubLinked: z.boolean(),
});
export type SessionUser = z.infer<typeof SessionUser>;

export const SessionInfo = z.object({
  user: SessionUser.nullable(),
  /** Send as `x-slotdeck-csrf` on every state-changing request. */
  csrfToken: z.string().nullable(),
  expiresAt: z.string().nullable(),
  /** What the sign-in page offers. */
  signUpEnabled: z.boolean(),
  githubEnabled: z.boolean(),
});
export type SessionInfo = z.infer<typeof SessionInfo>;

const Password = z.string().min(1, { message: 'enter your password' }).max(PASSWORD_MAX_LENGTH);
/** Checked by the agent's policy (length, common passwords, not the username or email): AUTH_PASSWORD_WEAK/COMMON. */
const NewPassword = z.string().max(PASSWORD_MAX_LENGTH, { message: `at most ${PASSWORD_MAX_LENGTH} characters` });

/** `login` is the username or the email. */
export const SignInBody = z.strictObject({
  login: z.string().trim().min(1, { message: 'enter your username or email' }).max(254),
  password: Password,
});
export const TwoFactorCode = z
  .string()
  .trim()
  .regex(/^(\d{6}|[A-Za-z0-9-]{8,24})$/, { message: 'enter the 6-digit code from your app, or a backup code' });
/** The second step when sign-in answered AUTH_TWO_FACTOR_REQUIRED (the browser keeps a short-lived cookie). */
export const VerifyTwoFactorBody = z.strictObject({ code: TwoFactorCode });
export const SignedIn = z.object({ user: SessionUser, csrfToken: z.string(), expiresAt: z.string() });
export type SignedIn = z.infer<typeof SignedIn>;

export const SignUpBody = z.strictObject({
  username: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, { message: "must be 1-32 letters, digits, '.', '_' or '-'" }),
  email: z
    .email({ message: 'must be an email address' })
    .max(254)
    // The agent's own placeholder addresses (`<id>@users.slotdeck.invalid`) live there: reserved.
    .refine((email) => !/\.invalid$/i.test(email), { message: 'must be a real address (.invalid is reserved)' }),
  password: NewPassword,
});
export const SignedUp = z.object({ pendingApproval: z.literal(true) });

export const InviteToken = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { message: 'this invite link is not complete' });
export const InviteTokenParams = z.strictObject({ token: InviteToken });
export const InviteInfo = z.object({ username: z.string(), expiresAt: z.string() });
export const AcceptInviteBody = z.strictObject({ token: InviteToken, password: NewPassword });

export const ChangePasswordBody = z.strictObject({ currentPassword: Password, newPassword: NewPassword });
export const PasswordBody = z.strictObject({ password: Password });
/** Turning two-factor off takes the password AND a current code or a backup code (a stolen session plus a phished
 *  password is not enough). */
export const DisableTwoFactorBody = z.strictObject({ password: Password, code: TwoFactorCode });
/** The otpauth URI (for a QR code) and backup codes are shown once; `confirm` with a code to turn it on. */
export const TwoFactorEnrollment = z.object({ totpUri: z.string(), backupCodes: z.array(z.string()) });
/** Turning two-factor on or off replaces the session (better-auth's design): use the new CSRF token from here on. */
export const TwoFactorState = z.object({ enabled: z.boolean(), csrfToken: z.string() });

export const GithubStartBody = z.strictObject({
  /** Where to land after GitHub (a portal path). */
  returnTo: z
    .string()
    .regex(/^\/[A-Za-z0-9/_-]{0,100}$/, { message: 'must be a portal path such as /slots' })
    .default('/'),
});
/** The browser navigates to `url` (GitHub's authorize page). */
export const GithubRedirect = z.object({ url: z.string() });
/** GitHub sends the browser back here; it ends on a portal page (`/sign-in?error=CODE` when it failed). */
export const GITHUB_CALLBACK_PATH = `${PUBLIC_AUTH_PREFIX}/callback/github`;

const Ok = z.object({ ok: z.literal(true) });

export const publicAuthApi = {
  session: endpoint({
    method: 'GET',
    path: `${PUBLIC_AUTH_PREFIX}/session`,
    auth: 'none',
    response: SessionInfo,
    status: 200,
    summary: 'The signed-in user and the CSRF token, or user: null',
  }),
  signIn: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/sign-in`,
    auth: 'none',
    body: SignInBody,
    response: SignedIn,
    status: 200,
    summary:
      'Password sign-in by username or email (sets the session cookie); AUTH_TWO_FACTOR_REQUIRED: send the code to two-factor/verify',
  }),
  verifyTwoFactor: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/two-factor/verify`,
    auth: 'none',
    body: VerifyTwoFactorBody,
    response: SignedIn,
    status: 200,
    summary: 'Second sign-in step: the TOTP code or a backup code',
  }),
  signUp: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/sign-up`,
    auth: 'none',
    body: SignUpBody,
    response: SignedUp,
    status: 202,
    summary: 'Ask for an account (only when the admin turned sign-up on); it waits for approval',
  }),
  signOut: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/sign-out`,
    auth: 'session',
    response: Ok,
    status: 200,
    summary: 'End this session (session + CSRF)',
  }),
  signOutEverywhere: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/sign-out-everywhere`,
    auth: 'session',
    response: EndedSessions,
    status: 200,
    summary: 'End every session of the signed-in user, this one included (session + CSRF)',
  }),
  inviteInfo: endpoint({
    method: 'GET',
    path: `${PUBLIC_AUTH_PREFIX}/invites/:token`,
    auth: 'none',
    params: InviteTokenParams,
    response: InviteInfo,
    status: 200,
    summary: 'Whom an invite link is for (AUTH_INVITE_INVALID when used, expired or unknown)',
  }),
  acceptInvite: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/invites/accept`,
    auth: 'none',
    body: AcceptInviteBody,
    response: SignedIn,
    status: 200,
    summary: 'Set the first password with an invite link and sign in',
  }),
  changePassword: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/password`,
    auth: 'session',
    body: ChangePasswordBody,
    response: Ok,
    status: 200,
    summary: 'Change the password (session + CSRF); other sessions end',
  }),
  enrollTwoFactor: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/two-factor/enable`,
    auth: 'session',
    body: PasswordBody,
    response: TwoFactorEnrollment,
    status: 200,
    summary: 'Start TOTP enrolment with the password: otpauth URI and backup codes, shown once (session + CSRF)',
  }),
  confirmTwoFactor: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/two-factor/confirm`,
    auth: 'session',
    body: VerifyTwoFactorBody,
    response: TwoFactorState,
    status: 200,
    summary: 'Turn TOTP on with a code from the app (session + CSRF)',
  }),
  disableTwoFactor: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/two-factor/disable`,
    auth: 'session',
    body: DisableTwoFactorBody,
    response: TwoFactorState,
    status: 200,
    summary: 'Turn TOTP off with the password and a current code or a backup code (session + CSRF)',
  }),
  githubSignIn: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/github/sign-in`,
    auth: 'none',
    body: GithubStartBody,
    response: GithubRedirect,
    status: 200,
    summary: 'Start GitHub sign-in (same-origin request); navigate to url',
  }),
  githubLink: endpoint({
    method: 'POST',
    path: `${PUBLIC_AUTH_PREFIX}/github/link`,
    auth: 'session',
    body: GithubStartBody,
    response: GithubRedirect,
    status: 200,
    summary: "Link the signed-in user's own GitHub account (session + CSRF); navigate to url",
  }),
} as const;

export const authAdminApi = {
  getAuthSettings: endpoint({
    method: 'GET',
    path: `${API}/auth/settings`,
    auth: 'admin',
    response: AuthSettings,
    status: 200,
    summary: 'Sign-in settings (sign-up, session expiry, portal key limits, sharing, GitHub)',
  }),
  updateAuthSettings: endpoint({
    method: 'PUT',
    path: `${API}/auth/settings`,
    auth: 'admin',
    body: UpdateAuthSettingsBody,
    response: AuthSettings,
    status: 200,
    summary: 'Change sign-in settings (the fields sent)',
  }),
  setGithub: endpoint({
    method: 'PUT',
    path: `${API}/auth/github`,
    auth: 'admin',
    body: SetGithubBody,
    response: AuthSettings,
    status: 200,
    summary: 'GitHub OAuth app: client id and secret (write-only, stored encrypted on the host)',
  }),
  getSignIn: endpoint({
    method: 'GET',
    path: `${API}/users/:id/sign-in`,
    auth: 'admin',
    params: UserIdParams,
    response: SignInStatus,
    status: 200,
    summary: 'How a user can sign in: password, two-factor, GitHub id, lockout, sessions',
  }),
  unlockUser: endpoint({
    method: 'POST',
    path: `${API}/users/:id/unlock`,
    auth: 'admin',
    params: UserIdParams,
    response: SignInStatus,
    status: 200,
    summary: 'Clear the sign-in lockout and backoff of a user',
  }),
  createInvite: endpoint({
    method: 'POST',
    path: `${API}/users/:id/invites`,
    auth: 'admin',
    params: UserIdParams,
    body: InviteBody,
    response: CreatedInvite,
    status: 201,
    summary: 'A single-use link to set the first (or a new) password; the answer is the only time it is shown',
  }),
  listSessions: endpoint({
    method: 'GET',
    path: `${API}/users/:id/sessions`,
    auth: 'admin',
    params: UserIdParams,
    response: UserSessionList,
    status: 200,
    summary: "A user's sessions (never their tokens)",
  }),
  revokeSession: endpoint({
    method: 'DELETE',
    path: `${API}/users/:id/sessions/:sessionId`,
    auth: 'admin',
    params: SessionParams,
    response: EndedSessions,
    status: 200,
    summary: 'End one session at once (its open terminals close)',
  }),
  revokeAllSessions: endpoint({
    method: 'DELETE',
    path: `${API}/users/:id/sessions`,
    auth: 'admin',
    params: UserIdParams,
    response: EndedSessions,
    status: 200,
    summary: 'End every session of a user',
  }),
  approveUser: endpoint({
    method: 'POST',
    path: `${API}/users/:id/approve`,
    auth: 'admin',
    params: UserIdParams,
    response: User,
    status: 200,
    summary: 'Approve a user who signed up: active, may sign in',
  }),
  linkGithub: endpoint({
    method: 'PUT',
    path: `${API}/users/:id/github`,
    auth: 'admin',
    params: UserIdParams,
    body: LinkGithubBody,
    response: SignInStatus,
    status: 200,
    summary: "Link a GitHub account to a user by GitHub's numeric user id",
  }),
  unlinkGithub: endpoint({
    method: 'DELETE',
    path: `${API}/users/:id/github`,
    auth: 'admin',
    params: UserIdParams,
    response: SignInStatus,
    status: 200,
    summary: "Remove a user's GitHub link",
  }),
  listAudit: endpoint({
    method: 'GET',
    path: AUDIT_PATH,
    auth: 'admin',
    query: AuditListQuery,
    response: AuditList,
    status: 200,
    summary: 'The audit log, newest first, filtered and paginated by cursor (format=jsonl|csv: a streamed export)',
  }),
} as const;
