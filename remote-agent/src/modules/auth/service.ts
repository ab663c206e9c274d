import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { APIError, isAPIError } from 'better-auth/api';
import { symmetricDecrypt } from 'better-auth/crypto';
import type { Logger } from 'pino';
import type { Db } from '../../db/database.js';
import {
  AgentErrorCode,
  type AuthSettings,
  type CreatedInvite,
  type SessionUser,
  type SignInStatus,
  type StoredAuthSettings,
  type UserSession,
  GITHUB_CALLBACK_PATH,
} from '../../contract/index.js';
import { AppError } from '../../errors.js';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import type { UserService } from '../users/service.js';
import { AUTH_MODELS, createAuth, PEER_HEADER, type Auth } from './better-auth.js';
import { githubPlaceholderEmail, githubProvider, type GithubEndpoints } from './github.js';
import { checkPassword } from './password-policy.js';
import { AuthSecrets } from './secrets.js';
import { AuthSettingsStore } from './settings.js';
import { addressKey, LoginThrottle } from './throttle.js';

const HOUR_MS = 3_600_000;
/** TOTP: 30 s steps, and better-auth accepts the step before and after the current one. */
const TOTP_PERIOD_MS = 30_000;
/** How long the two-factor step of a GitHub sign-in waits for its code (better-auth's own default for password). */
const TWO_FACTOR_PENDING_SECONDS = 600;
/** Failed GitHub callbacks per address audited one by one (then one row per 100). */
const GITHUB_FAILURES_AUDITED = 5;
/** The same better-auth log line is written at most once a minute (with how many were left out). */
const LOG_REPEAT_MS = 60_000;
/** Codes our database hooks throw through better-auth, answered to the client as they are. */
const HOOK_CODES = new Set<string>([
  AgentErrorCode.AUTH_USER_DISABLED,
  AgentErrorCode.AUTH_APPROVAL_PENDING,
  AgentErrorCode.AUTH_SIGNUP_DISABLED,
]);

/** What a request brings to sign-in: where from, and the cookies better-auth reads. */
export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
  cookie: string | null;
}

/** better-auth's answer headers to forward (Set-Cookie only). */
export type CookieHeaders = string[];

interface AgentUserRow {
  id: string;
  username: string;
  email: string | null;
  display_name: string | null;
  active: number;
  deleted_at: string | null;
  pending_approval: number;
}

interface SessionRecord {
  id: string;
  token: string;
  userId: string;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
  ipAddress?: string | null;
  userAgent?: string | null;
}

export interface AuthServiceDeps {
  db: Db;
  dataDir: string;
  logger: Logger;
  audit: AuditLog;
  users: UserService;
  /** The address end users open (portal.publicUrl, else the gateway's URL once it listens). */
  publicUrl: () => string | null;
  github: GithubEndpoints;
  /** Secure cookies (`__Host-` name): TLS, an https publicUrl, or a loopback listener (browsers treat it as secure). */
  secureCookie: boolean;
  now?: () => number;
}

export const placeholderEmail = (userId: string): string => `${userId}@users.slotdeck.invalid`;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function toDate(value: Date | string | number): Date {
  return value instanceof Date ? value : new Date(value);
}

/**
 * End-user sign-in on better-auth: the instance (rebuilt when its settings change), passwords and their policy,
 * throttling, invites, two-factor, GitHub, sessions and their CSRF tokens. Every state change is audited.
 */
export class AuthService {
  readonly settings: AuthSettingsStore;
  readonly throttle: LoginThrottle;
  readonly secrets: AuthSecrets;
  readonly cookieName: string;
  private instance: { auth: Auth; key: string } | null = null;
  private readonly listeners = new Set<(sessionIds: string[]) => void>();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly deps: AuthServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.settings = new AuthSettingsStore(deps.db, (message) => deps.logger.warn(message));
    this.throttle = new LoginThrottle(deps.db, this.now);
    this.secrets = new AuthSecrets(deps.dataDir);
    this.cookieName = deps.secureCookie ? '__Host-slotdeck-session' : 'slotdeck-session';
    if (!deps.secureCookie)
      deps.logger.warn(
        'The portal is served over plain http from a non-loopback address: its session cookie cannot be Secure. Put TLS in front (gateway.tlsCertFile or an https portal.publicUrl).',
      );
  }

  // ------------------------------------------------------------------ the better-auth instance

  baseUrl(): string {
    return this.deps.publicUrl() ?? 'http://127.0.0.1';
  }

  /** The instance for the current settings; a change of GitHub app, sign-up or idle time builds a new one. */
  async auth(): Promise<Auth> {
    const settings = this.settings.get();
    const secret = this.githubSecret();
    const github =
      settings.github.enabled && settings.github.clientId && secret
        ? { clientId: settings.github.clientId, clientSecret: secret, signUp: settings.signUpEnabled }
        : null;
    const key = JSON.stringify([
      this.baseUrl(),
      settings.sessionIdleMinutes,
      github?.clientId,
      sha256(secret ?? ''),
      github?.signUp,
    ]);
    if (this.instance?.key === key) return this.instance.auth;
    const auth = createAuth({
      db: this.deps.db,
      secret: this.secrets.secret(),
      baseURL: this.baseUrl(),
      cookieName: this.cookieName,
      secureCookie: this.deps.secureCookie,
      sessionIdleSeconds: settings.sessionIdleMinutes * 60,
      github,
      hooks: this.hooks(),
      logger: {
        warn: (m) => this.logCollapsed('warn', m),
        // A made-up callback state is the caller's mistake, not ours: a warning, not an error.
        error: (m) => this.logCollapsed(/state/i.test(m) ? 'warn' : 'error', m),
      },
    });
    const context = await auth.$context;
    if (github) {
      // better-auth's own GitHub provider has github.com built in; ours reads the configured endpoints.
      const index = context.socialProviders.findIndex((p) => p.id === 'github');
      const provider = githubProvider(github, this.deps.github);
      if (index >= 0) context.socialProviders[index] = provider as unknown as (typeof context.socialProviders)[number];
    }
    this.instance = { auth, key };
    return auth;
  }

  private readonly logRepeats = new Map<string, { at: number; left: number }>();

  /** better-auth's log lines, each distinct line at most once a minute (anonymous callers can repeat them at will). */
  private logCollapsed(level: 'warn' | 'error', message: string): void {
    const now = Date.now();
    const seen = this.logRepeats.get(message);
    if (seen && now - seen.at < LOG_REPEAT_MS) {
      seen.left += 1;
      return;
    }
    if (this.logRepeats.size > 1000) this.logRepeats.clear();
    this.logRepeats.set(message, { at: now, left: 0 });
    const repeats = seen?.left ? { repeatsLeftOut: seen.left } : {};
    this.deps.logger[level](repeats, message);
  }

  private githubSecret(): string | null {
    return this.secrets.githubClientSecret();
  }

  private hooks() {
    return {
      user: {
        create: {
          // Only GitHub sign-up creates users through better-auth (email sign-up is off): the agent user comes first,
          // inactive and waiting for approval, and the sign-in side takes its id.
          // eslint-disable-next-line @typescript-eslint/require-await -- better-auth's hook type wants a promise
          before: async (user: {
            name?: string;
            email?: string;
            emailVerified?: boolean;
            username?: string | null;
          }) => {
            const settings = this.settings.get();
            if (!settings.signUpEnabled)
              throw new APIError('FORBIDDEN', { code: AgentErrorCode.AUTH_SIGNUP_DISABLED, message: 'sign-up is off' });
            const base =
              (user.username ?? user.name ?? 'user')
                .toLowerCase()
                .replace(/[^a-z0-9._-]/g, '')
                .slice(0, 24) || 'user';
            let username = base;
            for (let n = 2; this.usernameTaken(username); n += 1) username = `${base}-${n}`;
            const email = user.emailVerified && user.email && !user.email.endsWith('.invalid') ? user.email : null;
            const created = this.deps.users.create({
              username,
              email,
              displayName: user.name?.trim().slice(0, 100) || null,
              role: 'member',
              active: false,
            });
            this.deps.db.prepare('UPDATE users SET pending_approval = 1 WHERE id = ?').run(created.id);
            this.deps.audit.record({
              actor: { type: 'anonymous', id: null },
              action: 'auth.signed_up',
              target: created.id,
              detail: { method: 'github' },
            });
            return { data: { id: created.id, username, displayUsername: username } };
          },
        },
      },
      session: {
        // better-auth deletes sessions itself too (idle expiry found on lookup, the session swap of a two-factor change,
        // sign-out): every delete tells the listeners, so terminals opened under that session close.
        delete: {
          // eslint-disable-next-line @typescript-eslint/require-await -- better-auth's hook type wants a promise
          after: async (session: { id: string }) => this.tellEnded([session.id]),
        },
        create: {
          // Every way in (password, two-factor, GitHub) ends here: only an active, approved user gets a session.
          // eslint-disable-next-line @typescript-eslint/require-await -- better-auth's hook type wants a promise
          before: async (session: { userId: string }) => {
            const problem = this.userProblem(session.userId);
            if (problem) throw new APIError('FORBIDDEN', problem);
          },
        },
      },
      account: {
        // GitHub's access tokens are not kept: the agent only needed them to read the user's id and emails.
        create: {
          // eslint-disable-next-line @typescript-eslint/require-await -- better-auth's hook type wants a promise
          before: async (account: Record<string, unknown>) => ({ data: { ...account, ...this.noTokens() } }),
          // eslint-disable-next-line @typescript-eslint/require-await -- better-auth's hook type wants a promise
          after: async (account: { providerId: string; userId: string; accountId: string }) => {
            if (account.providerId === 'github')
              this.deps.audit.record({
                actor: { type: 'user', id: account.userId },
                action: 'auth.github_linked',
                target: account.userId,
                detail: { githubId: account.accountId },
              });
          },
        },
        update: {
          // eslint-disable-next-line @typescript-eslint/require-await -- better-auth's hook type wants a promise
          before: async (account: Record<string, unknown>) =>
            'accessToken' in account || 'refreshToken' in account || 'idToken' in account
              ? { data: { ...account, ...this.noTokens() } }
              : undefined,
        },
      },
    };
  }

  private noTokens() {
    return {
      accessToken: null,
      refreshToken: null,
      idToken: null,
      accessTokenExpiresAt: null,
      refreshTokenExpiresAt: null,
    };
  }

  private usernameTaken(username: string): boolean {
    return (
      this.deps.db.prepare('SELECT 1 FROM users WHERE username = ? AND deleted_at IS NULL').get(username) !==
        undefined || this.deps.db.prepare('SELECT 1 FROM auth_user WHERE username = ?').get(username) !== undefined
    );
  }

  private agentUser(userId: string): AgentUserRow | undefined {
    return this.deps.db
      .prepare('SELECT id, username, email, display_name, active, deleted_at, pending_approval FROM users WHERE id = ?')
      .get(userId) as AgentUserRow | undefined;
  }

  /** Why a user may not have a session now, or null. */
  userProblem(userId: string): { code: string; message: string } | null {
    const user = this.agentUser(userId);
    if (!user || user.deleted_at !== null)
      return { code: AgentErrorCode.AUTH_CREDENTIALS_INVALID, message: 'The username or password is wrong.' };
    if (user.pending_approval)
      return {
        code: AgentErrorCode.AUTH_APPROVAL_PENDING,
        message: 'Your account waits for an administrator to approve it. Try again once they have.',
      };
    if (!user.active)
      return {
        code: AgentErrorCode.AUTH_USER_DISABLED,
        message: 'This account is disabled. Ask your administrator to enable it.',
      };
    return null;
  }

  /** The sign-in side (auth_user) of an agent user, made or brought up to date (username, email, name). */
  async ensureAuthUser(userId: string): Promise<{ email: string }> {
    const user = this.agentUser(userId);
    if (!user || user.deleted_at !== null) throw this.userNotFound(userId);
    const context = await (await this.auth()).$context;
    const existing = await context.adapter.findOne<{ email: string; username: string | null; name: string }>({
      model: 'user',
      where: [{ field: 'id', value: userId }],
    });
    const wanted = user.email?.toLowerCase() ?? null;
    const emailFree =
      wanted !== null &&
      this.deps.db.prepare('SELECT 1 FROM auth_user WHERE email = ? AND id != ?').get(wanted, userId) === undefined;
    let email = emailFree
      ? wanted
      : existing && !existing.email.endsWith('.invalid') && existing.email !== wanted
        ? placeholderEmail(userId)
        : (existing?.email ?? placeholderEmail(userId));
    // Whatever another sign-in row holds (an address set before .invalid was refused), this one takes a free one:
    // a UNIQUE clash here would fail every sign-in and invite of this user.
    if (this.deps.db.prepare('SELECT 1 FROM auth_user WHERE email = ? AND id != ?').get(email, userId))
      email = `${userId}.${randomBytes(6).toString('hex')}@users.slotdeck.invalid`;
    const fields = {
      name: user.display_name ?? user.username,
      email,
      username: user.username.toLowerCase(),
      displayUsername: user.username,
      updatedAt: new Date(this.now()),
    };
    try {
      if (!existing) {
        // Another (deleted) user's sign-in row may still hold the name; the live user gets it.
        this.deps.db.prepare('DELETE FROM auth_user WHERE username = ? AND id != ?').run(fields.username, userId);
        await context.adapter.create({
          model: 'user',
          data: {
            id: userId,
            ...fields,
            emailVerified: false,
            twoFactorEnabled: false,
            createdAt: new Date(this.now()),
          },
          forceAllowId: true,
        });
      } else if (
        existing.email !== fields.email ||
        existing.username !== fields.username ||
        existing.name !== fields.name
      ) {
        await context.adapter.update({ model: 'user', where: [{ field: 'id', value: userId }], update: fields });
      }
    } catch (error) {
      if (!/UNIQUE/i.test(String((error as Error).message))) throw error;
      throw new AppError(
        AgentErrorCode.AUTH_EMAIL_TAKEN,
        409,
        'This account’s sign-in record clashes with another account’s. Ask your administrator to check its username and email.',
      );
    }
    return { email };
  }

  private userNotFound(userId: string): AppError {
    return new AppError(
      AgentErrorCode.USER_NOT_FOUND,
      404,
      `No user with id ${userId}. List users with GET /api/v1/users.`,
    );
  }

  // ------------------------------------------------------------------ better-auth calls

  headersOf(context: RequestContext): Headers {
    const headers = new Headers();
    if (context.cookie) headers.set('cookie', context.cookie);
    if (context.userAgent) headers.set('user-agent', context.userAgent.slice(0, 512));
    if (context.ip) headers.set(PEER_HEADER, context.ip);
    return headers;
  }

  /** Set-Cookie headers to pass on; the session cookie lives as long as the absolute session limit. */
  forwardCookies(headers: Headers | null | undefined): CookieHeaders {
    if (!headers) return [];
    const absolute = this.settings.get().sessionAbsoluteHours * 3600;
    return headers
      .getSetCookie()
      .map((cookie) =>
        cookie.startsWith(`${this.cookieName}=`) && !/Max-Age=0\b/i.test(cookie)
          ? cookie.replace(/Max-Age=\d+/i, `Max-Age=${absolute}`)
          : cookie,
      );
  }

  /** A better-auth error as the agent's: our hooks' codes pass, everything else becomes `fallback`. */
  mapError(error: unknown, fallback: AppError): AppError {
    if (error instanceof AppError) return error;
    if (isAPIError(error)) {
      const body = error.body as { code?: string; message?: string } | undefined;
      if (body?.code && HOOK_CODES.has(body.code))
        return new AppError(body.code as AgentErrorCode, 403, body.message ?? 'Refused.');
      return fallback;
    }
    throw error;
  }

  // ------------------------------------------------------------------ sign-in

  private resolveLogin(login: string): AgentUserRow | undefined {
    const rows = this.deps.db
      .prepare(
        `SELECT id, username, email, display_name, active, deleted_at, pending_approval FROM users
         WHERE deleted_at IS NULL AND (username = ? OR email = ?) ORDER BY (username = ?) DESC LIMIT 2`,
      )
      .all(login, login, login) as AgentUserRow[];
    // An email two users share signs in neither (the username still does).
    if (rows.length === 2 && rows[0]!.username.toLowerCase() !== login.toLowerCase()) return undefined;
    return rows[0];
  }

  accountSubject(userId: string | undefined, login: string): string {
    // Hashed: what was typed as a name may be a password typed in the wrong field.
    return userId ? `user:${userId}` : `login:${sha256(login.toLowerCase())}`;
  }

  async signIn(
    login: string,
    password: string,
    context: RequestContext,
  ): Promise<{ result: SignedInResult; cookies: CookieHeaders }> {
    const target = this.resolveLogin(login);
    const subject = this.accountSubject(target?.id, login);
    this.throttle.check(subject, context.ip);
    const auth = await this.auth();
    const invalid = new AppError(
      AgentErrorCode.AUTH_CREDENTIALS_INVALID,
      401,
      'The username or password is wrong. Check both, or ask your administrator for a new invite link.',
    );
    let answer: { headers: Headers; response: { token?: string | null; twoFactorRedirect?: boolean } };
    try {
      // An unknown name costs the same password check against a fixed hash, and never reaches better-auth (which
      // would look the typed address up: no made-up address may ever sign anyone in).
      if (!target) {
        await this.dummyPasswordCheck(password);
        throw invalid;
      }
      const { email } = await this.ensureAuthUser(target.id);
      answer = await auth.api.signInEmail({
        body: { email, password, rememberMe: true },
        headers: this.headersOf(context),
        returnHeaders: true,
      });
    } catch (error) {
      const mapped = this.mapError(error, invalid);
      if (mapped === invalid) {
        this.throttle.failure(subject, context.ip);
        this.deps.audit.record({
          actor: { type: target ? 'user' : 'anonymous', id: target?.id ?? null },
          action: 'auth.sign_in_failed',
          target: target?.id ?? null,
          outcome: 'failure',
          ip: context.ip,
          userAgent: context.userAgent,
          // Not the name typed for an unknown account: people type their password there by mistake.
          detail: { method: 'password', knownAccount: target !== undefined },
        });
      }
      throw mapped;
    }
    const cookies = this.forwardCookies(answer.headers);
    if (answer.response.twoFactorRedirect) {
      return { result: { twoFactorRequired: true }, cookies };
    }
    this.throttle.success(subject);
    const session = await this.sessionByToken(answer.response.token ?? '');
    this.deps.audit.record({
      actor: { type: 'user', id: target.id },
      action: 'auth.sign_in',
      target: target.id,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { method: 'password' },
    });
    return { result: this.signedIn(session!), cookies };
  }

  /** The user a pending two-factor sign-in names (better-auth's `two_factor` cookie → its verification row). */
  private async pendingTwoFactorUser(cookieHeader: string | null): Promise<string | null> {
    if (!cookieHeader) return null;
    const context = await (await this.auth()).$context;
    const name = context.createAuthCookie('two_factor').name;
    const raw = cookieHeader
      .split(';')
      .map((part) => part.trim())
      .find((part) => part.startsWith(`${name}=`));
    if (!raw) return null;
    let identifier: string;
    try {
      identifier = decodeURIComponent(raw.slice(name.length + 1)).split('.')[0] ?? '';
    } catch {
      return null;
    }
    if (!/^2fa-[A-Za-z0-9_-]{1,64}$/.test(identifier)) return null;
    const row = this.deps.db.prepare('SELECT value FROM auth_verification WHERE identifier = ?').get(identifier) as
      { value: string } | undefined;
    return row?.value ?? null;
  }

  private dummyHash: Promise<string> | null = null;

  /** A password check as costly as a real one, for names that match no account. */
  private async dummyPasswordCheck(password: string): Promise<void> {
    const context = await (await this.auth()).$context;
    this.dummyHash ??= context.password.hash(randomBytes(24).toString('base64url'));
    await context.password.verify({ hash: await this.dummyHash, password });
  }

  /** The second step of a sign-in with two-factor: the code from the app, or a backup code. */
  async verifyTwoFactor(
    code: string,
    context: RequestContext,
  ): Promise<{ result: SignedInResult; cookies: CookieHeaders }> {
    // Per account (the user the pending sign-in names), so a shared address does not slow everyone behind it; by
    // address when no pending sign-in is known. The address window applies to both.
    const pendingUser = await this.pendingTwoFactorUser(context.cookie);
    const subject = pendingUser ? `2fa-user:${pendingUser}` : `2fa:${context.ip ? addressKey(context.ip) : 'unknown'}`;
    this.throttle.check(subject, context.ip);
    const auth = await this.auth();
    const invalid = new AppError(
      AgentErrorCode.AUTH_TWO_FACTOR_INVALID,
      401,
      'The code is wrong or expired. Enter the current 6-digit code from your app, or a backup code; or sign in again.',
    );
    let answer: { headers: Headers; response: { token: string; user: { id: string } } };
    try {
      const request = {
        body: { code, trustDevice: false },
        headers: this.headersOf(context),
        returnHeaders: true as const,
      };
      answer = (/^\d{6}$/.test(code)
        ? await auth.api.verifyTOTP(request)
        : await auth.api.verifyBackupCode(request)) as unknown as typeof answer;
    } catch (error) {
      const mapped = this.mapError(error, invalid);
      if (mapped === invalid) {
        this.throttle.failure(subject, context.ip);
        this.deps.audit.record({
          actor: { type: 'anonymous', id: null },
          action: 'auth.sign_in_failed',
          outcome: 'failure',
          ip: context.ip,
          userAgent: context.userAgent,
          detail: { method: 'two_factor' },
        });
      }
      throw mapped;
    }
    const session = await this.sessionByToken(answer.response.token);
    if (/^\d{6}$/.test(code) && !(await this.claimTotpStep(answer.response.user.id, code))) {
      // The code was used already (a replay within its window): the session better-auth just made ends at once.
      if (session) this.endSessions([session.id]);
      this.throttle.failure(subject, context.ip);
      this.deps.audit.record({
        actor: { type: 'anonymous', id: null },
        action: 'auth.sign_in_failed',
        outcome: 'failure',
        ip: context.ip,
        userAgent: context.userAgent,
        detail: { method: 'two_factor', reason: 'code_reused' },
      });
      throw new AppError(
        AgentErrorCode.AUTH_TWO_FACTOR_INVALID,
        401,
        'This code was used already. Wait for the next code in your app (or use a backup code), then sign in again.',
      );
    }
    this.throttle.success(subject);
    this.throttle.success(`user:${answer.response.user.id}`);
    this.deps.audit.record({
      actor: { type: 'user', id: answer.response.user.id },
      action: 'auth.sign_in',
      target: answer.response.user.id,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { method: 'two_factor' },
    });
    return { result: this.signedIn(session!), cookies: this.forwardCookies(answer.headers) };
  }

  async signUp(body: { username: string; email: string; password: string }, context: RequestContext): Promise<void> {
    const settings = this.settings.get();
    if (!settings.signUpEnabled)
      throw new AppError(
        AgentErrorCode.AUTH_SIGNUP_DISABLED,
        403,
        'Sign-up is off on this server. Ask an administrator for an invite.',
      );
    const subject = `signup:${context.ip ? addressKey(context.ip) : 'unknown'}`;
    this.throttle.check(subject, context.ip);
    checkPassword(body.password, body);
    // A taken name or email answers like a fresh one (no probing who has an account); the admin sees the request.
    this.throttle.failure(subject, null);
    // The password is hashed in every branch, so a taken name or email costs the same time as a fresh one.
    const passwordHash = await (await (await this.auth()).$context).password.hash(body.password);
    const email = body.email.toLowerCase();
    if (
      this.usernameTaken(body.username) ||
      this.deps.db.prepare('SELECT 1 FROM users WHERE email = ? AND deleted_at IS NULL').get(email) ||
      this.deps.db.prepare('SELECT 1 FROM auth_user WHERE email = ?').get(email)
    ) {
      this.deps.audit.record({
        actor: { type: 'anonymous', id: null },
        action: 'auth.sign_up_refused',
        outcome: 'failure',
        ip: context.ip,
        userAgent: context.userAgent,
        detail: { reason: 'taken' },
      });
      return;
    }
    const created = this.deps.users.create({
      username: body.username,
      email,
      displayName: null,
      role: 'member',
      active: false,
    });
    this.deps.db.prepare('UPDATE users SET pending_approval = 1 WHERE id = ?').run(created.id);
    await this.ensureAuthUser(created.id);
    await this.setPassword(created.id, body.password, passwordHash);
    this.deps.audit.record({
      actor: { type: 'anonymous', id: null },
      action: 'auth.signed_up',
      target: created.id,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { method: 'password' },
    });
  }

  private async setPassword(userId: string, password: string, hashed?: string): Promise<void> {
    const context = await (await this.auth()).$context;
    const hash = hashed ?? (await context.password.hash(password));
    const account = await context.adapter.findOne<{ id: string }>({
      model: 'account',
      where: [
        { field: 'userId', value: userId },
        { field: 'providerId', value: 'credential' },
      ],
    });
    const at = new Date(this.now());
    if (account)
      await context.adapter.update({
        model: 'account',
        where: [{ field: 'id', value: account.id }],
        update: { password: hash, updatedAt: at },
      });
    else
      await context.adapter.create({
        model: 'account',
        data: { userId, providerId: 'credential', accountId: userId, password: hash, createdAt: at, updatedAt: at },
      });
  }

  /**
   * TOTP replay guard (RFC 6238 5.2): the time-step the accepted `code` belongs to must come after the last step this
   * user had accepted, else false. Kept in auth_throttle as `totp-step:<userId>` (failures = the step number), so it
   * survives a restart; updated with one conditional upsert, so two requests with the same code cannot both pass.
   */
  /** Whether `code` is one of the user's unused backup codes (better-auth keeps them encrypted, as JSON). */
  private async backupCodeMatches(userId: string, code: string): Promise<boolean> {
    const row = this.deps.db.prepare('SELECT backupCodes FROM auth_two_factor WHERE userId = ?').get(userId) as
      { backupCodes: string } | undefined;
    if (!row) return false;
    const context = await (await this.auth()).$context;
    try {
      const codes: unknown = JSON.parse(
        await symmetricDecrypt({
          key: context.secretConfig,
          data: row.backupCodes,
        }),
      );
      const given = Buffer.from(code);
      return (
        Array.isArray(codes) &&
        codes.some((c) => typeof c === 'string' && c.length === code.length && timingSafeEqual(Buffer.from(c), given))
      );
    } catch {
      return false;
    }
  }

  private async claimTotpStep(userId: string, code: string): Promise<boolean> {
    const row = this.deps.db.prepare('SELECT secret FROM auth_two_factor WHERE userId = ?').get(userId) as
      { secret: string } | undefined;
    if (!row) return true;
    const context = await (await this.auth()).$context;
    const secret = await symmetricDecrypt({
      key: context.secretConfig,
      data: row.secret,
    });
    // Imported `base32:` secrets are never made here (enrolment generates them); their key is the decoded bytes.
    if (secret.startsWith('base32:')) return true;
    const key = Buffer.from(secret, 'utf8');
    // better-auth checks against the real clock, so the step is found on it too.
    const current = Math.floor(Date.now() / TOTP_PERIOD_MS);
    let step: number | null = null;
    for (let candidate = current + 1; candidate >= current - 1 && step === null; candidate -= 1)
      if (hotp(key, candidate) === code) step = candidate;
    if (step === null) return false;
    const claimed = this.deps.db
      .prepare(
        `INSERT INTO auth_throttle (subject, failures, last_failure_at, blocked_until, locked) VALUES (?, ?, ?, NULL, 0)
         ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at
         WHERE auth_throttle.failures < excluded.failures`,
      )
      .run(`totp-step:${userId}`, step, new Date(this.now()).toISOString()).changes;
    return claimed === 1;
  }

  // ------------------------------------------------------------------ sessions

  async sessionByToken(token: string): Promise<SessionRecord | null> {
    const context = await (await this.auth()).$context;
    return context.adapter.findOne<SessionRecord>({ model: 'session', where: [{ field: 'token', value: token }] });
  }

  private async sessionsOf(userId: string): Promise<SessionRecord[]> {
    const context = await (await this.auth()).$context;
    return context.adapter.findMany<SessionRecord>({ model: 'session', where: [{ field: 'userId', value: userId }] });
  }

  /** The earlier of idle and absolute expiry. */
  sessionEnd(session: Pick<SessionRecord, 'createdAt' | 'expiresAt'>): number {
    const absolute = toDate(session.createdAt).getTime() + this.settings.get().sessionAbsoluteHours * HOUR_MS;
    return Math.min(absolute, toDate(session.expiresAt).getTime());
  }

  csrfToken(sessionId: string): string {
    return createHmac('sha256', this.secrets.derivedKey('csrf')).update(sessionId).digest('base64url');
  }

  csrfMatches(sessionId: string, presented: string | undefined): boolean {
    if (typeof presented !== 'string') return false;
    const expected = Buffer.from(this.csrfToken(sessionId));
    const given = Buffer.from(presented);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  sessionUser(userId: string): SessionUser {
    const user = this.agentUser(userId)!;
    const twoFactor = this.deps.db.prepare('SELECT twoFactorEnabled FROM auth_user WHERE id = ?').get(userId) as
      { twoFactorEnabled: number | null } | undefined;
    return {
      id: user.id,
      username: user.username,
      email: user.email,
      displayName: user.display_name,
      twoFactorEnabled: twoFactor?.twoFactorEnabled === 1,
      githubLinked: this.githubIdOf(userId) !== null,
    };
  }

  signedIn(session: SessionRecord): SignedInResult {
    return {
      user: this.sessionUser(session.userId),
      csrfToken: this.csrfToken(session.id),
      expiresAt: new Date(this.sessionEnd(session)).toISOString(),
    };
  }

  onSessionsEnded(listener: (sessionIds: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Deletes sessions and tells listeners (open terminals close). */
  endSessions(ids: string[]): number {
    if (ids.length === 0) return 0;
    const remove = this.deps.db.prepare('DELETE FROM auth_session WHERE id = ?');
    let ended = 0;
    const gone: string[] = [];
    this.deps.db.transaction(() => {
      for (const id of ids) {
        if (remove.run(id).changes > 0) {
          ended += 1;
          gone.push(id);
        }
      }
    })();
    this.tellEnded(gone);
    return ended;
  }

  private tellEnded(ids: string[]): void {
    if (ids.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(ids);
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'a session-end listener failed');
      }
    }
  }

  endUserSessions(userId: string, except?: string): number {
    const ids = (
      this.deps.db.prepare('SELECT id FROM auth_session WHERE userId = ?').all(userId) as Array<{ id: string }>
    )
      .map((r) => r.id)
      .filter((id) => id !== except);
    return this.endSessions(ids);
  }

  /** Removes sessions past their idle or absolute end (the guard also refuses them on sight). */
  sweepExpired(): number {
    const rows = this.deps.db.prepare('SELECT id, createdAt, expiresAt FROM auth_session').all() as Array<{
      id: string;
      createdAt: string | number;
      expiresAt: string | number;
    }>;
    const now = this.now();
    return this.endSessions(
      rows
        .filter((r) => this.sessionEnd({ createdAt: new Date(r.createdAt), expiresAt: new Date(r.expiresAt) }) <= now)
        .map((r) => r.id),
    );
  }

  start(intervalMs = 60_000): void {
    if (this.sweeper) return;
    // Made (or its folder tightened to 0700) at start, not at the first sign-in.
    this.secrets.secret();
    this.sweeper = setInterval(() => {
      try {
        this.sweepExpired();
        this.throttle.prune();
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'sweeping expired sessions failed');
      }
    }, intervalMs);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  async signOut(caller: { userId: string; sessionId: string }, context: RequestContext): Promise<CookieHeaders> {
    const auth = await this.auth();
    let cookies: CookieHeaders = [];
    try {
      const answer = (await auth.api.signOut({ headers: this.headersOf(context), returnHeaders: true })) as {
        headers: Headers;
      };
      cookies = this.forwardCookies(answer.headers);
    } catch {
      // The session is ended below either way.
    }
    // better-auth's signOut removed the row already (its delete hook told the listeners); this catches a failed one.
    this.endSessions([caller.sessionId]);
    this.deps.audit.record({
      actor: { type: 'user', id: caller.userId },
      action: 'auth.sign_out',
      target: caller.userId,
      ip: context.ip,
      userAgent: context.userAgent,
    });
    return cookies.length > 0 ? cookies : [this.clearCookie()];
  }

  clearCookie(): string {
    return `${this.cookieName}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax${this.deps.secureCookie ? '; Secure' : ''}`;
  }

  signOutEverywhere(caller: { userId: string }, context: RequestContext): number {
    const ended = this.endUserSessions(caller.userId);
    this.deps.audit.record({
      actor: { type: 'user', id: caller.userId },
      action: 'session.revoked',
      target: caller.userId,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { sessions: ended, by: 'user' },
    });
    return ended;
  }

  async listSessions(userId: string): Promise<UserSession[]> {
    this.requireUser(userId);
    const sessions = await this.sessionsOf(userId);
    const now = this.now();
    return sessions
      .filter((s) => this.sessionEnd(s) > now)
      .sort((a, b) => toDate(b.createdAt).getTime() - toDate(a.createdAt).getTime())
      .map((s) => ({
        id: s.id,
        createdAt: toDate(s.createdAt).toISOString(),
        lastSeenAt: toDate(s.updatedAt).toISOString(),
        expiresAt: new Date(this.sessionEnd(s)).toISOString(),
        ipAddress: s.ipAddress ?? null,
        userAgent: s.userAgent ?? null,
      }));
  }

  revokeSession(userId: string, sessionId: string, actor: AuditActor): number {
    this.requireUser(userId);
    const row = this.deps.db.prepare('SELECT id FROM auth_session WHERE id = ? AND userId = ?').get(sessionId, userId);
    if (!row)
      throw new AppError(
        AgentErrorCode.AUTH_SESSION_NOT_FOUND,
        404,
        `User ${userId} has no session ${sessionId}. List them with GET /api/v1/users/${userId}/sessions.`,
      );
    const ended = this.endSessions([sessionId]);
    this.deps.audit.record({ actor, action: 'session.revoked', target: userId, detail: { session: sessionId } });
    return ended;
  }

  revokeAllSessions(userId: string, actor: AuditActor): number {
    this.requireUser(userId);
    const ended = this.endUserSessions(userId);
    this.deps.audit.record({ actor, action: 'session.revoked', target: userId, detail: { sessions: ended } });
    return ended;
  }

  private requireUser(userId: string): AgentUserRow {
    const user = this.agentUser(userId);
    if (!user || user.deleted_at !== null) throw this.userNotFound(userId);
    return user;
  }

  /** Users service: a user changed (disabled, renamed, new email) or was deleted. */
  async userChanged(userId: string): Promise<void> {
    const user = this.agentUser(userId);
    if (!user || user.deleted_at !== null) {
      this.endUserSessions(userId);
      // Its accounts, two-factor and sessions go with it (the agent user's row stays for the usage history).
      this.deps.db.prepare('DELETE FROM auth_user WHERE id = ?').run(userId);
      return;
    }
    if (!user.active || user.pending_approval) this.endUserSessions(userId);
    if (this.deps.db.prepare('SELECT 1 FROM auth_user WHERE id = ?').get(userId)) await this.ensureAuthUser(userId);
  }

  // ------------------------------------------------------------------ password and two-factor

  private async withPassword<T>(
    caller: { userId: string },
    context: RequestContext,
    run: () => Promise<T>,
  ): Promise<T> {
    const subject = `user:${caller.userId}`;
    this.throttle.check(subject, context.ip);
    try {
      return await run();
    } catch (error) {
      if (isAPIError(error) && /PASSWORD/i.test(String((error.body as { code?: string } | undefined)?.code))) {
        this.throttle.failure(subject, context.ip);
        throw new AppError(
          AgentErrorCode.AUTH_CREDENTIALS_INVALID,
          400,
          'The password is wrong. Enter your current password.',
        );
      }
      throw error;
    }
  }

  async changePassword(
    caller: { userId: string; sessionId: string },
    body: { currentPassword: string; newPassword: string },
    context: RequestContext,
  ): Promise<void> {
    const user = this.requireUser(caller.userId);
    checkPassword(body.newPassword, user);
    const auth = await this.auth();
    await this.withPassword(caller, context, () =>
      auth.api.changePassword({ body: { ...body, revokeOtherSessions: false }, headers: this.headersOf(context) }),
    );
    // Other devices sign in again with the new password; this one stays (its CSRF token too).
    const ended = this.endUserSessions(caller.userId, caller.sessionId);
    this.deps.audit.record({
      actor: { type: 'user', id: caller.userId },
      action: 'auth.password_changed',
      target: caller.userId,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { otherSessionsEnded: ended },
    });
  }

  async enrollTwoFactor(
    caller: { userId: string },
    password: string,
    context: RequestContext,
  ): Promise<{ totpUri: string; backupCodes: string[] }> {
    const auth = await this.auth();
    const answer = await this.withPassword(caller, context, () =>
      auth.api.enableTwoFactor({ body: { password }, headers: this.headersOf(context) }),
    );
    const result = answer as { totpURI: string; backupCodes: string[] };
    // The app shows the account by its label: the username, not the sign-in record's (maybe placeholder) email.
    const label = encodeURIComponent(`Slotdeck:${this.requireUser(caller.userId).username}`);
    return {
      totpUri: result.totpURI.replace(/^otpauth:\/\/totp\/[^?]*/, `otpauth://totp/${label}`),
      backupCodes: result.backupCodes,
    };
  }

  /** Turns two-factor on with a code; better-auth replaces the session (new cookie, new CSRF token). */
  /** better-auth replaced the session: the new one's CSRF token (from the cookie it set), else the old one's. */
  private async rotatedCsrf(cookies: CookieHeaders, sessionId: string): Promise<string> {
    const cookie = cookies.find((c) => c.startsWith(`${this.cookieName}=`) && !/Max-Age=0\b/i.test(c));
    const session = cookie ? await this.sessionFromCookie(cookie) : null;
    return this.csrfToken(session?.id ?? sessionId);
  }

  async confirmTwoFactor(
    caller: { userId: string; sessionId: string },
    code: string,
    context: RequestContext,
  ): Promise<{ result: { enabled: boolean; csrfToken: string }; cookies: CookieHeaders }> {
    const auth = await this.auth();
    let answer: { headers: Headers; response: { token: string } };
    try {
      answer = await auth.api.verifyTOTP({
        body: { code },
        headers: this.headersOf(context),
        returnHeaders: true,
      });
    } catch (error) {
      throw this.mapError(
        error,
        new AppError(
          AgentErrorCode.AUTH_TWO_FACTOR_INVALID,
          400,
          'The code is wrong. Enter the current 6-digit code from your app (check the phone clock).',
        ),
      );
    }
    // The code that turned two-factor on cannot then finish a sign-in.
    await this.claimTotpStep(caller.userId, code);
    const cookies = this.forwardCookies(answer.headers);
    this.deps.audit.record({
      actor: { type: 'user', id: caller.userId },
      action: 'auth.two_factor_enabled',
      target: caller.userId,
      ip: context.ip,
      userAgent: context.userAgent,
    });
    return { result: { enabled: true, csrfToken: await this.rotatedCsrf(cookies, caller.sessionId) }, cookies };
  }

  async disableTwoFactor(
    caller: { userId: string; sessionId: string },
    password: string,
    code: string,
    context: RequestContext,
  ): Promise<{ result: { enabled: boolean; csrfToken: string }; cookies: CookieHeaders }> {
    const auth = await this.auth();
    // The code first (its failures count against the account like a wrong password), then better-auth's password.
    const subject = `user:${caller.userId}`;
    this.throttle.check(subject, context.ip);
    const codeOk = /^\d{6}$/.test(code)
      ? await this.claimTotpStep(caller.userId, code)
      : await this.backupCodeMatches(caller.userId, code);
    if (!codeOk) {
      this.throttle.failure(subject, context.ip);
      throw new AppError(
        AgentErrorCode.AUTH_TWO_FACTOR_INVALID,
        400,
        'The code is wrong or was used already. Enter the current 6-digit code from your app, or a backup code.',
      );
    }
    const answer = (await this.withPassword(caller, context, () =>
      auth.api.disableTwoFactor({ body: { password }, headers: this.headersOf(context), returnHeaders: true }),
    )) as { headers: Headers };
    const cookies = this.forwardCookies(answer.headers);
    this.deps.audit.record({
      actor: { type: 'user', id: caller.userId },
      action: 'auth.two_factor_disabled',
      target: caller.userId,
      ip: context.ip,
      userAgent: context.userAgent,
    });
    return { result: { enabled: false, csrfToken: await this.rotatedCsrf(cookies, caller.sessionId) }, cookies };
  }

  // ------------------------------------------------------------------ invites

  createInvite(userId: string, hours: number, actor: AuditActor): CreatedInvite {
    this.requireUser(userId);
    const token = randomBytes(32).toString('base64url');
    const id = `inv_${randomBytes(8).toString('hex')}`;
    const createdAt = new Date(this.now()).toISOString();
    const expiresAt = new Date(this.now() + hours * HOUR_MS).toISOString();
    this.deps.db
      .prepare('INSERT INTO auth_invites (id, user_id, token_sha256, expires_at, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, userId, sha256(token), expiresAt, createdAt);
    this.deps.audit.record({ actor, action: 'auth.invite_created', target: userId, detail: { invite: id, hours } });
    return { invite: { id, userId, expiresAt, createdAt }, link: `${this.baseUrl()}/invite/${token}` };
  }

  private inviteRow(token: string) {
    const row = this.deps.db
      .prepare('SELECT id, user_id, expires_at, used_at FROM auth_invites WHERE token_sha256 = ?')
      .get(sha256(token)) as { id: string; user_id: string; expires_at: string; used_at: string | null } | undefined;
    const user = row ? this.agentUser(row.user_id) : undefined;
    if (!row || row.used_at !== null || Date.parse(row.expires_at) <= this.now() || !user || user.deleted_at !== null)
      throw new AppError(
        AgentErrorCode.AUTH_INVITE_INVALID,
        410,
        'This invite link was used already, has expired, or is not complete. Ask your administrator for a new one.',
      );
    return { row, user };
  }

  inviteInfo(token: string, context: RequestContext): { username: string; expiresAt: string } {
    const subject = `invite:${context.ip ? addressKey(context.ip) : 'unknown'}`;
    this.throttle.check(subject, context.ip);
    try {
      const { row, user } = this.inviteRow(token);
      return { username: user.username, expiresAt: row.expires_at };
    } catch (error) {
      this.throttle.failure(subject, context.ip);
      throw error;
    }
  }

  async acceptInvite(
    token: string,
    password: string,
    context: RequestContext,
  ): Promise<{ result: SignedInResult; cookies: CookieHeaders }> {
    const subject = `invite:${context.ip ? addressKey(context.ip) : 'unknown'}`;
    this.throttle.check(subject, context.ip);
    let found;
    try {
      found = this.inviteRow(token);
    } catch (error) {
      this.throttle.failure(subject, context.ip);
      throw error;
    }
    const { row, user } = found;
    checkPassword(password, user);
    const problem = this.userProblem(user.id);
    if (problem) throw new AppError(problem.code as AgentErrorCode, 403, problem.message);
    // Single use even when two requests race: only one UPDATE finds it unused.
    const claimed = this.deps.db
      .prepare('UPDATE auth_invites SET used_at = ? WHERE id = ? AND used_at IS NULL')
      .run(new Date(this.now()).toISOString(), row.id).changes;
    if (claimed !== 1)
      throw new AppError(
        AgentErrorCode.AUTH_INVITE_INVALID,
        410,
        'This invite link was used already. Ask your administrator for a new one.',
      );
    await this.ensureAuthUser(user.id);
    await this.setPassword(user.id, password);
    // A new password: other sessions end, and a lockout is lifted.
    this.endUserSessions(user.id);
    this.throttle.unlock(`user:${user.id}`);
    this.deps.audit.record({
      actor: { type: 'user', id: user.id },
      action: 'auth.invite_used',
      target: user.id,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { invite: row.id },
    });
    this.deps.audit.record({
      actor: { type: 'user', id: user.id },
      action: 'auth.password_changed',
      target: user.id,
      ip: context.ip,
      userAgent: context.userAgent,
      detail: { via: 'invite' },
    });
    return this.signIn(user.username, password, context);
  }

  // ------------------------------------------------------------------ GitHub

  private githubNotConfigured(): AppError {
    return new AppError(
      AgentErrorCode.AUTH_GITHUB_NOT_CONFIGURED,
      409,
      'GitHub sign-in is not set up on this server. Sign in with your password, or ask your administrator.',
    );
  }

  /** The GitHub authorize URL to navigate to (state kept by better-auth, its cookie forwarded). */
  async githubStart(
    mode: 'sign-in' | 'link',
    returnTo: string,
    context: RequestContext,
  ): Promise<{ url: string; cookies: CookieHeaders }> {
    if (!this.githubEnabled()) throw this.githubNotConfigured();
    const auth = await this.auth();
    const errorCallbackURL = mode === 'link' ? '/settings' : '/sign-in';
    try {
      const answer = (mode === 'link'
        ? await auth.api.linkSocialAccount({
            body: { provider: 'github', callbackURL: returnTo, errorCallbackURL, disableRedirect: true },
            headers: this.headersOf(context),
            returnHeaders: true,
          })
        : await auth.api.signInSocial({
            body: {
              provider: 'github',
              callbackURL: returnTo,
              errorCallbackURL,
              disableRedirect: true,
              requestSignUp: this.settings.get().signUpEnabled,
            },
            headers: this.headersOf(context),
            returnHeaders: true,
          })) as unknown as { headers: Headers; response: { url?: string } };
      if (!answer.response.url) throw new Error('no authorize URL');
      return { url: answer.response.url, cookies: this.forwardCookies(answer.headers) };
    } catch (error) {
      if (error instanceof AppError) throw error;
      this.deps.logger.warn({ err: error }, 'starting GitHub sign-in failed');
      throw new AppError(
        AgentErrorCode.AUTH_GITHUB_FAILED,
        502,
        'GitHub sign-in could not start. Try again, or sign in with your password.',
      );
    }
  }

  /** Runs better-auth's callback; always ends on a portal path (with `error=CODE` when it failed). */
  async githubCallback(
    url: string,
    context: RequestContext,
    errors: Record<string, AgentErrorCode>,
  ): Promise<{ location: string; cookies: CookieHeaders }> {
    const fail = (code: string, path = '/sign-in') => ({
      location: `${path}?error=${encodeURIComponent(code)}`,
      cookies: [],
    });
    if (!this.githubEnabled()) return fail(AgentErrorCode.AUTH_GITHUB_NOT_CONFIGURED);
    const auth = await this.auth();
    let response: Response;
    try {
      response = await auth.handler(
        new Request(new URL(url, this.baseUrl()), { method: 'GET', headers: this.headersOf(context) }),
      );
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'the GitHub callback failed');
      return fail(AgentErrorCode.AUTH_GITHUB_FAILED);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const target = new URL(location, this.baseUrl());
      const error = target.searchParams.get('error');
      const path = target.origin === new URL(this.baseUrl()).origin ? target.pathname : '/';
      if (error) {
        const code = errors[error] ?? (HOOK_CODES.has(error) ? error : AgentErrorCode.AUTH_GITHUB_FAILED);
        this.auditGithubFailure(context, code);
        return fail(code, path === '/settings' ? '/settings' : '/sign-in');
      }
      const cookies = this.forwardCookies(response.headers);
      const token = cookies.find((c) => c.startsWith(`${this.cookieName}=`));
      if (token) {
        const session = await this.sessionFromCookie(token);
        // A link (mode 'link') keeps the caller's own session: only a new session from a sign-in needs the code.
        const tokenValue = token.slice(this.cookieName.length + 1).split(';')[0] ?? '';
        const newSession = !(tokenValue && context.cookie?.includes(`${this.cookieName}=${tokenValue}`));
        if (session && newSession && this.twoFactorOn(session.userId)) {
          // better-auth's two-factor check covers only password sign-in: a GitHub sign-in of a user with two-factor
          // on gets no session either, only the pending two-factor state that /two-factor/verify finishes.
          this.endSessions([session.id]);
          return {
            location: '/sign-in?step=two-factor',
            cookies: [
              this.clearCookie(),
              ...cookies.filter((c) => !c.startsWith(`${this.cookieName}=`)),
              await this.pendingTwoFactorCookie(session.userId),
            ],
          };
        }
        if (session)
          this.deps.audit.record({
            actor: { type: 'user', id: session.userId },
            action: 'auth.sign_in',
            target: session.userId,
            ip: context.ip,
            userAgent: context.userAgent,
            detail: { method: 'github' },
          });
      }
      return {
        location: target.origin === new URL(this.baseUrl()).origin ? `${target.pathname}${target.search}` : '/',
        cookies,
      };
    }
    // Errors our hooks threw (approval pending, disabled) come back as JSON.
    let code: string = AgentErrorCode.AUTH_GITHUB_FAILED;
    try {
      const body = (await response.json()) as { code?: string };
      if (body.code && HOOK_CODES.has(body.code)) code = errors[body.code] ?? body.code;
    } catch {
      // Not JSON.
    }
    this.auditGithubFailure(context, code);
    return fail(code);
  }

  /**
   * Anyone can call the callback with a made-up state: per address (IPv6 /64) the first few failures a day are
   * audited one by one, then one row per 100 (with the count), so a flood cannot fill the year-long audit log.
   */
  private auditGithubFailure(context: RequestContext, code: string): void {
    const subject = `callback:${context.ip ? addressKey(context.ip) : 'unknown'}`;
    this.throttle.failure(subject, null);
    const failures = this.throttle.state(subject).failures;
    if (failures > GITHUB_FAILURES_AUDITED && failures % 100 !== 0) return;
    this.deps.audit.record({
      actor: { type: 'anonymous', id: null },
      action: 'auth.sign_in_failed',
      outcome: 'failure',
      ip: context.ip,
      userAgent: context.userAgent,
      detail: {
        method: 'github',
        reason: code,
        ...(failures > GITHUB_FAILURES_AUDITED ? { failuresToday: failures } : {}),
      },
    });
  }

  private twoFactorOn(userId: string): boolean {
    const row = this.deps.db.prepare('SELECT twoFactorEnabled FROM auth_user WHERE id = ?').get(userId) as
      { twoFactorEnabled: number | null } | undefined;
    return row?.twoFactorEnabled === 1;
  }

  /**
   * The same pending state better-auth's two-factor plugin makes after a password (a verification row naming the
   * user, its attempt counter, and its signed `two_factor` cookie), so /two-factor/verify finishes a GitHub sign-in.
   */
  private async pendingTwoFactorCookie(userId: string): Promise<string> {
    const context = await (await this.auth()).$context;
    const identifier = `2fa-${randomBytes(15).toString('base64url')}`;
    const expiresAt = new Date(Date.now() + TWO_FACTOR_PENDING_SECONDS * 1000);
    await context.internalAdapter.createVerificationValue({ value: userId, identifier, expiresAt });
    await context.internalAdapter.createVerificationValue({
      value: '0',
      identifier: `2fa-attempts-${identifier}`,
      expiresAt,
    });
    const cookie = context.createAuthCookie('two_factor', { maxAge: TWO_FACTOR_PENDING_SECONDS });
    // better-call's signed cookie: value.HMAC-SHA256(secret, value) in base64, URI-encoded.
    const signature = createHmac('sha256', context.secret).update(identifier).digest('base64');
    const value = encodeURIComponent(`${identifier}.${signature}`);
    return `${cookie.name}=${value}; Max-Age=${TWO_FACTOR_PENDING_SECONDS}; Path=/; HttpOnly; SameSite=Lax${this.deps.secureCookie ? '; Secure' : ''}`;
  }

  private async sessionFromCookie(setCookie: string): Promise<SessionRecord | null> {
    const value = decodeURIComponent(setCookie.slice(this.cookieName.length + 1).split(';')[0] ?? '');
    const token = value.split('.')[0] ?? '';
    return token ? this.sessionByToken(token) : null;
  }

  sessionRow(sessionId: string): { createdAt: Date; expiresAt: Date } | null {
    const row = this.deps.db.prepare('SELECT createdAt, expiresAt FROM auth_session WHERE id = ?').get(sessionId) as
      { createdAt: string; expiresAt: string } | undefined;
    return row ? { createdAt: new Date(row.createdAt), expiresAt: new Date(row.expiresAt) } : null;
  }

  clock(): number {
    return this.now();
  }

  // ------------------------------------------------------------------ admin

  githubIdOf(userId: string): number | null {
    const row = this.deps.db
      .prepare("SELECT accountId FROM auth_account WHERE userId = ? AND providerId = 'github'")
      .get(userId) as { accountId: string } | undefined;
    return row ? Number(row.accountId) : null;
  }

  signInStatus(userId: string): SignInStatus {
    const user = this.requireUser(userId);
    const throttle = this.throttle.state(`user:${userId}`);
    const count = (sql: string): number => (this.deps.db.prepare(sql).get(userId) as { n: number }).n;
    const twoFactor = this.deps.db.prepare('SELECT twoFactorEnabled FROM auth_user WHERE id = ?').get(userId) as
      { twoFactorEnabled: number | null } | undefined;
    const now = this.now();
    const sessions = this.deps.db
      .prepare('SELECT createdAt, expiresAt FROM auth_session WHERE userId = ?')
      .all(userId) as Array<{ createdAt: string; expiresAt: string }>;
    return {
      userId,
      hasPassword:
        count(
          "SELECT COUNT(*) AS n FROM auth_account WHERE userId = ? AND providerId = 'credential' AND password IS NOT NULL",
        ) > 0,
      twoFactorEnabled: twoFactor?.twoFactorEnabled === 1,
      githubId: this.githubIdOf(userId),
      pendingApproval: user.pending_approval === 1,
      locked: throttle.locked,
      failures: throttle.failures,
      activeSessions: sessions.filter(
        (s) => this.sessionEnd({ createdAt: new Date(s.createdAt), expiresAt: new Date(s.expiresAt) }) > now,
      ).length,
      pendingInvites: (
        this.deps.db
          .prepare('SELECT COUNT(*) AS n FROM auth_invites WHERE user_id = ? AND used_at IS NULL AND expires_at > ?')
          .get(userId, new Date(now).toISOString()) as { n: number }
      ).n,
    };
  }

  unlock(userId: string, actor: AuditActor): SignInStatus {
    this.requireUser(userId);
    this.throttle.unlock(`user:${userId}`);
    this.deps.audit.record({ actor, action: 'auth.unlocked', target: userId });
    return this.signInStatus(userId);
  }

  approve(userId: string, actor: AuditActor): void {
    const user = this.requireUser(userId);
    if (user.pending_approval) this.deps.users.update(userId, { active: true });
    this.deps.db.prepare('UPDATE users SET pending_approval = 0 WHERE id = ?').run(userId);
    this.deps.audit.record({ actor, action: 'user.approved', target: userId });
  }

  async linkGithub(userId: string, githubId: number, actor: AuditActor): Promise<SignInStatus> {
    this.requireUser(userId);
    const owner = this.deps.db
      .prepare("SELECT userId FROM auth_account WHERE providerId = 'github' AND accountId = ?")
      .get(String(githubId)) as { userId: string } | undefined;
    if (owner && owner.userId !== userId)
      throw new AppError(
        AgentErrorCode.AUTH_GITHUB_TAKEN,
        409,
        `GitHub account ${githubId} is linked to another user. Unlink it there first.`,
      );
    if (!owner) {
      await this.ensureAuthUser(userId);
      this.deps.db.prepare("DELETE FROM auth_account WHERE userId = ? AND providerId = 'github'").run(userId);
      const context = await (await this.auth()).$context;
      const at = new Date(this.now());
      await context.adapter.create({
        model: 'account',
        data: { userId, providerId: 'github', accountId: String(githubId), createdAt: at, updatedAt: at },
      });
      this.deps.audit.record({ actor, action: 'auth.github_linked', target: userId, detail: { githubId } });
    }
    return this.signInStatus(userId);
  }

  unlinkGithub(userId: string, actor: AuditActor): SignInStatus {
    this.requireUser(userId);
    const removed = this.deps.db
      .prepare("DELETE FROM auth_account WHERE userId = ? AND providerId = 'github'")
      .run(userId).changes;
    if (removed > 0) this.deps.audit.record({ actor, action: 'auth.github_unlinked', target: userId });
    return this.signInStatus(userId);
  }

  settingsView(): AuthSettings {
    const s: StoredAuthSettings = this.settings.get();
    const secretConfigured = this.githubSecret() !== null;
    return {
      signUpEnabled: s.signUpEnabled,
      sessionIdleMinutes: s.sessionIdleMinutes,
      sessionAbsoluteHours: s.sessionAbsoluteHours,
      portalKeyLimit: s.portalKeyLimit,
      portalKeyScopes: s.portalKeyScopes,
      ownersMayShare: s.ownersMayShare,
      github: {
        clientId: s.github.clientId,
        secretConfigured,
        enabled: s.github.enabled && s.github.clientId !== null && secretConfigured,
        callbackUrl: `${this.baseUrl()}${GITHUB_CALLBACK_PATH}`,
      },
      publicUrl: this.deps.publicUrl(),
    };
  }

  githubEnabled(): boolean {
    return this.settingsView().github.enabled;
  }
}

/** RFC 4226 HOTP (SHA-1, 6 digits) of one counter. */
function hotp(key: Buffer, counter: number): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(message).digest();
  const offset = mac[mac.length - 1]! & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

export type SignedInResult = { user: SessionUser; csrfToken: string; expiresAt: string } | { twoFactorRequired: true };

export { githubPlaceholderEmail, AUTH_MODELS };
