import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { OVERHEAD_HEADER } from '../../contract/index.js';
import type { OpsEventMap, OpsEvents } from '../../ops/events.js';

/** The gateway's refusal codes as the stable reason words of `gateway.refused` (and of the metrics' labels). */
export function refusalReason(code: string): string {
  if (code.startsWith('GATEWAY_')) code = code.slice('GATEWAY_'.length);
  if (/^(KEY_|USER_|SCOPE_)/.test(code)) return 'auth';
  switch (code) {
    case 'QUOTA_EXCEEDED':
      return 'quota';
    case 'RATE_LIMITED':
      return 'rate_limit';
    case 'STREAMS_EXHAUSTED':
      return 'concurrency';
    case 'STORAGE_FULL':
      return 'storage_full';
    case 'SHUTTING_DOWN':
      return 'shutting_down';
    case 'UPSTREAM_KEY_MISSING':
      return 'upstream_key_missing';
    case 'MODEL_UNPRICED':
      return 'model_unpriced';
    default:
      return 'invalid_request';
  }
}

/**
 * Watches each gateway request from its arrival to its last byte and reports it as `gateway.exchange`; counts the
 * streams open right now. The gateway calls watch() for its own routes and refused() when it says no.
 */
export class ExchangeWatch {
  private readonly open = new Set<ServerResponse>();
  private readonly refusedAnswers = new WeakSet<ServerResponse>();

  constructor(private readonly ops: OpsEvents) {}

  watch(raw: ServerResponse, model: () => string | null): void {
    const startedAt = performance.now();
    this.open.add(raw);
    captureHeaders(raw);
    raw.once('close', () => {
      this.open.delete(raw);
      const refused = this.refusedAnswers.has(raw);
      const status = raw.statusCode;
      const overhead = Number(headerOf(raw, OVERHEAD_HEADER));
      let outcome: OpsEventMap['gateway.exchange']['outcome'];
      if (!raw.writableFinished) outcome = 'client_left';
      else if (refused) outcome = 'refused';
      else if (status < 400) outcome = 'ok';
      else if (status >= 500 || status === 429) outcome = 'upstream_error';
      else outcome = 'client_error';
      this.ops.emit('gateway.exchange', {
        status,
        model: model(),
        outcome,
        stream: isStream(raw),
        durationMs: performance.now() - startedAt,
        overheadMs: refused || !Number.isFinite(overhead) ? null : overhead,
      });
    });
  }

  /** The gateway refused this request itself (auth, quota, rate, storage...): not the upstream's doing. */
  refused(raw: ServerResponse, code: string, userId: string | null): void {
    this.refusedAnswers.add(raw);
    this.ops.emit('gateway.refused', { reason: refusalReason(code), userId });
  }

  /** Streamed answers being sent right now. */
  openStreams(): number {
    let count = 0;
    for (const raw of this.open) if (raw.headersSent && isStream(raw)) count++;
    return count;
  }
}

const written = new WeakMap<ServerResponse, Record<string, unknown>>();

/**
 * Node keeps no copy of headers given to writeHead() when none were set before (the forwarder's path): remember
 * them, so that the content type and the overhead header can be read after the answer.
 */
function captureHeaders(raw: ServerResponse): void {
  const writeHead = raw.writeHead.bind(raw) as (...args: unknown[]) => ServerResponse;
  raw.writeHead = (...args: unknown[]) => {
    const headers = args.find((arg, index) => index > 0 && typeof arg === 'object' && arg !== null);
    if (headers && !Array.isArray(headers)) {
      const lower: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(headers)) lower[name.toLowerCase()] = value;
      written.set(raw, lower);
    }
    return writeHead(...args);
  };
}

function headerOf(raw: ServerResponse, name: string): unknown {
  return raw.getHeader(name) ?? written.get(raw)?.[name.toLowerCase()];
}

function isStream(raw: ServerResponse): boolean {
  const type = headerOf(raw, 'content-type');
  return typeof type === 'string' && /^\s*text\/event-stream/i.test(type);
}
