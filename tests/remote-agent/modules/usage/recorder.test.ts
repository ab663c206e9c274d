import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../../../remote-agent/src/db/database.js';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import {
  RecorderClosedError,
  UsageRecorder,
  type UsageEvent,
} from '../../../../remote-agent/src/modules/usage/recorder.js';
import { HOUR_MS } from '../../../../remote-agent/src/modules/usage/time.js';
import { tempDb, usageEvent, type TempDb } from './helpers.js';

let t: TempDb;
let quotas: QuotaService;
let recorder: UsageRecorder;
const prices = new PriceTable();
const logger = { warn: vi.fn(), error: vi.fn() };

beforeEach(() => {
  t = tempDb();
  quotas = new QuotaService({ db: t.db });
  logger.warn.mockClear();
  logger.error.mockClear();
  recorder = new UsageRecorder({ db: t.db, prices, quotas, logger });
});

afterEach(async () => {
  await recorder.close();
  t.cleanup();
});

interface RollupRow {
  bucket: number;
  user_id: string;
  key_id: string;
  model: string;
  provider: string;
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_creation_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
}

/** The rollup rows that `events` should produce, computed the slow and obvious way. */
function expectedRollup(
  events: UsageEvent[],
  bucketMs: number,
): Map<string, Omit<RollupRow, 'cost_usd'> & { cost: number }> {
  const cells = new Map<string, Omit<RollupRow, 'cost_usd'> & { cost: number }>();
  for (const e of events) {
    const bucket = Math.floor(e.startedAt / bucketMs) * bucketMs;
    const id = [bucket, e.userId ?? '', e.keyId ?? '', e.model, e.provider].join('|');
    const cell = cells.get(id) ?? {
      bucket,
      user_id: e.userId ?? '',
      key_id: e.keyId ?? '',
      model: e.model,
      provider: e.provider,
      requests: 0,
      errors: 0,
      input_tokens: 0,
      output_tokens: 0,
      cache_creation_tokens: 0,
      cache_read_tokens: 0,
      cost: 0,
    };
    cell.requests += 1;
    cell.errors += e.status === 'error' || e.status === 'timeout' ? 1 : 0;
    cell.input_tokens += e.inputTokens;
    cell.output_tokens += e.outputTokens;
    cell.cache_creation_tokens += e.cacheCreationTokens;
    cell.cache_read_tokens += e.cacheReadTokens;
    cell.cost += prices.cost(e.model, e);
    cells.set(id, cell);
  }
  return cells;
}

function expectRollupMatches(table: 'usage_hourly' | 'usage_daily', events: UsageEvent[], bucketMs: number): void {
  const rows = t.db.prepare(`SELECT * FROM ${table}`).all() as RollupRow[];
  const expected = expectedRollup(events, bucketMs);
  expect(rows).toHaveLength(expected.size);
  for (const row of rows) {
    const want = expected.get([row.bucket, row.user_id, row.key_id, row.model, row.provider].join('|'));
    expect(want, `unexpected rollup cell ${JSON.stringify(row)}`).toBeDefined();
    const { cost, ...counts } = want!;
    const { cost_usd, ...rowCounts } = row;
    expect(rowCounts).toEqual(counts);
    expect(cost_usd).toBeCloseTo(cost, 9);
  }
}

describe('UsageRecorder', () => {
  it('commits a row with its cost and answers its id', async () => {
    const event = usageEvent({
      inputTokens: 1000,
      outputTokens: 500,
      cacheCreationTokens: 2000,
      cacheReadTokens: 4000,
    });
    const recorded = await recorder.record(event);
    // Sonnet 4.5: 1000 * 3 + 500 * 15 + 2000 * 3.75 + 4000 * 0.3, per million.
    expect(recorded.costUsd).toBeCloseTo(0.0192, 12);
    // Another connection sees it: it is committed, not only written.
    const other = new Database(t.file, { readonly: true });
    try {
      const row = other.prepare('SELECT * FROM usage_events WHERE id = ?').get(recorded.id) as Record<string, unknown>;
      expect(row).toMatchObject({
        request_id: 'req_1',
        user_id: 'u_aaaaaaaaaa',
        key_id: 'k_aaaaaaaaaa',
        model: 'claude-sonnet-4-5-20250929',
        input_tokens: 1000,
        output_tokens: 500,
        cache_creation_tokens: 2000,
        cache_read_tokens: 4000,
        status: 'success',
        http_status: 200,
        started_at: event.startedAt,
        ended_at: event.endedAt,
      });
      expect(row.cost_usd).toBeCloseTo(0.0192, 12);
    } finally {
      other.close();
    }
  });

  it('writes many concurrent events, every row and the exact hourly and daily sums', async () => {
    const base = Date.UTC(2026, 10, 10, 22, 0, 0);
    const models = ['claude-sonnet-4-5-20250929', 'claude-opus-4-5-20251101', 'claude-haiku-4-5', 'unpriced-model'];
    const statuses = ['success', 'success', 'error', 'timeout', 'client_abort'] as const;
    const events = Array.from({ length: 600 }, (_, i) =>
      usageEvent({
        requestId: `req_${i}`,
        userId: i % 7 === 0 ? null : `u_${String(i % 3).repeat(10)}`,
        keyId: i % 7 === 0 ? null : `k_${String(i % 5).repeat(10)}`,
        model: models[i % models.length]!,
        status: statuses[i % statuses.length]!,
        inputTokens: 10 + i,
        outputTokens: 3 * i,
        cacheCreationTokens: i % 4 === 0 ? 1000 : 0,
        cacheReadTokens: i % 3 === 0 ? 5000 + i : 0,
        // Spread over four hours that cross a UTC midnight.
        startedAt: base + ((i * 97_000) % (4 * HOUR_MS)),
      }),
    );
    const results = await Promise.all(events.map((e) => recorder.record(e)));

    expect(new Set(results.map((r) => r.id)).size).toBe(events.length);
    const stored = t.db.prepare('SELECT id, request_id, cost_usd FROM usage_events').all() as Array<{
      id: number;
      request_id: string;
      cost_usd: number;
    }>;
    expect(stored).toHaveLength(events.length);
    const byRequest = new Map(stored.map((row) => [row.request_id, row]));
    events.forEach((event, i) => {
      expect(byRequest.get(event.requestId!)?.id).toBe(results[i]!.id);
      expect(results[i]!.costUsd).toBeCloseTo(prices.cost(event.model, event), 12);
    });
    expectRollupMatches('usage_hourly', events, HOUR_MS);
    expectRollupMatches('usage_daily', events, 24 * HOUR_MS);
    // A model without a price is metered at cost 0 and named once in the log.
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]![0]).toEqual({ model: 'unpriced-model' });
  });

  it('adds on to the rollups across batches', async () => {
    const first = [usageEvent({ inputTokens: 10 }), usageEvent({ inputTokens: 20 })];
    await Promise.all(first.map((e) => recorder.record(e)));
    const second = [usageEvent({ inputTokens: 30 }), usageEvent({ inputTokens: 40, status: 'error' })];
    await Promise.all(second.map((e) => recorder.record(e)));
    expectRollupMatches('usage_hourly', [...first, ...second], HOUR_MS);
    expectRollupMatches('usage_daily', [...first, ...second], 24 * HOUR_MS);
  });

  it('counts committed usage towards quotas at once', async () => {
    const now = Date.now();
    quotas.set('user', 'u_aaaaaaaaaa', [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    expect(quotas.check('u_aaaaaaaaaa', 'k_aaaaaaaaaa').ok).toBe(true);
    await recorder.record(usageEvent({ startedAt: now, inputTokens: 600, outputTokens: 300, cacheReadTokens: 100 }));
    expect(quotas.check('u_aaaaaaaaaa', 'k_aaaaaaaaaa').ok).toBe(false);
  });

  it('rejects only the event that cannot be written, logs it, and keeps the others', async () => {
    const good = usageEvent({ requestId: 'good' });
    // provider is NOT NULL in the table: this row cannot be written.
    const bad = usageEvent({ requestId: 'bad', provider: null as unknown as string });
    const [goodResult, badResult] = await Promise.allSettled([recorder.record(good), recorder.record(bad)]);
    expect(goodResult.status).toBe('fulfilled');
    expect(badResult.status).toBe('rejected');
    expect(t.db.prepare('SELECT request_id FROM usage_events').pluck().all()).toEqual(['good']);
    expect(logger.error).toHaveBeenCalledWith(
      expect.objectContaining({ requestIds: ['bad'] }),
      'could not write usage rows',
    );
    expectRollupMatches('usage_hourly', [good], HOUR_MS);
  });

  it('rejects every waiting event when the database is gone, without throwing', async () => {
    const pending = recorder.record(usageEvent());
    t.db.close();
    await expect(pending).rejects.toThrow(/database connection is not open/);
    expect(logger.error).toHaveBeenCalled();
  });

  it('commits what is queued on close and refuses events afterwards', async () => {
    const pending = recorder.record(usageEvent());
    await recorder.close();
    expect(t.db.prepare('SELECT COUNT(*) FROM usage_events').pluck().get()).toBe(1);
    await expect(pending).resolves.toMatchObject({ id: 1 });
    await expect(recorder.record(usageEvent())).rejects.toBeInstanceOf(RecorderClosedError);
  });

  it('keeps a committed row when the process is killed with SIGKILL right after', async () => {
    const recorderModule = resolve(import.meta.dirname, '../../../../remote-agent/src/modules/usage/recorder.ts');
    const root = resolve(import.meta.dirname, '../../../../remote-agent/src');
    const event = usageEvent({ requestId: 'req_killed', inputTokens: 1234, cacheReadTokens: 99 });
    t.db.close();
    const script = `
      const { openDatabase } = await import(${JSON.stringify(`${root}/db/database.ts`)});
      const { PriceTable } = await import(${JSON.stringify(`${root}/modules/usage/prices.ts`)});
      const { QuotaService } = await import(${JSON.stringify(`${root}/modules/usage/quotas.ts`)});
      const { UsageRecorder } = await import(${JSON.stringify(recorderModule)});
      const db = openDatabase(${JSON.stringify(t.file)});
      const recorder = new UsageRecorder({ db, prices: new PriceTable(), quotas: new QuotaService({ db }) });
      const { id } = await recorder.record(${JSON.stringify(event)});
      process.stdout.write('committed ' + id + '\\n');
      setInterval(() => undefined, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: resolve(import.meta.dirname, '../../../..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const id = await new Promise<number>((done, fail) => {
      child.stdout.on('data', (data: Buffer) => {
        const match = /committed (\d+)/.exec(data.toString());
        if (match) done(Number(match[1]));
      });
      child.once('exit', (code) => fail(new Error(`recorder process exited with ${code}`)));
    });
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;

    t.db = openDatabase(t.file);
    const row = t.db
      .prepare('SELECT request_id, input_tokens, cache_read_tokens FROM usage_events WHERE id = ?')
      .get(id);
    expect(row).toEqual({ request_id: 'req_killed', input_tokens: 1234, cache_read_tokens: 99 });
    expect(t.db.prepare('SELECT requests, input_tokens FROM usage_daily').get()).toEqual({
      requests: 1,
      input_tokens: 1234,
    });
  }, 30_000);
});
