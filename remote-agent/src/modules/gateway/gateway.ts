import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { Agent as UndiciAgent, errors as undiciErrors, type Dispatcher } from 'undici';
import type { GatewayConfig, ModelPrice } from '../../config.js';
import {
  GatewayErrorCode,
  OVERHEAD_HEADER,
  type GatewayErrorType,
  type GatewayStatus,
  type KeyScope,
  type MeQuota,
  type MeUsage,
  type QuotaStatus,
  type UsageStatus,
  type UsageTotals,
} from '../../contract/index.js';
import type { TokenCounts } from '../usage/prices.js';
import type { UsageEvent } from '../usage/recorder.js';
import { DISPLAY_PREFIX_LENGTH } from '../users/keys.js';
import type { KeyRejection, VerifiedKey, VerifyResult } from '../users/verifier.js';
import type { RateDecision, RateLimiter } from './rate-limiter.js';
import type { Refusal } from './refusal.js';
import type { GatewaySettings, UpstreamKeyStore } from './settings.js';
import { readTopLevelFields } from './request-fields.js';
import { StreamUsageTracker } from './stream-usage.js';

/** A running request's usage, counted against quotas until its row is committed. */
interface QuotaHold {
  set(tokens: number, costUsd: number): void;
  release(): void;
}

/** What the gateway needs from the other modules, typed structurally so each can be tested alone. */
export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  keys: { verify(raw: string | undefined): VerifyResult; touch(keyId: string): void };
  users: { find(id: string): { id: string; username: string; active: boolean; deleted: boolean } | null };
  limiter: RateLimiter;
  quotas: {
    check(userId: string, keyId: string | null): { ok: true } | { ok: false; quota: QuotaStatus; message: string };
    status(subject: 'user' | 'key', id: string): QuotaStatus[];
    /** Reserves `estimate` at once (capped by what is left of the budget), then follows the usage as it is known. */
    hold(userId: string, keyId: string | null, estimate?: { tokens: number; cost: number }): QuotaHold;
  };
  /** Prices a running stream's usage for its quota hold; names the models without a price. */
  prices: {
    cost(model: string, tokens: TokenCounts): number;
    price(model: string): ModelPrice | null;
    unpricedModels(): string[];
  };
  recorder: { record(event: UsageEvent): Promise<unknown> };
  usage: { totals(userId: string, keyId: string | null, sinceMs: number): UsageTotals };
  settings: GatewaySettings;
  upstreamKey: UpstreamKeyStore;
  now?: () => number;
  /** Told once about every request the gateway refuses (never the key itself), for the request log. */
  onRefused?: (refusal: Refusal) => void;
}

/** One admitted /v1/messages request on its way upstream. */
interface Exchange {
  caller: Caller;
  request: MessagesRequest;
  /** Upstream's path with the client's query string (Claude Code sends `?beta=true`). */
  path: string;
  body: Buffer;
  headers: IncomingHttpHeaders;
  upstreamKey: string;
  limitHeaders: Record<string, string>;
  reply: FastifyReply;
  startedAt: number;
  hold: QuotaHold;
}

/** One upstream request of /v1/messages and what its client is doing. */
interface UpstreamWatch {
  abort: UpstreamAbort;
  tracker: StreamUsageTracker;
  /** True once the client left (or stopped reading). */
  gone: () => boolean;
  stopUpstream: () => void;
}

/** Who is calling: a verified key, or (legacy mode) any key string attributed to one user. */
interface Caller {
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
interface RouteGuard {
  /** Unset: no key needed (health checks). */
  scope?: KeyScope;
  /** Counted against the key's requests per minute. */
  rateLimited?: boolean;
}

/** A request that passed the checks made before its body is read. */
interface Admission {
  caller: Caller;
  /** X-RateLimit-* of the caller's bucket: taken from on rate-limited routes, as it stands on the others. */
  limitHeaders: Record<string, string>;
  /** Once the body was read far enough to know it (for the request log). */
  model: string | null;
}

const PROVIDER = 'anthropic';

/**
 * Bytes of request body counted as one prompt token when a request's quota reservation is estimated. JSON text of
 * English or code runs at about 4 bytes a token or more (the body's own structure adds bytes, not tokens); images in
 * base64 at far more. A prompt with fewer bytes a token (CJK text) is under-estimated: see the bound in the docs.
 */
const BYTES_PER_ESTIMATED_TOKEN = 4;

/** What the gateway reads of a /v1/messages body; the rest is upstream's to judge. */
interface MessagesRequest {
  model: string;
  stream: boolean;
  /** The most output tokens the answer may have (Anthropic never exceeds it); 0 when absent or not a number. */
  maxTokens: number;
}

/** The longest a whole request may take to arrive (see requestTimeout); two body timeouts when those are longer. */
const REQUEST_TIMEOUT_MS = 15 * 60_000;

const REJECTION: Record<KeyRejection, GatewayErrorCode> = {
  missing: GatewayErrorCode.KEY_MISSING,
  malformed: GatewayErrorCode.KEY_MALFORMED,
  unknown: GatewayErrorCode.KEY_UNKNOWN,
  revoked: GatewayErrorCode.KEY_REVOKED,
  expired: GatewayErrorCode.KEY_EXPIRED,
  user_disabled: GatewayErrorCode.USER_DISABLED,
  user_deleted: GatewayErrorCode.USER_DELETED,
};

/**
 * Request headers passed on to upstream as they are: every `anthropic-*` (an open list: new betas and options need
 * no change here), Claude Code's own `x-claude-code-*`, `accept` and `user-agent`. Everything else, the caller's
 * x-api-key and authorization above all, stays here.
 */
const forwardedRequestHeader = (name: string): boolean =>
  name.startsWith('anthropic-') || name.startsWith('x-claude-code-') || name === 'accept' || name === 'user-agent';
/**
 * Upstream's response headers passed back unchanged, upstream errors included: what the SDKs and Claude Code read to
 * decide on retries (`x-should-retry`, `retry-after`), and `anthropic-ratelimit-*` (Claude Code's status shows them).
 */
const FORWARDED_RESPONSE_HEADERS = new Set([
  'content-type',
  'request-id',
  'retry-after',
  'retry-after-ms',
  'x-should-retry',
]);
const forwardedResponseHeader = (name: string): boolean =>
  FORWARDED_RESPONSE_HEADERS.has(name) || name.startsWith('anthropic-ratelimit-');

/** On a used-up quota's 429: when the quota resets (RFC 3339), instead of a Retry-After that clients would sleep on. */
export const QUOTA_RESET_HEADER = 'x-slotdeck-quota-reset';

/**
 * The gateway's own errors that a retry can cure (x-should-retry: true); every other one is final
 * (x-should-retry: false), so that the SDKs and Claude Code fail at once instead of retrying a revoked key or a
 * used-up quota for minutes.
 */
const RETRYABLE = new Set<GatewayErrorCode>([
  GatewayErrorCode.RATE_LIMITED,
  GatewayErrorCode.STREAMS_EXHAUSTED,
  GatewayErrorCode.BODY_TIMEOUT,
  GatewayErrorCode.UPSTREAM_TIMEOUT,
  GatewayErrorCode.UPSTREAM_UNREACHABLE,
  GatewayErrorCode.SHUTTING_DOWN,
  GatewayErrorCode.INTERNAL_ERROR,
]);

/** Errors that are not a refusal of the caller (the route does not exist, upstream failed): not in the request log. */
const NOT_REFUSALS = new Set<GatewayErrorCode>([
  GatewayErrorCode.ROUTE_NOT_FOUND,
  GatewayErrorCode.UPSTREAM_TIMEOUT,
  GatewayErrorCode.UPSTREAM_UNREACHABLE,
  GatewayErrorCode.INTERNAL_ERROR,
]);

/**
 * Cancels an upstream request when its client goes away. undici takes an EventEmitter as the signal; an
 * AbortController costs far more to create (an EventTarget per request shows in the gateway's profile).
 */
class UpstreamAbort extends EventEmitter {
  aborted = false;
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: GatewayErrorType,
    readonly code: GatewayErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Whose request it was, when the gateway knows though it admitted no caller (a revoked key's 401). */
    readonly subject: { userId: string; keyId: string } | null = null,
  ) {
    super(message);
  }
}

function keyFrom(headers: IncomingHttpHeaders): string | undefined {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey.trim();
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match) return match[1]!.trim();
  }
  return undefined;
}

const rateHeaders = (decision: RateDecision): Record<string, string> => ({
  'x-ratelimit-limit': String(decision.limit),
  'x-ratelimit-remaining': String(decision.remaining),
  'x-ratelimit-reset': String(decision.resetAt),
});

const round2 = (ms: number): string => (Math.round(ms * 100) / 100).toFixed(2);

/** The query string of a request's URL, with its `?`, or ''. */
function queryOf(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? '' : url.slice(at);
}

/**
 * Waits until the response can take more; resolves false when the client is gone, or has read nothing for
 * `timeoutMs` (then its connection is closed: a client that stops reading must not hold a stream forever).
 */
function drained(raw: ServerResponse, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => (): void => {
      clearTimeout(timer);
      raw.off('drain', onDrain);
      raw.off('close', onClose);
      if (!ok) raw.destroy();
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    const timer = setTimeout(done(false), timeoutMs);
    raw.once('drain', onDrain);
    raw.once('close', onClose);
  });
}

/**
 * The public listener: end users' routes only (Messages API, token counting, models, and their own usage and
 * quotas). Every request is authenticated by the caller's key, rate-limited, checked against quotas, forwarded to
 * upstream with the organisation's key, and metered: its usage row is committed before the last byte of the answer
 * leaves, so that a response a client received in full is always on record.
 */
export class Gateway {
  readonly app: FastifyInstance;
  private readonly dispatcher: UndiciAgent;
  private readonly upstreamOrigin: string;
  private readonly upstreamPath: string;
  private readonly now: () => number;
  private listening: { host: string; port: number } | null = null;
  private inFlight = 0;
  private closing = false;
  /** Upstream requests still read after their client left (to meter them); stopped when the gateway closes. */
  private readonly departed = new Set<UpstreamAbort>();
  private readonly tls: boolean;

  constructor(private readonly deps: GatewayDeps) {
    const { config } = deps;
    this.now = deps.now ?? Date.now;
    const base = new URL(config.upstreamBaseUrl);
    this.upstreamOrigin = base.origin;
    this.upstreamPath = base.pathname.replace(/\/+$/, '');
    this.dispatcher = new UndiciAgent({
      connections: 512,
      keepAliveTimeout: 30_000,
      headersTimeout: config.upstreamTimeoutMs,
      bodyTimeout: config.upstreamTimeoutMs,
      connect: { timeout: 10_000 },
    });
    this.tls = config.tlsCertFile !== null && config.tlsKeyFile !== null;
    let https = {};
    if (config.tlsCertFile !== null && config.tlsKeyFile !== null) {
      try {
        https = { https: { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) } };
      } catch (error) {
        throw new Error(
          `The gateway's TLS certificate or key cannot be read (${(error as Error).message}). Fix gateway.tlsCertFile and gateway.tlsKeyFile (SLOTDECK_AGENT_GATEWAY_TLS_CERT / _KEY), or leave both out and put a reverse proxy in front.`,
          { cause: error },
        );
      }
    }
    // With TLS, Fastify's instance is typed for https.Server; the routes below do not care which.
    this.app = Fastify({
      ...https,
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      loggerInstance: deps.logger.child({ listener: 'gateway' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: config.bodyLimitBytes,
      trustProxy: false,
      // Claude Code and the SDKs keep connections open between requests.
      keepAliveTimeout: 75_000,
      // The longest a whole request (headers and body) may take to arrive. bodyTimeoutMs bounds each pause of an
      // upload, not its total, so a client dripping a byte now and then could hold a connection for ever; this caps
      // it. It is generous (a 32 MB upload fits at about 0.4 Mbit/s, and it is never below two body timeouts) so
      // that no upload that keeps moving within bodyTimeoutMs is cut in practice; it does not touch answers (a long
      // stream runs after its request arrived). Node answers it with a 408 and closes the connection.
      requestTimeout: Math.max(REQUEST_TIMEOUT_MS, 2 * config.bodyTimeoutMs),
      // A request arriving while the gateway closes is answered in Anthropic's shape by onRequest, not Fastify's.
      return503OnClosing: false,
      // Requests node's parser refuses (a broken request line or headers) get Anthropic's error shape too.
      clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => this.clientError(error, socket),
      // So does a URL Fastify cannot decode (`/v1/models/%zz`) or a path parameter over its length limit.
      frameworkErrors: (_error, _request, reply) => {
        void this.sendError(
          reply,
          new GatewayError(
            400,
            'invalid_request_error',
            GatewayErrorCode.REQUEST_MALFORMED,
            'The request URL is not valid (a broken %-escape or a path segment too long). Fix the URL, e.g. POST /v1/messages.',
          ),
        );
      },
    });
    this.registerRoutes();
  }

  async listen(): Promise<string> {
    const { host, port } = this.deps.config;
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    this.listening = { host, port: typeof address === 'object' && address ? address.port : port };
    if (!this.tls && host !== '127.0.0.1' && host !== '::1') {
      this.deps.logger.warn(
        { host, port: this.listening.port },
        'GATEWAY LISTENS IN PLAIN HTTP BEYOND THIS MACHINE: API keys cross the network unencrypted. Put a TLS reverse proxy in front (and set gateway.host to 127.0.0.1), or set gateway.tlsCertFile and gateway.tlsKeyFile.',
      );
    }
    return this.url()!;
  }

  /** Where programs on this host reach the gateway (a wildcard listener is reached over loopback). */
  url(): string | null {
    if (!this.listening) return null;
    const { host, port } = this.listening;
    const reachable =
      host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
    return `${this.tls ? 'https' : 'http'}://${reachable}:${port}`;
  }

  status(): GatewayStatus {
    const legacy = this.deps.settings.legacyMode;
    const legacyUser = legacy.userId ? this.deps.users.find(legacy.userId) : null;
    return {
      url: this.url(),
      listen: this.listening,
      upstream: { baseUrl: this.deps.config.upstreamBaseUrl, keyConfigured: this.deps.upstreamKey.get() !== null },
      legacyMode: { enabled: legacy.enabled, userId: legacy.userId, username: legacyUser?.username ?? null },
      defaultRateLimit: { ...this.deps.settings.defaultRateLimit },
      inFlight: this.inFlight,
      unpricedModels: this.deps.prices.unpricedModels(),
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    // Answers still read for clients that left are cut short: they are metered with what is known so far.
    for (const abort of this.departed) abort.abort();
    await this.app.close();
    await this.dispatcher.close().catch(() => undefined);
  }

  // ------------------------------------------------------------------ routes

  private registerRoutes(): void {
    const { app } = this;
    // Bodies stay bytes: they are forwarded as received, and parsed only to read `model` and `stream`.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    // The key, its scope and its rate are checked before a byte of the body is read: a request that is refused
    // here holds no more memory than its headers, and its connection is closed instead of drained.
    app.addHook('onRequest', (request, reply, done) => {
      if (this.closing) {
        done(
          new GatewayError(
            503,
            'overloaded_error',
            GatewayErrorCode.SHUTTING_DOWN,
            'The gateway is restarting. Retry in a moment.',
            { connection: 'close', 'retry-after': '1' },
          ),
        );
        return;
      }
      // Only POST routes read a body. One declared anywhere else (GET /health with a Content-Length, say) is never
      // read: the answer closes the connection, instead of leaving it to Node to wait for (and drain) that body.
      if (request.method !== 'POST' && declaresBody(request.raw)) reply.raw.setHeader('connection', 'close');
      const guard = (request.routeOptions.config as RouteGuard | undefined) ?? {};
      if (!request.is404 && guard.scope === undefined) {
        done();
        return;
      }
      try {
        const caller = this.authenticate(request.headers);
        // Known from here on: a refusal below (scope, rate) names the caller and carries their rate headers.
        const admission: Admission = {
          caller,
          limitHeaders: rateHeaders(this.deps.limiter.peek(caller.subject, caller.requestsPerMinute, this.now())),
          model: null,
        };
        this.admitted.set(request, admission);
        if (guard.scope) this.requireScope(caller, guard.scope);
        if (guard.rateLimited) admission.limitHeaders = rateHeaders(this.admit(caller));
        done();
      } catch (error) {
        done(error as Error);
      }
    });
    // A stalled upload is answered and closed once no byte of its body arrived for bodyTimeoutMs.
    app.addHook('preParsing', (request, reply, payload, done) => {
      if (!declaresBody(request.raw)) {
        done(null, payload);
        return;
      }
      done(null, this.guardUpload(payload, reply.raw));
    });

    app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, request, reply) => {
      if (error instanceof GatewayError) return this.sendError(reply, error);
      if (error.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
        return this.sendError(
          reply,
          new GatewayError(
            400,
            'invalid_request_error',
            GatewayErrorCode.BODY_INVALID,
            'The request body does not match its Content-Length. Send the whole body, with a Content-Length that matches it.',
          ),
        );
      }
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return this.sendError(
          reply,
          new GatewayError(
            413,
            'request_too_large',
            GatewayErrorCode.BODY_TOO_LARGE,
            `The request body is larger than the gateway accepts (${this.deps.config.bodyLimitBytes} bytes). Send less.`,
          ),
        );
      }
      if (error.statusCode && error.statusCode < 500) {
        return this.sendError(
          reply,
          new GatewayError(error.statusCode, 'invalid_request_error', GatewayErrorCode.BODY_INVALID, error.message),
        );
      }
      request.log.error({ err: error }, 'gateway error');
      return this.sendError(
        reply,
        new GatewayError(
          500,
          'api_error',
          GatewayErrorCode.INTERNAL_ERROR,
          `The gateway hit an unexpected error (request ${request.id}); it is in the agent's log. Retry, and tell your admin if it persists.`,
        ),
      );
    });
    app.setNotFoundHandler((request, reply) =>
      this.sendError(
        reply,
        new GatewayError(
          404,
          'not_found_error',
          GatewayErrorCode.ROUTE_NOT_FOUND,
          `No route ${request.method} ${request.url.split('?')[0]} on the gateway. It serves POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models[/<id>], GET /v1/me/usage and GET /v1/me/quota.`,
        ),
      ),
    );

    const upstreamRoute: { config: RouteGuard } = { config: { scope: 'gateway', rateLimited: true } };
    const selfRoute: { config: RouteGuard } = { config: { scope: 'self' } };
    // The client's query string goes upstream as it came (Claude Code sends /v1/messages?beta=true).
    app.post('/v1/messages', upstreamRoute, (request, reply) =>
      this.messages(
        this.admission(request),
        `/v1/messages${queryOf(request.url)}`,
        request.headers,
        request.body as Buffer | undefined,
        reply,
      ),
    );
    app.post('/v1/messages/count_tokens', upstreamRoute, (request, reply) =>
      this.passThrough(
        this.admission(request),
        'POST',
        `/v1/messages/count_tokens${queryOf(request.url)}`,
        request.headers,
        (request.body as Buffer | undefined) ?? null,
        reply,
      ),
    );
    app.get('/v1/models', upstreamRoute, (request, reply) =>
      this.passThrough(
        this.admission(request),
        'GET',
        `/v1/models${queryOf(request.url)}`,
        request.headers,
        null,
        reply,
      ),
    );
    app.get('/v1/models/:modelId', upstreamRoute, (request, reply) => {
      const { modelId } = request.params as { modelId: string };
      const path = `/v1/models/${encodeURIComponent(modelId)}${queryOf(request.url)}`;
      return this.passThrough(this.admission(request), 'GET', path, request.headers, null, reply);
    });
    app.get('/v1/me/usage', selfRoute, (request, reply) => this.meUsage(this.admission(request), request.query, reply));
    app.get('/v1/me/quota', selfRoute, (request, reply) => this.meQuota(this.admission(request), reply));
    // For load balancers and uptime checks; says nothing about the configuration.
    app.get('/health', (_request, reply) => {
      reply
        .headers(this.defaultLimitHeaders())
        .header('cache-control', 'no-store')
        .header(OVERHEAD_HEADER, round2(reply.elapsedTime));
      return { ok: true };
    });
  }

  // ------------------------------------------------------------------ admission

  private readonly admitted = new WeakMap<FastifyRequest, Admission>();

  private admission(request: FastifyRequest): Admission {
    const admission = this.admitted.get(request);
    // Every guarded route went through onRequest; this would be a wiring mistake, answered as a 500 and logged.
    if (!admission) throw new Error(`route ${request.url} was not admitted`);
    return admission;
  }

  /**
   * Passes the body through, and fails it with a 408 once no byte arrived for bodyTimeoutMs. The request itself is
   * left alone (destroying it would take the socket, and the answer, with it); the answer closes the connection.
   */
  private guardUpload(payload: NodeJS.ReadableStream & { destroy?: unknown }, raw: ServerResponse): Transform {
    const timeoutMs = this.deps.config.bodyTimeoutMs;
    const source = payload as IncomingMessage;
    const guard = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        timer.refresh();
        callback(null, chunk);
      },
      flush(callback) {
        clearTimeout(timer);
        callback();
      },
    });
    const timer = setTimeout(() => {
      source.unpipe(guard);
      guard.destroy(
        new GatewayError(
          408,
          'timeout_error',
          GatewayErrorCode.BODY_TIMEOUT,
          `The request body stopped arriving: nothing came for ${timeoutMs / 1000} s, so the gateway closed the connection. Check the network and send the request again.`,
          { connection: 'close' },
        ),
      );
    }, timeoutMs);
    // Once the answer is out (or the client gone), nothing waits for the body any more.
    raw.once('close', () => clearTimeout(timer));
    source.once('error', (error) => guard.destroy(error));
    source.once('aborted', () => clearTimeout(timer));
    // The parser listens for errors while it reads; this keeps a late one (after the answer) from going unheard.
    guard.on('error', () => clearTimeout(timer));
    source.pipe(guard);
    return guard;
  }

  private authenticate(headers: IncomingHttpHeaders): Caller {
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

  private requireScope(caller: Caller, scope: KeyScope): void {
    if (caller.scopes.includes(scope)) return;
    const what = scope === 'gateway' ? 'call Claude through the gateway' : 'read its own usage and quotas';
    throw new GatewayError(
      403,
      'permission_error',
      GatewayErrorCode.SCOPE_MISSING,
      `This API key (${caller.key?.prefix ?? 'legacy'}…) lacks the "${scope}" scope, so it cannot ${what}. Ask your Slotdeck admin for a key with that scope.`,
    );
  }

  private admit(caller: Caller): RateDecision {
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

  private checkQuota(caller: Caller, headers: Record<string, string>): void {
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
  private checkPriced(caller: Caller, model: string, headers: Record<string, string>): void {
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

  private upstreamKey(): string {
    const key = this.deps.upstreamKey.get();
    if (key) return key;
    throw new GatewayError(
      503,
      'api_error',
      GatewayErrorCode.UPSTREAM_KEY_MISSING,
      'The gateway has no upstream API key yet. Ask your Slotdeck admin to set it (in the panel: Gateway → Upstream).',
    );
  }

  // ------------------------------------------------------------------ handlers

  private async messages(
    admission: Admission,
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer | undefined,
    reply: FastifyReply,
  ): Promise<void> {
    const { caller, limitHeaders } = admission;
    const startedAt = this.now();
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
    this.inFlight += 1;
    try {
      await this.forwardMessages({
        caller,
        request,
        path,
        body: body!,
        headers,
        upstreamKey,
        limitHeaders,
        reply,
        startedAt,
        hold,
      });
    } finally {
      this.inFlight -= 1;
      releaseStream?.();
      hold.release();
    }
  }

  /** The most a request may use, as tokens and priced, for its quota reservation. */
  private estimate(request: MessagesRequest, body: Buffer): { tokens: number; cost: number } {
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

  private async forwardMessages(exchange: Exchange): Promise<void> {
    const raw = exchange.reply.raw;
    const abort = new UpstreamAbort();
    const tracker = new StreamUsageTracker();
    // A client that leaves does not end what upstream bills: the prompt is processed (and may be billed) whether or
    // not anyone waits for the answer. So upstream is stopped only once its usage is known: a JSON answer is read to
    // its end, a stream until message_start (its input and cache tokens; output is estimated from what went out).
    // A stream left after message_start is stopped at once. Reading on is bounded by upstreamTimeoutMs from the
    // moment the client left (and by undici's own timeouts); then upstream is stopped with what is known metered.
    let clientGone = false;
    let leftTimer: NodeJS.Timeout | null = null;
    const gone = (): boolean => clientGone || raw.destroyed;
    const stopUpstream = (): void => {
      this.departed.delete(abort);
      abort.abort();
    };
    const onClientGone = (): void => {
      if (raw.writableFinished || clientGone) return;
      clientGone = true;
      if (tracker.started || this.closing) {
        stopUpstream();
        return;
      }
      this.departed.add(abort);
      leftTimer = setTimeout(stopUpstream, this.deps.config.upstreamTimeoutMs);
    };
    raw.once('close', onClientGone);
    try {
      await this.readUpstream(exchange, {
        abort,
        tracker,
        gone,
        stopUpstream,
      });
    } finally {
      if (leftTimer) clearTimeout(leftTimer);
      this.departed.delete(abort);
      raw.off('close', onClientGone);
    }
  }

  private async readUpstream(
    { caller, request, path, body, headers, upstreamKey, limitHeaders, reply, startedAt, hold }: Exchange,
    { abort, tracker, gone, stopUpstream }: UpstreamWatch,
  ): Promise<void> {
    const raw = reply.raw;
    let heldTokens = 0;
    const holdUsage = (): void => {
      const { inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens } = tracker.usage;
      const tokens = inputTokens + outputTokens + cacheCreationTokens + cacheReadTokens;
      if (tokens === heldTokens) return;
      heldTokens = tokens;
      hold.set(tokens, this.deps.prices.cost(tracker.usage.model ?? request.model, tracker.usage));
    };
    let requestId: string | null = null;
    let httpStatus: number | null = null;
    let ttfbMs: number | null = null;
    let status: UsageStatus = 'success';
    let errorType: string | null = null;
    let recorded = false;
    const record = (): Promise<unknown> => {
      recorded = true;
      const endedAt = this.now();
      return (
        this.deps.recorder
          .record({
            requestId,
            userId: caller.userId,
            keyId: caller.key?.keyId ?? null,
            slotId: caller.key?.slotId ?? null,
            model: tracker.usage.model ?? request.model,
            provider: PROVIDER,
            inputTokens: tracker.usage.inputTokens,
            outputTokens: tracker.usage.outputTokens,
            cacheCreationTokens: tracker.usage.cacheCreationTokens,
            cacheReadTokens: tracker.usage.cacheReadTokens,
            cacheCreation1hTokens: tracker.usage.cacheCreation1hTokens,
            status,
            errorType,
            httpStatus,
            latencyMs: endedAt - startedAt,
            ttfbMs,
            startedAt,
            endedAt,
          })
          .catch((error: unknown) => {
            // The answer still goes out; the log says which request is missing from usage.
            this.deps.logger.error({ err: error, requestId, userId: caller.userId }, 'usage row not recorded');
          })
          // The committed row now counts in the quotas: the running count goes.
          .finally(() => hold.release())
      );
    };

    const upstreamStarted = performance.now();
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await this.dispatcher.request({
        origin: this.upstreamOrigin,
        path: `${this.upstreamPath}${path}`,
        method: 'POST',
        headers: upstreamHeaders(headers, upstreamKey, true),
        body,
        signal: abort,
      });
    } catch (error) {
      const failure = this.upstreamFailure(error, abort.aborted || gone());
      status = failure.status;
      errorType = failure.error?.type ?? 'client_abort';
      httpStatus = failure.error?.status ?? null;
      await record();
      if (failure.error) throw withHeaders(failure.error, limitHeaders);
      return;
    }
    const upstreamHeadersMs = performance.now() - upstreamStarted;
    httpStatus = upstream.statusCode;
    requestId = headerValue(upstream.headers['request-id']);
    // What upstream sends decides how it is metered, not what the request asked for.
    const contentType = headerValue(upstream.headers['content-type']) ?? '';
    const isStream = upstream.statusCode < 300 && /^\s*text\/event-stream/i.test(contentType);

    if (!isStream) {
      // JSON answers (and every error) are small: read whole, meter, commit, then send.
      let payload: Buffer;
      try {
        payload = Buffer.from(await upstream.body.arrayBuffer());
      } catch (error) {
        const failure = this.upstreamFailure(error, abort.aborted || gone());
        status = failure.status;
        errorType = failure.error?.type ?? 'client_abort';
        await record();
        if (failure.error) throw withHeaders(failure.error, limitHeaders);
        return;
      }
      const upstreamMs = performance.now() - upstreamStarted;
      ttfbMs = this.now() - startedAt;
      // Answers can be large (long outputs): only model, usage and error are read out of them.
      let parsed: unknown = readTopLevelFields(payload, ['model', 'usage', 'error']);
      if (parsed === null) {
        try {
          parsed = JSON.parse(payload.toString('utf8'));
        } catch {
          parsed = null;
        }
      }
      if (upstream.statusCode >= 400) {
        status = 'error';
        errorType = (parsed as { error?: { type?: string } } | null)?.error?.type ?? `http_${upstream.statusCode}`;
      } else {
        tracker.applyMessage(parsed);
        // Read to its end for a client that left: its usage is on record, as upstream counts it.
        if (gone()) {
          status = 'client_abort';
          errorType = 'client_abort';
        }
      }
      await record();
      if (gone()) return;
      reply.hijack();
      raw.writeHead(upstream.statusCode, {
        ...upstreamResponseHeaders(upstream.headers),
        ...limitHeaders,
        'content-length': String(payload.length),
        [OVERHEAD_HEADER]: round2(Math.max(0, reply.elapsedTime - upstreamMs)),
      });
      raw.end(payload);
      return;
    }

    reply.hijack();
    if (!gone()) {
      raw.writeHead(upstream.statusCode, {
        ...upstreamResponseHeaders(upstream.headers),
        'cache-control': 'no-cache',
        ...limitHeaders,
        [OVERHEAD_HEADER]: round2(Math.max(0, reply.elapsedTime - upstreamHeadersMs)),
      });
      raw.flushHeaders();
    }
    try {
      for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
        ttfbMs ??= this.now() - startedAt;
        const completes = tracker.feed(chunk);
        holdUsage();
        // The piece that completes the message is held back until its usage row is committed.
        if (completes && !recorded) {
          status = tracker.usage.errorType ? 'error' : gone() ? 'client_abort' : 'success';
          errorType = tracker.usage.errorType ?? (gone() ? 'client_abort' : null);
          await record();
        }
        if (!gone() && !raw.write(chunk)) await drained(raw, this.deps.config.upstreamTimeoutMs);
        // A client gone before message_start: read on (without sending) until it says the input and cache tokens.
        if (gone() && tracker.started) {
          stopUpstream();
          break;
        }
      }
    } catch (error) {
      const failure = this.upstreamFailure(error, abort.aborted || gone());
      status = failure.status;
      errorType = failure.error?.type ?? 'client_abort';
      if (failure.error && !gone()) {
        // Headers are gone: say it the way the API does mid-stream, as an error event.
        raw.write(
          `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: failure.error.type, message: failure.error.message } })}\n\n`,
        );
      }
    }
    if (!recorded) {
      if (status === 'success') {
        if (gone()) {
          status = 'client_abort';
          errorType = 'client_abort';
        } else if (tracker.usage.errorType) {
          status = 'error';
          errorType = tracker.usage.errorType;
        } else if (!tracker.stopped) {
          status = 'error';
          errorType = 'incomplete_stream';
        }
      }
      // A client that left before upstream said the output count is metered for the content it was sent.
      if (status === 'client_abort' && tracker.usage.outputEstimated) errorType = CLIENT_ABORT_ESTIMATED;
      await record();
    }
    if (!raw.destroyed) raw.end();
  }

  /** Token counting and the model list: authenticated, rate-limited and forwarded, but not metered. */
  private async passThrough(
    { limitHeaders }: Admission,
    method: 'GET' | 'POST',
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer | null,
    reply: FastifyReply,
  ): Promise<void> {
    if (method === 'POST') parseMessagesBody(body ?? undefined, limitHeaders);
    const upstreamKey = this.upstreamKey();
    const abort = new UpstreamAbort();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const upstreamStarted = performance.now();
    let payload: Buffer;
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await this.dispatcher.request({
        origin: this.upstreamOrigin,
        path: `${this.upstreamPath}${path}`,
        method,
        headers: upstreamHeaders(headers, upstreamKey, body !== null),
        body,
        signal: abort,
      });
      payload = Buffer.from(await upstream.body.arrayBuffer());
    } catch (error) {
      const failure = this.upstreamFailure(error, abort.aborted);
      if (failure.error) throw withHeaders(failure.error, limitHeaders);
      return;
    }
    const upstreamMs = performance.now() - upstreamStarted;
    reply.hijack();
    reply.raw.writeHead(upstream.statusCode, {
      ...upstreamResponseHeaders(upstream.headers),
      ...limitHeaders,
      'content-length': String(payload.length),
      [OVERHEAD_HEADER]: round2(Math.max(0, reply.elapsedTime - upstreamMs)),
    });
    reply.raw.end(payload);
  }

  private meUsage({ caller, limitHeaders }: Admission, query: unknown, reply: FastifyReply): MeUsage | string {
    const now = this.now();
    const day = new Date(now);
    const dayStart = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
    const monthStart = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1);
    const totals = (since: number): UsageTotals => this.deps.usage.totals(caller.userId, null, since);
    const usage: MeUsage = {
      user: { id: caller.userId, username: caller.username },
      key: caller.key ? { id: caller.key.keyId, name: caller.key.name, prefix: caller.key.prefix } : null,
      today: totals(dayStart),
      last5h: totals(now - 5 * 3_600_000),
      month: totals(monthStart),
    };
    reply.headers(limitHeaders).header(OVERHEAD_HEADER, round2(reply.elapsedTime)).header('cache-control', 'no-store');
    if ((query as { format?: string } | undefined)?.format === 'line') {
      reply.type('text/plain; charset=utf-8');
      return `${statusLine(usage, this.quotaList(caller))}\n`;
    }
    return usage;
  }

  private meQuota({ caller, limitHeaders }: Admission, reply: FastifyReply): MeQuota {
    reply.headers(limitHeaders).header(OVERHEAD_HEADER, round2(reply.elapsedTime)).header('cache-control', 'no-store');
    return {
      quotas: this.quotaList(caller),
      rateLimit: { requestsPerMinute: caller.requestsPerMinute, concurrentStreams: caller.concurrentStreams },
    };
  }

  private quotaList(caller: Caller): MeQuota['quotas'] {
    const statuses = [
      ...this.deps.quotas.status('user', caller.userId),
      ...(caller.key ? this.deps.quotas.status('key', caller.key.keyId) : []),
    ];
    return statuses.map((quota) => ({
      ...quota,
      remainingTokens: quota.maxTokens === null ? null : Math.max(0, quota.maxTokens - quota.usedTokens),
      remainingCostUsd: quota.maxCostUsd === null ? null : Math.max(0, quota.maxCostUsd - quota.usedCostUsd),
    }));
  }

  // ------------------------------------------------------------------ errors

  private upstreamFailure(error: unknown, clientGone: boolean): { status: UsageStatus; error: GatewayError | null } {
    if (clientGone) return { status: 'client_abort', error: null };
    // Where upstream is and why it failed are for the admin (the log), never for end users: the message names
    // neither the URL nor the host, and undici's own message (which may) stays in the log.
    const upstream = this.deps.config.upstreamBaseUrl;
    if (
      error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.BodyTimeoutError ||
      error instanceof undiciErrors.ConnectTimeoutError
    ) {
      this.deps.logger.warn({ err: error, upstream }, 'upstream timed out');
      return {
        status: 'timeout',
        error: new GatewayError(
          504,
          'timeout_error',
          GatewayErrorCode.UPSTREAM_TIMEOUT,
          `Upstream did not answer within ${Math.round(this.deps.config.upstreamTimeoutMs / 1000)} s. Retry; if it keeps happening, ask your Slotdeck admin to check the upstream (the agent's log has the details).`,
        ),
      };
    }
    this.deps.logger.warn({ err: error, upstream }, 'upstream unreachable');
    return {
      status: 'error',
      error: new GatewayError(
        502,
        'api_error',
        GatewayErrorCode.UPSTREAM_UNREACHABLE,
        `The gateway could not reach upstream. Retry in a moment; if it keeps failing, ask your Slotdeck admin to check the upstream (the agent's log has the cause).`,
      ),
    };
  }

  private sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
    const request = reply.request;
    if (this.closing && error.status >= 500) error = withHeaders(error, { connection: 'close' });
    // Refused before its body was read: close the connection rather than read (and throw away) the rest of it.
    if (declaresBody(request.raw) && !request.raw.complete) {
      error = withHeaders(error, { connection: 'close' });
    }
    const admission = this.admitted.get(request);
    if (!NOT_REFUSALS.has(error.code)) {
      this.reportRefusal({
        status: error.status,
        code: error.code,
        message: error.message,
        userId: admission?.caller.userId ?? error.subject?.userId ?? null,
        keyId: admission?.caller.key?.keyId ?? error.subject?.keyId ?? null,
        keyPrefix: admission || error.subject ? null : visiblePrefix(keyFrom(request.headers)),
        model: admission?.model ?? null,
        method: request.method,
        path: request.url.split('?')[0]!,
        ip: request.ip,
      });
    }
    return reply
      .status(error.status)
      .headers({
        // What is known of the caller's rate: their bucket, or (no caller known) the default limit, untouched.
        ...(admission?.limitHeaders ?? this.defaultLimitHeaders()),
        'x-should-retry': RETRYABLE.has(error.code) ? 'true' : 'false',
        ...error.headers,
        [OVERHEAD_HEADER]: round2(reply.elapsedTime),
      })
      .send({ type: 'error', error: { type: error.type, message: error.message }, code: error.code });
  }

  /**
   * X-RateLimit-* for an answer whose caller is not known (no key, or one refused): the default per-key limit, with
   * nothing taken from it (a refused request is not counted) and nothing to wait for.
   */
  private defaultLimitHeaders(): Record<string, string> {
    const limit = String(this.deps.settings.defaultRateLimit.requestsPerMinute);
    return {
      'x-ratelimit-limit': limit,
      'x-ratelimit-remaining': limit,
      'x-ratelimit-reset': String(Math.ceil(this.now() / 1000)),
    };
  }

  /** Tells the request log; a failing log never changes the answer. */
  private reportRefusal(refusal: Omit<Refusal, 'at'>): void {
    if (!this.deps.onRefused) return;
    try {
      this.deps.onRefused({ at: this.now(), ...refusal });
    } catch (error) {
      this.deps.logger.error({ err: error }, 'refused request not logged');
    }
  }

  /** Answers a request node's HTTP parser refused (it never reached the routes) in Anthropic's error shape. */
  private clientError(error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const known = CLIENT_ERRORS[error.code ?? ''] ?? {
      status: 400,
      type: 'invalid_request_error' as const,
      code: GatewayErrorCode.REQUEST_MALFORMED,
      message: 'The request is not valid HTTP. Send an HTTP/1.1 request such as POST /v1/messages.',
    };
    this.reportRefusal({
      status: known.status,
      code: known.code,
      message: known.message,
      userId: null,
      keyId: null,
      keyPrefix: null,
      model: null,
      method: '',
      path: '',
      ip: socket.remoteAddress ?? '',
    });
    const body = JSON.stringify({
      type: 'error',
      error: { type: known.type, message: known.message },
      code: known.code,
    });
    const headers = {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      ...this.defaultLimitHeaders(),
      'x-should-retry': RETRYABLE.has(known.code) ? 'true' : 'false',
      [OVERHEAD_HEADER]: '0.00',
      Connection: 'close',
    };
    if (socket.writable) {
      const head = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.write(`HTTP/1.1 ${known.status} ${STATUS_TEXT[known.status]}\r\n${head}\r\n${body}`);
    }
    socket.destroy();
  }
}

function withHeaders(error: GatewayError, headers: Record<string, string>): GatewayError {
  return new GatewayError(
    error.status,
    error.type,
    error.code,
    error.message,
    { ...headers, ...error.headers },
    error.subject,
  );
}

function headerValue(value: string | string[] | undefined): string | null {
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}

function upstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name in headers) {
    if (!forwardedResponseHeader(name)) continue;
    const value = headerValue(headers[name]);
    if (value !== null) picked[name] = value;
  }
  return picked;
}

/** A key's first characters, for the request log, when it was not recognised; none of a key too short to hide. */
function visiblePrefix(raw: string | undefined): string | null {
  if (raw === undefined || raw.length < 2 * DISPLAY_PREFIX_LENGTH) return null;
  return raw.slice(0, DISPLAY_PREFIX_LENGTH);
}

function upstreamHeaders(incoming: IncomingHttpHeaders, upstreamKey: string, hasBody: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (typeof value === 'string' && forwardedRequestHeader(name)) headers[name] = value;
  }
  // Set last: no client header can stand in for the organisation's key.
  headers['x-api-key'] = upstreamKey;
  headers['anthropic-version'] ??= '2023-06-01';
  // undici sets content-length from the body itself.
  if (hasBody) headers['content-type'] = 'application/json';
  return headers;
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

/** Whether a request has a body on its way (whether or not its route reads it). */
function declaresBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Marks the usage row of a stream its client left before upstream said the output count. */
export const CLIENT_ABORT_ESTIMATED = 'client_abort_output_estimated';

const CLIENT_ERRORS: Record<
  string,
  { status: number; type: GatewayErrorType; code: GatewayErrorCode; message: string }
> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    type: 'request_too_large',
    code: GatewayErrorCode.HEADERS_TOO_LARGE,
    message: 'The request headers are too large. Send smaller headers.',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    type: 'timeout_error',
    code: GatewayErrorCode.BODY_TIMEOUT,
    message: 'The request did not arrive in time. Check the network and send it again.',
  },
};

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

function compact(tokens: number): string {
  if (tokens >= 1e6) return `${(tokens / 1e6).toFixed(1)}M`;
  if (tokens >= 1e3) return `${(tokens / 1e3).toFixed(1)}k`;
  return String(tokens);
}

/** One line for a shell prompt or Claude Code's status line. */
function statusLine(usage: MeUsage, quotas: MeQuota['quotas']): string {
  const part = (label: string, totals: UsageTotals): string =>
    `${label} ${compact(totals.totalTokens)} tok $${totals.costUsd.toFixed(2)}`;
  const parts = [usage.user.username, part('today', usage.today), part('5h', usage.last5h), part('month', usage.month)];
  for (const quota of quotas) {
    const left =
      quota.remainingTokens !== null
        ? `${compact(quota.remainingTokens)} tok`
        : quota.remainingCostUsd !== null
          ? `$${quota.remainingCostUsd.toFixed(2)}`
          : '';
    parts.push(`${quota.window} left ${left}${quota.exceeded ? ' (used up)' : ''}`);
  }
  return parts.join(' · ');
}
