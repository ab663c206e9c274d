import type { UsageStatus } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import type { OpsEvents } from '../../ops/events.js';
import { isStorageError } from '../../ops/storage.js';
import type { PriceTable } from './prices.js';
import type { QuotaService } from './quotas.js';
import { startOfDay, startOfHour } from './time.js';

/** One metered gateway request. Times are epoch milliseconds. */
export interface UsageEvent {
  requestId: string | null;
  userId: string | null;
  keyId: string | null;
  slotId: string | null;
  model: string;
  provider: string;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  /** The part of cacheCreationTokens written to the 1-hour cache (priced higher); 0 when left out. */
  cacheCreation1hTokens?: number;
  /** Server-side web searches, priced per search into the row's cost; 0 when left out. */
  webSearchRequests?: number;
  status: UsageStatus;
  errorType: string | null;
  httpStatus: number | null;
  latencyMs: number;
  ttfbMs: number | null;
  startedAt: number;
  endedAt: number;
}

export interface RecordedUsage {
  id: number;
  costUsd: number;
}

/** The few logger methods the recorder uses (pino's signature). */
export interface UsageLogger {
  info?(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

interface Pending {
  event: UsageEvent;
  costUsd: number;
  resolve: (recorded: RecordedUsage) => void;
  reject: (error: Error) => void;
}

interface Rollup {
  bucket: number;
  userId: string;
  keyId: string;
  model: string;
  provider: string;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

type RollupParams = [number, string, string, string, string, number, number, number, number, number, number, number];

const upsertSql = (table: 'usage_hourly' | 'usage_daily'): string => `
  INSERT INTO ${table} (bucket, user_id, key_id, model, provider, requests, errors, input_tokens, output_tokens,
    cache_creation_tokens, cache_read_tokens, cost_usd)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (bucket, user_id, key_id, model, provider) DO UPDATE SET
    requests = requests + excluded.requests,
    errors = errors + excluded.errors,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cost_usd = cost_usd + excluded.cost_usd`;

/** A client that hangs up is not a failure of the gateway or upstream: it does not count as an error. */
export const isErrorStatus = (status: UsageStatus): boolean => status === 'error' || status === 'timeout';

/** What the recorder tells when a commit fails: the storage monitor (ops/storage.ts) flips to full on a full disk. */
export interface RecorderStorage {
  reportWriteFailure(error: unknown, source: string): boolean;
}

export class RecorderClosedError extends Error {
  constructor() {
    super('The usage recorder is closed (the agent is shutting down); the request was not metered.');
    this.name = 'RecorderClosedError';
  }
}

/**
 * Writes usage rows and their hourly and daily rollups. Events recorded in the same tick are committed together in
 * one transaction (group commit), which keeps the write cost per request small under load; each record() resolves
 * once its row is committed (WAL with synchronous=NORMAL: it survives the agent being killed).
 */
export class UsageRecorder {
  private readonly db: Db;
  private readonly prices: PriceTable;
  private readonly quotas: QuotaService;
  private readonly logger: UsageLogger | undefined;
  private readonly ops: OpsEvents | undefined;
  private readonly storage: RecorderStorage | undefined;
  private readonly statements;
  private readonly writeBatch: (batch: Pending[]) => number[];
  private queue: Pending[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private closed = false;

  constructor(options: {
    db: Db;
    prices: PriceTable;
    quotas: QuotaService;
    logger?: UsageLogger;
    /** Told about each committed row (usage.recorded) and each commit's time (db.commit), for metrics. */
    ops?: OpsEvents;
    storage?: RecorderStorage;
  }) {
    this.db = options.db;
    this.prices = options.prices;
    this.quotas = options.quotas;
    this.logger = options.logger;
    this.ops = options.ops;
    this.storage = options.storage;
    this.statements = {
      insert: this.db.prepare<
        [
          string | null,
          string | null,
          string | null,
          string | null,
          string,
          string,
          number,
          number,
          number,
          number,
          number,
          string,
          string | null,
          number | null,
          number,
          number | null,
          number,
          number,
        ]
      >(
        `INSERT INTO usage_events (request_id, user_id, key_id, slot_id, model, provider, input_tokens, output_tokens,
          cache_creation_tokens, cache_read_tokens, cost_usd, status, error_type, http_status, latency_ms, ttfb_ms,
          started_at, ended_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      hourly: this.db.prepare<RollupParams>(upsertSql('usage_hourly')),
      daily: this.db.prepare<RollupParams>(upsertSql('usage_daily')),
    };
    const transaction = this.db.transaction((batch: Pending[]) => this.write(batch));
    this.writeBatch = (batch) => {
      const started = performance.now();
      const ids = transaction(batch);
      this.ops?.emit('db.commit', { ms: performance.now() - started });
      return ids;
    };
  }

  /** Meters one request; resolves with the row id and cost once the row is committed, rejects if it could not be. */
  record(event: UsageEvent): Promise<RecordedUsage> {
    if (this.closed) return Promise.reject(new RecorderClosedError());
    return new Promise<RecordedUsage>((resolve, reject) => {
      const pending: Pending = { event, costUsd: 0, resolve, reject };
      try {
        pending.costUsd = this.costOf(event);
      } catch (error) {
        this.fail([pending], error);
        return;
      }
      this.queue.push(pending);
      this.scheduled ??= setImmediate(() => this.commitQueued());
    });
  }

  /** Commits what is queued now instead of at the end of the tick. */
  flush(): Promise<void> {
    this.commitQueued();
    return Promise.resolve();
  }

  /** Commits what is queued and refuses further events. */
  close(): Promise<void> {
    this.closed = true;
    return this.flush();
  }

  private costOf(event: UsageEvent): number {
    // Once per model: a made-up model name on every request must not flood the log. Upstream errors are left out
    // (an unknown model name is refused there), so that the admin's list holds models that were really used.
    if (this.prices.price(event.model) === null && event.status !== 'error' && this.prices.noteUnpriced(event.model)) {
      this.logger?.warn(
        { model: event.model.slice(0, 200) },
        'no price for this model: its usage is metered in tokens at cost 0; add it to gateway.prices',
      );
    }
    return this.prices.cost(event.model, event);
  }

  private commitQueued(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    try {
      this.settle(batch, this.writeBatch(batch));
    } catch (error) {
      // On a full disk every retry would fail the same way.
      if (batch.length === 1 || isStorageError(error)) {
        this.fail(batch, error);
        return;
      }
      // One bad event must not lose the others: retry them one transaction each.
      for (const pending of batch) {
        try {
          this.settle([pending], this.writeBatch([pending]));
        } catch (single) {
          this.fail([pending], single);
        }
      }
    }
  }

  private settle(batch: Pending[], ids: number[]): void {
    batch.forEach((pending, index) => {
      const { event, costUsd } = pending;
      try {
        this.quotas.add({
          userId: event.userId,
          keyId: event.keyId,
          startedAt: event.startedAt,
          totalTokens: event.inputTokens + event.outputTokens + event.cacheCreationTokens + event.cacheReadTokens,
          costUsd,
        });
      } catch (error) {
        // The row is committed; the counters catch up when they are next loaded.
        this.logger?.error({ err: error }, 'could not count a usage row towards its quotas');
      }
      pending.resolve({ id: ids[index]!, costUsd });
      this.ops?.emit('usage.recorded', {
        userId: event.userId,
        model: event.model,
        inputTokens: event.inputTokens,
        outputTokens: event.outputTokens,
        cacheReadTokens: event.cacheReadTokens,
        cacheWriteTokens: event.cacheCreationTokens,
        costMicroUsd: Math.round(costUsd * 1_000_000),
      });
    });
  }

  private fail(batch: Pending[], error: unknown): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    // A full disk is the storage monitor's to report (health, alert); the gateway refuses new requests from now on.
    this.storage?.reportWriteFailure(cause, 'usage rows');
    this.logger?.error(
      { err: cause, requests: batch.length, requestIds: batch.map((p) => p.event.requestId) },
      'could not write usage rows',
    );
    for (const pending of batch) pending.reject(cause);
  }

  /** Runs inside the batch's transaction: the rows, then one upsert per rollup cell the batch touched. */
  private write(batch: Pending[]): number[] {
    const ids: number[] = [];
    const cells = new Map<string, Rollup>();
    for (const { event: e, costUsd } of batch) {
      const result = this.statements.insert.run(
        e.requestId,
        e.userId,
        e.keyId,
        e.slotId,
        e.model,
        e.provider,
        e.inputTokens,
        e.outputTokens,
        e.cacheCreationTokens,
        e.cacheReadTokens,
        costUsd,
        e.status,
        e.errorType,
        e.httpStatus,
        e.latencyMs,
        e.ttfbMs,
        e.startedAt,
        e.endedAt,
      );
      ids.push(Number(result.lastInsertRowid));
      addToCell(cells, 'h', startOfHour(e.startedAt), e, costUsd);
      addToCell(cells, 'd', startOfDay(e.startedAt), e, costUsd);
    }
    for (const [id, cell] of cells) {
      (id.startsWith('h') ? this.statements.hourly : this.statements.daily).run(
        cell.bucket,
        cell.userId,
        cell.keyId,
        cell.model,
        cell.provider,
        cell.requests,
        cell.errors,
        cell.inputTokens,
        cell.outputTokens,
        cell.cacheCreationTokens,
        cell.cacheReadTokens,
        cell.costUsd,
      );
    }
    return ids;
  }
}

function addToCell(cells: Map<string, Rollup>, kind: 'h' | 'd', bucket: number, e: UsageEvent, costUsd: number): void {
  const userId = e.userId ?? '';
  const keyId = e.keyId ?? '';
  const id = `${kind}\u0000${bucket}\u0000${userId}\u0000${keyId}\u0000${e.model}\u0000${e.provider}`;
  const error = isErrorStatus(e.status) ? 1 : 0;
  const cell = cells.get(id);
  if (!cell) {
    cells.set(id, {
      bucket,
      userId,
      keyId,
      model: e.model,
      provider: e.provider,
      requests: 1,
      errors: error,
      inputTokens: e.inputTokens,
      outputTokens: e.outputTokens,
      cacheCreationTokens: e.cacheCreationTokens,
      cacheReadTokens: e.cacheReadTokens,
      costUsd,
    });
    return;
  }
  cell.requests += 1;
  cell.errors += error;
  cell.inputTokens += e.inputTokens;
  cell.outputTokens += e.outputTokens;
  cell.cacheCreationTokens += e.cacheCreationTokens;
  cell.cacheReadTokens += e.cacheReadTokens;
  cell.costUsd += costUsd;
}
