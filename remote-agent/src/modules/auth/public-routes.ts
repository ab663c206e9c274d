import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  AcceptInviteBody,
  AgentErrorCode,
  ChangePasswordBody,
  GITHUB_CALLBACK_PATH,
  GithubStartBody,
  InviteTokenParams,
  DisableTwoFactorBody,
  PasswordBody,
  publicAuthApi,
  SignInBody,
  SignUpBody,
  VerifyTwoFactorBody,
  type SessionInfo,
} from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { toIssues } from '../../http/route.js';
import { sameOriginRequest } from '../site/site.js';
import { requestContext, type SessionGuard } from './guard.js';
import type { AuthService, CookieHeaders, SignedInResult } from './service.js';
import { ThrottledError } from './throttle.js';

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = toIssues(where, result.error);
  throw new AppError(
    AgentErrorCode.VALIDATION_FAILED,
    400,
    `Invalid request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
    issues,
  );
}

function noStore(reply: FastifyReply, cookies: CookieHeaders = []): FastifyReply {
  reply.header('cache-control', 'no-store');
  if (cookies.length > 0) reply.header('set-cookie', cookies);
  return reply;
}

/** A sign-in that must not start from another site's page (login CSRF): a browser's cross-site POST is refused. */
function requireSameSite(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  const origin = request.headers.origin;
  if (
    (site !== undefined && site !== 'same-origin' && site !== 'none') ||
    (origin !== undefined && !sameOriginRequest(request))
  )
    throw new AppError(AgentErrorCode.AUTH_CSRF_REFUSED, 403, 'Sign in from the portal page itself.');
}

/** Sets Retry-After on throttled answers before the error handler writes them. */
async function guarded<T>(reply: FastifyReply, run: () => Promise<T> | T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ThrottledError) reply.header('retry-after', String(error.retryAfterSeconds));
    throw error;
  }
}

function signedInOrTwoFactor(reply: FastifyReply, answer: { result: SignedInResult; cookies: CookieHeaders }) {
  noStore(reply, answer.cookies);
  if ('twoFactorRequired' in answer.result)
    throw new AppError(
      AgentErrorCode.AUTH_TWO_FACTOR_REQUIRED,
      401,
      'Enter the 6-digit code from your authenticator app (or a backup code) to finish signing in.',
    );
  return answer.result;
}

const GITHUB_ERRORS: Record<string, AgentErrorCode> = {
  account_not_linked: AgentErrorCode.AUTH_GITHUB_NOT_LINKED,
  'account not linked': AgentErrorCode.AUTH_GITHUB_NOT_LINKED,
  signup_disabled: AgentErrorCode.AUTH_GITHUB_NOT_LINKED,
  account_already_linked_to_different_user: AgentErrorCode.AUTH_GITHUB_TAKEN,
  // Our user hook's refusal when sign-up is off: to the person, their GitHub account is simply not linked.
  [AgentErrorCode.AUTH_SIGNUP_DISABLED]: AgentErrorCode.AUTH_GITHUB_NOT_LINKED,
};

/** Sign-in routes of the public site (/api/public/auth/*). Answers carry no better-auth shapes and no tokens. */
export function registerAuthPublicRoutes(
  site: FastifyInstance,
  deps: { service: AuthService; guard: SessionGuard },
): void {
  const { service, guard } = deps;
  const api = publicAuthApi;

  site.get(api.session.path, async (request, reply): Promise<SessionInfo> => {
    const caller = await guard.caller(request);
    noStore(reply);
    const githubEnabled = service.githubEnabled();
    const signUpEnabled = service.settings.get().signUpEnabled;
    if (!caller) return { user: null, csrfToken: null, expiresAt: null, signUpEnabled, githubEnabled };
    const row = service.sessionRow(caller.sessionId);
    return {
      user: service.sessionUser(caller.userId),
      csrfToken: service.csrfToken(caller.sessionId),
      expiresAt: row ? new Date(service.sessionEnd(row)).toISOString() : null,
      signUpEnabled,
      githubEnabled,
    };
  });

  site.post(api.signIn.path, async (request, reply) => {
    const body = parse(SignInBody, request.body, 'body');
    requireSameSite(request);
    return guarded(reply, async () =>
      signedInOrTwoFactor(reply, await service.signIn(body.login, body.password, requestContext(request))),
    );
  });

  site.post(api.verifyTwoFactor.path, async (request, reply) => {
    const body = parse(VerifyTwoFactorBody, request.body, 'body');
    requireSameSite(request);
    return guarded(reply, async () =>
      signedInOrTwoFactor(reply, await service.verifyTwoFactor(body.code, requestContext(request))),
    );
  });

  site.post(api.signUp.path, async (request, reply) => {
    const body = parse(SignUpBody, request.body, 'body');
    requireSameSite(request);
    await guarded(reply, () => service.signUp(body, requestContext(request)));
    noStore(reply).status(202);
    return { pendingApproval: true as const };
  });

  site.post(api.signOut.path, async (request, reply) => {
    const caller = await guard.require(request);
    noStore(reply, await service.signOut(caller, requestContext(request)));
    return { ok: true as const };
  });

  site.post(api.signOutEverywhere.path, async (request, reply) => {
    const caller = await guard.require(request);
    const ended = service.signOutEverywhere(caller, requestContext(request));
    noStore(reply, [service.clearCookie()]);
    return { ended };
  });

  site.get(api.inviteInfo.path, async (request, reply) => {
    const params = parse(InviteTokenParams, request.params, 'params');
    noStore(reply);
    return guarded(reply, () => service.inviteInfo(params.token, requestContext(request)));
  });

  site.post(api.acceptInvite.path, async (request, reply) => {
    const body = parse(AcceptInviteBody, request.body, 'body');
    requireSameSite(request);
    return guarded(reply, async () =>
      signedInOrTwoFactor(reply, await service.acceptInvite(body.token, body.password, requestContext(request))),
    );
  });

  site.post(api.changePassword.path, async (request, reply) => {
    const caller = await guard.require(request);
    const body = parse(ChangePasswordBody, request.body, 'body');
    await guarded(reply, () => service.changePassword(caller, body, requestContext(request)));
    noStore(reply);
    return { ok: true as const };
  });

  site.post(api.enrollTwoFactor.path, async (request, reply) => {
    const caller = await guard.require(request);
    const body = parse(PasswordBody, request.body, 'body');
    const enrollment = await guarded(reply, () =>
      service.enrollTwoFactor(caller, body.password, requestContext(request)),
    );
    noStore(reply);
    return enrollment;
  });

  site.post(api.confirmTwoFactor.path, async (request, reply) => {
    const caller = await guard.require(request);
    const body = parse(VerifyTwoFactorBody, request.body, 'body');
    const answer = await service.confirmTwoFactor(caller, body.code, requestContext(request));
    noStore(reply, answer.cookies);
    return answer.result;
  });

  site.post(api.disableTwoFactor.path, async (request, reply) => {
    const caller = await guard.require(request);
    const body = parse(DisableTwoFactorBody, request.body, 'body');
    const answer = await guarded(reply, () =>
      service.disableTwoFactor(caller, body.password, body.code, requestContext(request)),
    );
    noStore(reply, answer.cookies);
    return answer.result;
  });

  site.post(api.githubSignIn.path, async (request, reply) => {
    const body = parse(GithubStartBody, request.body, 'body');
    requireSameSite(request);
    const answer = await service.githubStart('sign-in', body.returnTo, requestContext(request));
    noStore(reply, answer.cookies);
    return { url: answer.url };
  });

  site.post(api.githubLink.path, async (request, reply) => {
    await guard.require(request);
    const body = parse(GithubStartBody, request.body, 'body');
    const answer = await service.githubStart('link', body.returnTo, requestContext(request));
    noStore(reply, answer.cookies);
    return { url: answer.url };
  });

  // GitHub sends the browser here: better-auth's own handler checks state and exchanges the code; the browser ends
  // on a portal page either way (`?error=CODE` when it failed).
  site.get(GITHUB_CALLBACK_PATH, async (request, reply) => {
    const { location, cookies } = await service.githubCallback(request.url, requestContext(request), GITHUB_ERRORS);
    noStore(reply, cookies);
    return reply.redirect(location, 302);
  });
}
