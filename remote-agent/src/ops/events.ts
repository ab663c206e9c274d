import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

/**
 * What the agent's parts report for operations (issue 13): the gateway, slots, terminals, the supervisor, storage
 * and backups emit here; metrics (modules/metrics) and alerts (modules/alerts) listen. Producers never wait on a
 * listener and a listener's exception never reaches a producer (a metrics bug must not fail a gateway request).
 */
export interface OpsEventMap {
  /** One gateway request answered (or abandoned). `model` is the request's model as sent, capped by the listener. */
  'gateway.exchange': {
    status: number;
    model: string | null;
    /** ok: 2xx with its usage recorded; refused: the gateway said no (auth, quota, rate, storage); upstream_error:
     * the upstream failed or answered 5xx/429; client_left: the client went away before the end. */
    outcome: 'ok' | 'refused' | 'upstream_error' | 'client_error' | 'client_left';
    stream: boolean;
    /** From the request's arrival to its last byte. */
    durationMs: number;
    /** Time spent in the gateway itself (total minus upstream time); null when the upstream was not reached. */
    overheadMs: number | null;
  };
  /** A request refused before the upstream; reason is a stable word (quota, rate_limit, concurrency, storage_full, auth). */
  'gateway.refused': { reason: string; userId: string | null };
  /** The upstream answered (any status) or failed to (status null). */
  'upstream.answer': { status: number | null; error: string | null; at: number };
  /** A usage row was committed. */
  'usage.recorded': {
    userId: string | null;
    model: string;
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens: number;
    cacheWriteTokens: number;
    costMicroUsd: number;
  };
  /** A slot's state changed (as the slot view reports it). */
  'slot.state': { slotId: string; name: string; state: string; previous: string | null };
  /** The supervisor restarted a slot's process (a crash, not an admin's restart). */
  'slot.restarted': { slotId: string; name: string; restarts: number };
  /** Bytes sent to terminal viewers of a slot. */
  'terminal.output': { slotId: string; bytes: number };
  /** A write transaction committed; ms from begin to commit. */
  'db.commit': { ms: number };
  /** The data dir could not be written (full: true) or can be again (full: false). */
  storage: { full: boolean; path: string; error: string | null };
  /** Something healed itself (PM2 restarted a slot, reconciliation fixed a row, the daemon was reconnected...). */
  recovery: { kind: string; target: string | null; message: string };
  /** A backup run ended. */
  backup: { ok: boolean; at: number; file: string | null; error: string | null; durationMs: number };
}

export type OpsEventName = keyof OpsEventMap;

export class OpsEvents {
  readonly #emitter = new EventEmitter();
  readonly #logger: Pick<Logger, 'warn'> | null;

  constructor(logger?: Pick<Logger, 'warn'>) {
    this.#logger = logger ?? null;
    // Metrics, alerts and tests each listen to several events; there is no leak to warn about.
    this.#emitter.setMaxListeners(100);
  }

  emit<E extends OpsEventName>(event: E, payload: OpsEventMap[E]): void {
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (value: OpsEventMap[E]) => void)(payload);
      } catch (error) {
        this.#logger?.warn({ err: error, event }, 'an operations listener failed');
      }
    }
  }

  /** Returns a function that removes the listener. */
  on<E extends OpsEventName>(event: E, listener: (payload: OpsEventMap[E]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }
}
