import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { Agent as UndiciAgent, errors as undiciErrors, type Dispatcher } from 'undici';
import { GatewayErrorCode, OVERHEAD_HEADER, type UsageStatus } from '../../contract/index.js';
import type { AdmittedMessage, Caller, MessagesRequest } from './admission.js';
import type { GatewayDeps, QuotaHold } from './deps.js';
import { GatewayError, withHeaders } from './errors.js';
import { readTopLevelFields } from './request-fields.js';
import { StreamUsageTracker } from './stream-usage.js';
import { headerValue, round2 } from './wire.js';

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

const PROVIDER = 'anthropic';

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

/** Marks the usage row of a stream its client left before upstream said the output count. */
export const CLIENT_ABORT_ESTIMATED = 'client_abort_output_estimated';

function upstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name in headers) {
    if (!forwardedResponseHeader(name)) continue;
    const value = headerValue(headers[name]);
    if (value !== null) picked[name] = value;
  }
  return picked;
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

/** An error as the API sends it inside a stream whose headers are gone. */
const sseError = (error: GatewayError): string =>
  `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: error.type, message: error.message } })}\n\n`;

/** The answer to a request whose usage row could not be committed (the storage monitor now refuses new ones). */
const unrecordedError = (): GatewayError =>
  new GatewayError(
    503,
    'api_error',
    GatewayErrorCode.STORAGE_FULL,
    "The gateway could not record this request's usage (most likely its host's disk is full), so it does not give the answer. Ask your Slotdeck admin to free space on the host (the agent's data dir); the gateway takes requests again by itself once there is room.",
  );

/**
 * The upstream side: one undici pool to upstream, the exchange of each admitted request (passed on chunk by chunk,
 * metered from the stream as it passes, its usage row committed before the last byte), and what happens when a
 * client leaves (read on until the usage is known, bounded).
 */
export class Forwarder {
  /** Requests of /v1/messages on their way (for the gateway's status). */
  inFlight = 0;
  private closing = false;
  private readonly dispatcher: UndiciAgent;
  private readonly upstreamOrigin: string;
  private readonly upstreamPath: string;
  private readonly now: () => number;
  /** Upstream requests still read after their client left (to meter them); stopped when the gateway closes. */
  private readonly departed = new Set<UpstreamAbort>();
  /** Forwarded requests until they are metered: the gateway's close() waits for them. */
  private readonly running = new Set<Promise<void>>();

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
  }

  /** Answers still read for clients that left are cut short: they are metered with what is known so far. */
  stopDeparted(): void {
    this.closing = true;
    for (const abort of this.departed) abort.abort();
  }

  /** Resolves once every request forwarded so far has finished and is metered. */
  async drained(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  /** Forwards an admitted /v1/messages request and meters it; gives back its stream slot and reservation. */
  async messages(
    admitted: AdmittedMessage,
    path: string,
    headers: IncomingHttpHeaders,
    reply: FastifyReply,
    startedAt: number,
  ): Promise<void> {
    const { caller, limitHeaders, request, body, upstreamKey, releaseStream, hold } = admitted;
    this.inFlight += 1;
    let forwarded: Promise<void> | null = null;
    try {
      forwarded = this.forwardMessages({
        caller,
        request,
        path,
        body,
        headers,
        upstreamKey,
        limitHeaders,
        reply,
        startedAt,
        hold,
      });
      this.running.add(forwarded);
      await forwarded;
    } finally {
      if (forwarded) this.running.delete(forwarded);
      this.inFlight -= 1;
      releaseStream?.();
      hold.release();
    }
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
    let heldSearches = 0;
    const holdUsage = (): void => {
      const { inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens, webSearchRequests } = tracker.usage;
      const tokens = inputTokens + outputTokens + cacheCreationTokens + cacheReadTokens;
      // Searches are billed apart from tokens: a change in either moves the cost.
      if (tokens === heldTokens && webSearchRequests === heldSearches) return;
      heldTokens = tokens;
      heldSearches = webSearchRequests;
      hold.set(tokens, this.deps.prices.cost(tracker.usage.model ?? request.model, tracker.usage));
    };
    let requestId: string | null = null;
    let httpStatus: number | null = null;
    let ttfbMs: number | null = null;
    let status: UsageStatus = 'success';
    let errorType: string | null = null;
    let recorded = false;
    /** Resolves true once the usage row is committed, false when it could not be (a full disk, say). */
    const record = (): Promise<boolean> => {
      recorded = true;
      const endedAt = this.now();
      const tier = tracker.usage.serviceTier;
      // Priority tier is billed at rates the price table does not know: the log keeps which requests used it.
      if (tier !== null && tier !== 'standard') {
        this.deps.logger.warn(
          { requestId, userId: caller.userId, keyId: caller.key?.keyId ?? null, serviceTier: tier },
          'upstream served this request on a non-standard service tier; its cost is metered at standard prices',
        );
      }
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
            webSearchRequests: tracker.usage.webSearchRequests,
            status,
            errorType,
            httpStatus,
            latencyMs: endedAt - startedAt,
            ttfbMs,
            startedAt,
            endedAt,
          })
          .then(() => true)
          .catch((error: unknown) => {
            // The log says which request is missing from usage; the caller does not get the answer as a success.
            this.deps.logger.error({ err: error, requestId, userId: caller.userId }, 'usage row not recorded');
            return false;
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
    this.deps.ops?.emit('upstream.answer', { status: upstream.statusCode, error: null, at: this.now() });
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
      const committed = await record();
      if (gone()) return;
      // An answer that is not on record is not given (quotas and metering would silently lose it).
      if (!committed && upstream.statusCode < 400) throw withHeaders(unrecordedError(), limitHeaders);
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
          if (!(await record())) {
            // Not on record, so not completed: an error event, then the stream is cut (no clean end).
            // Destroyed once what was written went out, so the client reads the error before the cut.
            if (gone()) raw.destroy();
            else raw.write(sseError(unrecordedError()), () => raw.destroy());
            return;
          }
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
        raw.write(sseError(failure.error));
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
  async passThrough(
    limitHeaders: Record<string, string>,
    upstreamKey: string,
    method: 'GET' | 'POST',
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer | null,
    reply: FastifyReply,
  ): Promise<void> {
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
    this.deps.ops?.emit('upstream.answer', { status: upstream.statusCode, error: null, at: this.now() });
    reply.hijack();
    reply.raw.writeHead(upstream.statusCode, {
      ...upstreamResponseHeaders(upstream.headers),
      ...limitHeaders,
      'content-length': String(payload.length),
      [OVERHEAD_HEADER]: round2(Math.max(0, reply.elapsedTime - upstreamMs)),
    });
    reply.raw.end(payload);
  }
  private upstreamFailure(error: unknown, clientGone: boolean): { status: UsageStatus; error: GatewayError | null } {
    if (clientGone) return { status: 'client_abort', error: null };
    const timedOut =
      error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.BodyTimeoutError ||
      error instanceof undiciErrors.ConnectTimeoutError;
    this.deps.ops?.emit('upstream.answer', {
      status: null,
      error: timedOut ? 'timeout' : 'unreachable',
      at: this.now(),
    });
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
}
