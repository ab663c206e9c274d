import { betterAuth, type BetterAuthOptions } from 'better-auth';
import { username } from 'better-auth/plugins/username';
import { twoFactor } from 'better-auth/plugins/two-factor';
// Named so that the inferred option and instance types can be emitted.
import type BetterSqlite3 from 'better-sqlite3';
import type { Db } from '../../db/database.js';
import { randomId } from '../../util/ids.js';
import { PUBLIC_AUTH_PREFIX } from '../../contract/index.js';

/** better-auth's table names: the agent's schema 5 (a unit test compares them with better-auth's own schema). */
export const AUTH_MODELS = {
  user: 'auth_user',
  session: 'auth_session',
  account: 'auth_account',
  verification: 'auth_verification',
  twoFactor: 'auth_two_factor',
} as const;

/** The request header our routes set to the peer's address (better-auth never reads a client's X-Forwarded-For). */
export const PEER_HEADER = 'x-slotdeck-peer';

export interface AuthInstanceOptions {
  db: Db;
  secret: string;
  /** The public origin end users open (better-auth's baseURL: callback URLs, trusted origin). */
  baseURL: string;
  cookieName: string;
  secureCookie: boolean;
  sessionIdleSeconds: number;
  github: { clientId: string; clientSecret: string; signUp: boolean } | null;
  hooks?: BetterAuthOptions['databaseHooks'];
  logger?: { warn(message: string): void; error(message: string): void };
}

/** The options of the agent's better-auth instance; `getMigrations` in the schema test takes exactly these. */
export function authOptions(options: AuthInstanceOptions) {
  const idle = options.sessionIdleSeconds;
  return {
    appName: 'Slotdeck',
    baseURL: options.baseURL,
    basePath: PUBLIC_AUTH_PREFIX,
    secret: options.secret,
    // The cast names better-sqlite3's type so the inferred option types can be emitted (TS4058).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    database: options.db as BetterSqlite3.Database,
    telemetry: { enabled: false },
    // Our own throttle (auth_throttle) answers for sign-in; better-auth's in-memory limiter would answer first.
    rateLimit: { enabled: false },
    trustedOrigins: [options.baseURL],
    emailAndPassword: {
      enabled: true,
      // Accounts are the agent's users: passwords come from invites, sign-ups from our own route.
      disableSignUp: true,
      minPasswordLength: 12,
      maxPasswordLength: 256,
      autoSignIn: false,
    },
    user: { modelName: AUTH_MODELS.user },
    session: {
      modelName: AUTH_MODELS.session,
      // Idle expiry: each use (at most once per updateAge) pushes expiresAt to now + idle. The absolute limit is the
      // guard's, from createdAt.
      expiresIn: idle,
      updateAge: Math.max(60, Math.floor(idle / 12)),
      cookieCache: { enabled: false },
    },
    account: {
      modelName: AUTH_MODELS.account,
      accountLinking: {
        enabled: true,
        // Linked only by GitHub's numeric id (an admin's link or the signed-in user's own), never by a matching email.
        disableImplicitLinking: true,
        allowDifferentEmails: true,
        trustedProviders: ['github'],
        updateUserInfoOnLink: false,
      },
      encryptOAuthTokens: true,
    },
    verification: { modelName: AUTH_MODELS.verification },
    socialProviders: options.github
      ? {
          github: {
            clientId: options.github.clientId,
            clientSecret: options.github.clientSecret,
            disableImplicitSignUp: !options.github.signUp,
            disableSignUp: !options.github.signUp,
          },
        }
      : {},
    plugins: [
      username(),
      twoFactor({
        issuer: 'Slotdeck',
        schema: { twoFactor: { modelName: AUTH_MODELS.twoFactor } },
      }),
    ],
    advanced: {
      useSecureCookies: false,
      // better-auth's other cookies (two-factor pending, OAuth state, session data) get `__Host-` like the session
      // one when cookies are Secure: no sibling subdomain can plant them (Secure, Path=/ and no Domain come below).
      cookiePrefix: options.secureCookie ? '__Host-slotdeck' : 'slotdeck',
      cookies: {
        session_token: { name: options.cookieName, attributes: { secure: options.secureCookie, sameSite: 'lax' } },
      },
      defaultCookieAttributes: { secure: options.secureCookie, sameSite: 'lax', httpOnly: true, path: '/' },
      ipAddress: { ipAddressHeaders: [PEER_HEADER] },
      database: {
        // A user's id is the agent user's (given by our hooks); everything else gets a random id.
        generateId: ({ model }: { model: string }) => `${model === 'session' ? 's' : 'a'}_${randomId(24)}`,
      },
    },
    databaseHooks: options.hooks ?? {},
    logger: {
      level: 'warn' as const,
      log: (level: 'info' | 'success' | 'warn' | 'error' | 'debug', message: string) => {
        if (level === 'error') options.logger?.error(`better-auth: ${message}`);
        else if (level === 'warn') options.logger?.warn(`better-auth: ${message}`);
      },
    },
  } satisfies BetterAuthOptions;
}

export function createAuth(options: AuthInstanceOptions) {
  return betterAuth(authOptions(options));
}
export type Auth = ReturnType<typeof createAuth>;
