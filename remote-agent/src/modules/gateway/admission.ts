import type { IncomingHttpHeaders } from 'node:http';
import { GatewayErrorCode, type KeyScope } from '../../contract/index.js';
import { DISPLAY_PREFIX_LENGTH } from '../users/keys.js';
import type { KeyRejection, VerifiedKey } from '../users/verifier.js';
import type { GatewayDeps, QuotaHold } from './deps.js';
import { GatewayError } from './errors.js';
import type { RateDecision } from './rate-limiter.js';
import { readTopLevelFields } from './request-fields.js';

/** Who is calling: a verified key, or (legacy mode) any key string attributed to one user. */
export interface Caller {
  userId: string;
  username: string;
  key: VerifiedKey | null;
  scopes: readonly KeyScope[];
  /** Rate-limit bucket: the key, or the legacy user. */
  subject: string;
  requestsPerMinute: number;
  concurrentStreams: number;
}

/** What a route asks of its caller before its body is read. */
export interface RouteGuard {
  /** Unset: no key needed (health checks). */
  scope?: KeyScope;
  /** Counted against the key's requests per minute. */
  rateLimited?: boolean;
}

/** A request that passed the checks made before its body is read. */
export interface Admission {
  caller: Caller;
  /** X-RateLimit-* of the caller's bucket: taken from on rate-limited routes, as it stands on the others. */
  limitHeaders: Record<string, string>;
  /** Once the body was read far enough to know it (for the request log). */
  model: string | null;
}

/**
 * Bytes of request body counted as one prompt token when a request's quota reservation is estimated. JSON text of
 * English or code runs at about 4 bytes a token or more (the body's own structure adds bytes, not tokens); images in
 * base64 at far more. A prompt with fewer bytes a token (CJK text) is under-estimated: see the bound in the docs.
 */
const BYTES_PER_ESTIMATED_TOKEN = 4;

/** What the gateway reads of a /v1/messages body; the rest is upstream's to judge. */
export interface MessagesRequest {
  model: string;
  stream: boolean;
  /** The most output tokens the answer may have (Anthropic never exceeds it); 0 when absent or not a number. */
  maxTokens: number;
}

/** A /v1/messages request that passed every check, with its stream slot and quota reservation to give back. */
export interface AdmittedMessage {
  caller: Caller;
  limitHeaders: Record<string, string>;
  request: MessagesRequest;
  body: Buffer;
  upstreamKey: string;
  releaseStream: (() => void) | null;
  hold: QuotaHold;
}

const REJECTION: Record<KeyRejection, GatewayErrorCode> = {
  missing: GatewayErrorCode.KEY_MISSING,
  malformed: GatewayErrorCode.KEY_MALFORMED,
  unknown: GatewayErrorCode.KEY_UNKNOWN,
  revoked: GatewayErrorCode.KEY_REVOKED,
  expired: GatewayErrorCode.KEY_EXPIRED,
  user_disabled: GatewayErrorCode.USER_DISABLED,
  user_deleted: GatewayErrorCode.USER_DELETED,
};

/** On a used-up quota's 429: when the quota resets (RFC 3339), instead of a Retry-After that clients would sleep on. */
export const QUOTA_RESET_HEADER = 'x-slotdeck-quota-reset';

export function keyFrom(headers: IncomingHttpHeaders): string | undefined {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey.trim();
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match) return match[1]!.trim();
  }
  return undefined;
}

export const rateHeaders = (decision: RateDecision): Record<string, string> => ({
  'x-ratelimit-limit': String(decision.limit),
  'x-ratelimit-remaining': String(decision.remaining),
  'x-ratelimit-reset': String(decision.resetAt),
});

/** A key's first characters, for the request log, when it was not recognised; none of a key too short to hide. */
export function visiblePrefix(raw: string | undefined): string | null {
  if (raw === undefined || raw.length < 2 * DISPLAY_PREFIX_LENGTH) return null;
  return raw.slice(0, DISPLAY_PREFIX_LENGTH);
}

/** Reads what the gateway needs (model, stream) from the request; everything else is upstream's to judge. */
function parseMessagesBody(body: Buffer | undefined, headers: Record<string, string>): MessagesRequest {
  const invalid = (message: string): GatewayError =>
    new GatewayError(400, 'invalid_request_error', GatewayErrorCode.BODY_INVALID, message, headers);
  if (!body || body.length === 0)
    throw invalid('Send a JSON body, e.g. {"model": "...", "max_tokens": 1024, "messages": [...]}.');
  let fields: { model?: unknown; stream?: unknown; max_tokens?: unknown } | null = readTopLevelFields(body, [
    'model',
    'stream',
    'max_tokens',
  ]);
  if (!fields) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw invalid(`The body is not valid JSON (${(error as Error).message}).`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw invalid('The body must be a JSON object.');
    fields = parsed;
  }
  const { model, stream, max_tokens: maxTokens } = fields;
  if (typeof model !== 'string' || model === '')
    throw invalid('model: is required (a model id such as claude-sonnet-4-6).');
  // As Anthropic does: `"stream": 1` or `"stream": "true"` is refused, not guessed at.
  if (stream !== undefined && typeof stream !== 'boolean')
    throw invalid(`stream: must be true or false (a JSON boolean), not ${JSON.stringify(stream)?.slice(0, 40)}.`);
  return {
    model,
    stream: stream === true,
    maxTokens: typeof maxTokens === 'number' && Number.isFinite(maxTokens) && maxTokens > 0 ? Math.ceil(maxTokens) : 0,
  };
}

/**
 * Who may go on, and what they may use: key, scope, rate, and (once the body is read) the body's few fields, quotas,
 * price, upstream key, stream slot and quota reservation. No Fastify and no I/O: every check is synchronous.
 */
export class Admissions {
  private readonly now: () => number;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
  }

  authenticate(headers: IncomingHttpHeaders): Caller {
    const raw = keyFrom(headers);
    const verified = this.deps.keys.verify(raw);
    const defaults = this.deps.settings.defaultRateLimit;
    if (verified.ok) {
      const { key } = verified;
      this.deps.keys.touch(key.keyId);
      return {
        userId: key.userId,
        username: key.username,
        key,
        scopes: key.scopes,
        subject: key.keyId,
        requestsPerMinute: key.rateLimit.requestsPerMinute ?? defaults.requestsPerMinute,
        concurrentStreams: key.rateLimit.concurrentStreams ?? defaults.concurrentStreams,
      };
    }
    const legacy = this.deps.settings.legacyMode;
    // Legacy mode accepts any key string, but not a Slotdeck key that was stopped on purpose (revoked, expired, or
    // of a disabled or deleted user): those must not come back in under the legacy user.
    const stopped = verified.reason !== 'missing' && verified.reason !== 'malformed' && verified.reason !== 'unknown';
    if (legacy.enabled && legacy.userId && raw && !stopped) {
      const user = this.deps.users.find(legacy.userId);
      if (user && user.active && !user.deleted) {
        return {
          userId: user.id,
          username: user.username,
          key: null,
          scopes: ['gateway', 'self'],
          subject: `legacy:${user.id}`,
          requestsPerMinute: defaults.requestsPerMinute,
          concurrentStreams: defaults.concurrentStreams,
        };
      }
    }
    throw new GatewayError(
      401,
      'authentication_error',
      REJECTION[verified.reason],
      verified.message,
      {},
      verified.keyId !== undefined && verified.userId !== undefined
        ? { userId: verified.userId, keyId: verified.keyId }
        : null,
    );
  }
  requireScope(caller: Caller, scope: KeyScope): void {
    if (caller.scopes.includes(scope)) return;
    const what = scope === 'gateway' ? 'call Claude through the gateway' : 'read its own usage and quotas';
    throw new GatewayError(
      403,
      'permission_error',
      GatewayErrorCode.SCOPE_MISSING,
      `This API key (${caller.key?.prefix ?? 'legacy'}…) lacks the "${scope}" scope, so it cannot ${what}. Ask your Slotdeck admin for a key with that scope.`,
    );
  }
  admit(caller: Caller): RateDecision {
    const decision = this.deps.limiter.take(caller.subject, caller.requestsPerMinute, this.now());
    if (!decision.allowed) {
      throw new GatewayError(
        429,
        'rate_limit_error',
        GatewayErrorCode.RATE_LIMITED,
        `Rate limit of ${decision.limit} requests per minute for this key reached. Retry in ${decision.retryAfterSeconds} s, or ask your admin for a higher limit.`,
        { ...rateHeaders(decision), 'retry-after': String(decision.retryAfterSeconds) },
      );
    }
    return decision;
  }
  /**
   * The checks of a /v1/messages request once its body is read: a valid body, quota, price, upstream key, a stream
   * slot, and the quota reservation. Nothing here awaits: check and reservation happen in one turn of the loop.
   */
  admitMessage(admission: Admission, body: Buffer | undefined): AdmittedMessage {
    const { caller, limitHeaders } = admission;
    this.checkStorage(limitHeaders);
    const request = parseMessagesBody(body, limitHeaders);
    admission.model = request.model;
    this.checkQuota(caller, limitHeaders);
    this.checkPriced(caller, request.model, limitHeaders);
    const upstreamKey = this.upstreamKey();
    let releaseStream: (() => void) | null = null;
    if (request.stream) {
      releaseStream = this.deps.limiter.openStream(caller.subject, caller.concurrentStreams);
      if (!releaseStream) {
        throw new GatewayError(
          429,
          'rate_limit_error',
          GatewayErrorCode.STREAMS_EXHAUSTED,
          `This key already has ${caller.concurrentStreams} streams open, its limit. Wait for one to finish, or ask your admin for a higher limit.`,
          { ...limitHeaders, 'retry-after': '1' },
        );
      }
    }
    // Parallel requests of one user see each other at once: each reserves what it may use (its prompt estimated
    // from the body's size, its output at max_tokens) before it goes upstream, and the reservation follows the real
    // usage as it is known. Between check() and here nothing awaits, so no other request can slip in between.
    const hold = this.deps.quotas.hold(caller.userId, caller.key?.keyId ?? null, this.estimate(request, body!));
    return { caller, limitHeaders, request, body: body!, upstreamKey, releaseStream, hold };
  }

  /** Token counting and the model list: a valid body (for count_tokens) and an upstream key. */
  admitPassThrough({ limitHeaders }: Admission, method: 'GET' | 'POST', body: Buffer | null): string {
    if (method === 'POST') parseMessagesBody(body ?? undefined, limitHeaders);
    return this.upstreamKey();
  }

  /** X-RateLimit-* of the caller's bucket as it stands, nothing taken. */
  peekHeaders(caller: Caller): Record<string, string> {
    return rateHeaders(this.deps.limiter.peek(caller.subject, caller.requestsPerMinute, this.now()));
  }

  /** An answer that cannot be recorded is not given: while the data dir is full, nothing goes upstream. */
  checkStorage(headers: Record<string, string>): void {
    if (!this.deps.storage?.full) return;
    throw new GatewayError(
      503,
      'api_error',
      GatewayErrorCode.STORAGE_FULL,
      "The gateway cannot record usage right now: its host's disk is full. Ask your Slotdeck admin to free space on the host (the agent's data dir); the gateway takes requests again by itself once there is room.",
      headers,
    );
  }

  checkQuota(caller: Caller, headers: Record<string, string>): void {
    const quota = this.deps.quotas.check(caller.userId, caller.key?.keyId ?? null);
    if (quota.ok) return;
    // No Retry-After: the SDK would sleep until the reset (hours), and Claude Code retry for minutes. The reset is
    // in the message and in its own header, and x-should-retry: false says that waiting a moment will not help.
    throw new GatewayError(429, 'rate_limit_error', GatewayErrorCode.QUOTA_EXCEEDED, quota.message, {
      ...headers,
      [QUOTA_RESET_HEADER]: quota.quota.resetsAt,
    });
  }
  /** A cost quota cannot hold for a model without a price: its users and keys are refused it until it has one. */
  checkPriced(caller: Caller, model: string, headers: Record<string, string>): void {
    if (this.deps.prices.price(model) !== null) return;
    const costQuota = [
      ...this.deps.quotas.status('user', caller.userId),
      ...(caller.key ? this.deps.quotas.status('key', caller.key.keyId) : []),
    ].some((quota) => quota.maxCostUsd !== null);
    if (!costQuota) return;
    const name = model.length > 100 ? `${model.slice(0, 100)}…` : model;
    throw new GatewayError(
      403,
      'permission_error',
      GatewayErrorCode.MODEL_UNPRICED,
      `Model "${name}" has no price on this gateway, and your usage is limited by cost, so it cannot be metered. Use a priced model (e.g. claude-sonnet-4-6), or ask your Slotdeck admin to set a price for it (agent config gateway.prices; the panel's Gateway view lists unpriced models).`,
      headers,
    );
  }
  upstreamKey(): string {
    const key = this.deps.upstreamKey.get();
    if (key) return key;
    throw new GatewayError(
      503,
      'api_error',
      GatewayErrorCode.UPSTREAM_KEY_MISSING,
      'The gateway has no upstream API key yet. Ask your Slotdeck admin to set it (in the panel: Gateway → Upstream).',
    );
  }
  /** The most a request may use, as tokens and priced, for its quota reservation. */
  estimate(request: MessagesRequest, body: Buffer): { tokens: number; cost: number } {
    const inputTokens = Math.ceil(body.length / BYTES_PER_ESTIMATED_TOKEN);
    const usage = {
      inputTokens,
      outputTokens: request.maxTokens,
      cacheCreationTokens: 0,
      cacheReadTokens: 0,
      cacheCreation1hTokens: 0,
    };
    return { tokens: inputTokens + request.maxTokens, cost: this.deps.prices.cost(request.model, usage) };
  }
  /**
   * X-RateLimit-* for an answer whose caller is not known (no key, or one refused): the default per-key limit, with
   * nothing taken from it (a refused request is not counted) and nothing to wait for.
   */
  defaultLimitHeaders(): Record<string, string> {
    const limit = String(this.deps.settings.defaultRateLimit.requestsPerMinute);
    return {
      'x-ratelimit-limit': limit,
      'x-ratelimit-remaining': limit,
      'x-ratelimit-reset': String(Math.ceil(this.now() / 1000)),
    };
  }
}
