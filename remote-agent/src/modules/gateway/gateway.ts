import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import { answerFrameworkError } from '../../http/errors.js';
import { PUBLIC_API_PREFIX, registerPublicSite } from '../site/site.js';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { GatewayErrorCode, OVERHEAD_HEADER, type GatewayStatus } from '../../contract/index.js';
import { Admissions, keyFrom, rateHeaders, visiblePrefix, type Admission, type RouteGuard } from './admission.js';
import type { GatewayDeps } from './deps.js';
import { CLIENT_ERRORS, GatewayError, NOT_REFUSALS, RETRYABLE, STATUS_TEXT, withHeaders } from './errors.js';
import { Forwarder } from './forwarding.js';
import type { Refusal } from './refusal.js';
import { SelfService } from './self-service.js';
import { declaresBody, queryOf, round2 } from './wire.js';
import { gatewayRequestCounts } from '../idle/activity.js';
import { ExchangeWatch } from '../metrics/gateway-exchange.js';

/** A caller refused before their rate was looked at (scope): their headers are read from the bucket then. */
const RATE_NOT_YET_KNOWN: Record<string, string> = Object.freeze({});

export type { GatewayDeps } from './deps.js';
export { CLIENT_ABORT_ESTIMATED } from './forwarding.js';
export { QUOTA_RESET_HEADER } from './admission.js';

/** The longest a whole request may take to arrive (see requestTimeout); two body timeouts when those are longer. */
const REQUEST_TIMEOUT_MS = 15 * 60_000;

/**
 * How long close() lets answers in flight finish before it cuts their connections. pm2 kills a process that has not
 * exited 1.6 s after `pm2 stop` (its default kill_timeout); a stream cut here is still metered before that.
 */
export const SHUTDOWN_DRAIN_MS = 1000;

/**
 * Ends a keep-alive connection whose answer is done, unless Node gave it the next (pipelined) request's answer: while
 * closing that one is a 503 with Connection: close, and Node closes the connection after it. end(), not destroy(),
 * so that what is still buffered for the client goes out first.
 */
function endIfFree(socket: Socket): void {
  if (!socket.destroyed && (socket as Socket & { _httpMessage?: unknown })._httpMessage == null) socket.end();
}

/** What a model id can be (claude-sonnet-4-6, claude-3-5-haiku-20241022, a Bedrock-style id with `:` or `@`). */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/;

/**
 * The public listener: end users' routes only (Messages API, token counting, models, and their own usage and
 * quotas). Every request is authenticated by the caller's key, rate-limited, checked against quotas, forwarded to
 * upstream with the organisation's key, and metered: its usage row is committed before the last byte of the answer
 * leaves, so that a response a client received in full is always on record.
 */
export class Gateway {
  readonly app: FastifyInstance;
  private readonly now: () => number;
  private listening: { host: string; port: number } | null = null;
  private closing = false;
  /** Answers being written, so that close() can close their keep-alive connections once they are done. */
  private readonly answering = new Set<ServerResponse>();
  private readonly tls: boolean;
  private readonly admissions: Admissions;
  private readonly forwarder: Forwarder;
  private readonly selfService: SelfService;
  /** Reports each request's outcome and counts open streams (metrics); null without an ops bus. */
  readonly exchanges: ExchangeWatch | null;

  constructor(private readonly deps: GatewayDeps) {
    const { config } = deps;
    this.now = deps.now ?? Date.now;
    this.admissions = new Admissions(deps);
    this.forwarder = new Forwarder(deps);
    this.selfService = new SelfService(deps);
    this.exchanges = deps.ops ? new ExchangeWatch(deps.ops) : null;
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
      frameworkErrors: (error, request, reply) => {
        // The public site's API answers in the agent's format ({error: {code, message}}), as its routes do.
        if (request.url.startsWith(`${PUBLIC_API_PREFIX}/`)) return answerFrameworkError(error, request, reply);
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
    if (deps.publicSite) registerPublicSite(this.app, deps.publicSite);
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
      inFlight: this.forwarder.inFlight,
      unpricedModels: this.deps.prices.unpricedModels(),
    };
  }

  /**
   * Stops taking requests, lets answers in flight finish for up to `drainMs`, then cuts the connections still open.
   * Keep-alive connections are closed as soon as they are idle: Node would keep them for keepAliveTimeout (75 s), and
   * the agent's shutdown would wait for them. Returns once every forwarded request is metered.
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    this.closing = true;
    this.forwarder.stopDeparted();
    const server = this.app.server;
    for (const response of this.answering) {
      // Not started yet: Node answers with Connection: close and closes the connection itself.
      if (!response.headersSent) {
        response.shouldKeepAlive = false;
        continue;
      }
      // Already answering with keep-alive: once done, Node would keep the connection for keepAliveTimeout (75 s).
      const socket = response.socket;
      if (socket) response.once('finish', () => setImmediate(() => endIfFree(socket)));
    }
    // Cut connections are seen by the forwarder as clients that left: upstream is stopped and the request metered.
    const cut = setTimeout(() => server.closeAllConnections(), options.drainMs ?? SHUTDOWN_DRAIN_MS);
    try {
      await this.app.close();
    } finally {
      clearTimeout(cut);
    }
    await this.forwarder.drained();
    await this.forwarder.close();
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
      const raw = reply.raw;
      this.answering.add(raw);
      raw.once('close', () => this.answering.delete(raw));
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
      // Unknown /v1/ paths are the gateway's (a client with a key learns what exists); others are the site's.
      if ((!request.is404 || !request.url.startsWith('/v1/')) && guard.scope === undefined) {
        done();
        return;
      }
      this.exchanges?.watch(raw, () => this.admitted.get(request)?.model ?? null);
      try {
        const caller = this.admissions.authenticate(request.headers);
        // Only once a real key let it in (not legacy mode, not a model listing): see gatewayRequestCounts.
        if (gatewayRequestCounts({ keyed: caller.key !== null, method: request.method, url: request.url }))
          this.deps.onAuthenticated?.();
        // Known from here on: a refusal below (scope, rate) names the caller and carries their rate headers.
        const admission: Admission = { caller, limitHeaders: RATE_NOT_YET_KNOWN, model: null };
        this.admitted.set(request, admission);
        if (guard.scope) this.admissions.requireScope(caller, guard.scope);
        admission.limitHeaders = guard.rateLimited
          ? rateHeaders(this.admissions.admit(caller))
          : this.admissions.peekHeaders(caller);
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
        // Fastify's own words ("Unsupported Media Type") do not say what to do: this does.
        return this.sendError(
          reply,
          new GatewayError(
            error.statusCode,
            'invalid_request_error',
            GatewayErrorCode.BODY_INVALID,
            `The request could not be read (${error.message}). Send a JSON body with Content-Type: application/json.`,
          ),
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
    app.post('/v1/messages', upstreamRoute, async (request, reply) => {
      const startedAt = this.now();
      const admitted = this.admissions.admitMessage(this.admission(request), request.body as Buffer | undefined);
      await this.forwarder.messages(admitted, `/v1/messages${queryOf(request.url)}`, request.headers, reply, startedAt);
    });
    app.post('/v1/messages/count_tokens', upstreamRoute, (request, reply) =>
      this.passThrough(
        request,
        reply,
        'POST',
        `/v1/messages/count_tokens${queryOf(request.url)}`,
        (request.body as Buffer | undefined) ?? null,
      ),
    );
    app.get('/v1/models', upstreamRoute, (request, reply) =>
      this.passThrough(request, reply, 'GET', `/v1/models${queryOf(request.url)}`, null),
    );
    app.get('/v1/models/:modelId', upstreamRoute, (request, reply) => {
      const { modelId } = request.params as { modelId: string };
      // encodeURIComponent leaves `.` and `..` alone: a normalising proxy on the way would take /v1/models/.. to
      // another upstream path, with the organisation's key. Only what can be a model id goes upstream.
      if (!MODEL_ID.test(modelId)) {
        throw new GatewayError(
          404,
          'not_found_error',
          GatewayErrorCode.MODEL_ID_INVALID,
          `"${modelId.slice(0, 100)}" is not a model id (letters, digits and . _ : @ - , starting with a letter or digit). Send a model id such as claude-sonnet-4-6, or GET /v1/models for the list.`,
        );
      }
      const path = `/v1/models/${encodeURIComponent(modelId)}${queryOf(request.url)}`;
      return this.passThrough(request, reply, 'GET', path, null);
    });
    app.get('/v1/me/usage', selfRoute, (request, reply) =>
      this.selfService.meUsage(this.admission(request), request.query, reply),
    );
    app.get('/v1/me/quota', selfRoute, (request, reply) => this.selfService.meQuota(this.admission(request), reply));
    // For load balancers and uptime checks; says nothing about the configuration.
    app.get('/health', (_request, reply) => {
      reply
        .headers(this.admissions.defaultLimitHeaders())
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

  // ------------------------------------------------------------------ handlers

  /** Token counting and the model list: authenticated, rate-limited and forwarded, but not metered. */
  private async passThrough(
    request: FastifyRequest,
    reply: FastifyReply,
    method: 'GET' | 'POST',
    path: string,
    body: Buffer | null,
  ): Promise<void> {
    const admission = this.admission(request);
    const upstreamKey = this.admissions.admitPassThrough(admission, method, body);
    await this.forwarder.passThrough(admission.limitHeaders, upstreamKey, method, path, request.headers, body, reply);
  }

  // ------------------------------------------------------------------ errors

  private sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
    const request = reply.request;
    if (this.closing && error.status >= 500) error = withHeaders(error, { connection: 'close' });
    // Refused before its body was read: close the connection rather than read (and throw away) the rest of it.
    if (declaresBody(request.raw) && !request.raw.complete) {
      error = withHeaders(error, { connection: 'close' });
    }
    const admission = this.admitted.get(request);
    if (!NOT_REFUSALS.has(error.code)) {
      this.exchanges?.refused(reply.raw, error.code, admission?.caller.userId ?? error.subject?.userId ?? null);
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
        ...(!admission
          ? this.admissions.defaultLimitHeaders()
          : admission.limitHeaders === RATE_NOT_YET_KNOWN
            ? this.admissions.peekHeaders(admission.caller)
            : admission.limitHeaders),
        'x-should-retry': RETRYABLE.has(error.code) ? 'true' : 'false',
        ...error.headers,
        [OVERHEAD_HEADER]: round2(reply.elapsedTime),
      })
      .send({ type: 'error', error: { type: error.type, message: error.message }, code: error.code });
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
      ...this.admissions.defaultLimitHeaders(),
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
