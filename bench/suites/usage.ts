import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageSummaryQuery, type UsageGroupBy } from '../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../remote-agent/src/db/database.js';
import { PriceTable } from '../../remote-agent/src/modules/usage/prices.js';
import { UsageQueries } from '../../remote-agent/src/modules/usage/queries.js';
import { QuotaService } from '../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder, type UsageEvent } from '../../remote-agent/src/modules/usage/recorder.js';
import { DAY_MS, HOUR_MS, startOfDay, startOfHour } from '../../remote-agent/src/modules/usage/time.js';
import { median, round, type Figure, type Suite } from '../suite.js';

// Fewer rows for a quick try: SLOTDECK_BENCH_USAGE_ROWS=1000000 npm run bench -- usage
const ROWS = Number(process.env.SLOTDECK_BENCH_USAGE_ROWS ?? 10_000_000);
const DAYS = 60;
const USERS = 200;
const MODELS = [
  'claude-opus-4-1-20250805',
  'claude-opus-4-5-20251101',
  'claude-sonnet-4-20250514',
  'claude-sonnet-4-5-20250929',
  'claude-3-7-sonnet-20250219',
  'claude-haiku-4-5-20251001',
  'claude-3-5-haiku-20241022',
  'claude-opus-4-20250514',
  'claude-sonnet-4-5',
  'claude-haiku-4-5',
];
const INSERT_CHUNK = 1_000_000;
const DASHBOARD_RUNS = 20;
/** The raw aggregation takes seconds a run: one run each keeps the suite within a few minutes. */
const RAW_RUNS = 1;
const INGEST_SECONDS = 3;
const INGEST_CALLERS = 200;

const userId = (n: number): string => `u_${n.toString(36).padStart(10, '0')}`;
const keyId = (n: number): string => `k_${n.toString(36).padStart(10, '0')}`;

/** Users, one key each (every fifth user a second one), and the models with their prices, for the SQL generator. */
function seedReference(db: Db, prices: PriceTable): void {
  const now = new Date().toISOString();
  const addUser = db.prepare(
    `INSERT INTO users (id, username, role, active, created_at, updated_at) VALUES (?, ?, 'member', 1, ?, ?)`,
  );
  const addKey = db.prepare(
    `INSERT INTO api_keys (id, user_id, name, hash, prefix, scopes, created_at)
     VALUES (?, ?, ?, randomblob(32), ?, 'gateway', ?)`,
  );
  db.exec(`
    CREATE TEMP TABLE bench_keys (idx INTEGER PRIMARY KEY, user_id TEXT NOT NULL, key_id TEXT NOT NULL);
    CREATE TEMP TABLE bench_models (idx INTEGER PRIMARY KEY, model TEXT NOT NULL, input REAL, output REAL,
      cache_write REAL, cache_read REAL);
  `);
  const addBenchKey = db.prepare('INSERT INTO temp.bench_keys VALUES (?, ?, ?)');
  const addBenchModel = db.prepare('INSERT INTO temp.bench_models VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    let keys = 0;
    for (let u = 0; u < USERS; u += 1) {
      addUser.run(userId(u), `user${u}`, now, now);
      for (let k = 0; k < (u % 5 === 0 ? 2 : 1); k += 1) {
        addKey.run(keyId(keys), userId(u), `key ${k}`, `sk_user_${keys}`, Date.now());
        addBenchKey.run(keys, userId(u), keyId(keys));
        keys += 1;
      }
    }
    MODELS.forEach((model, i) => {
      const p = prices.price(model)!;
      addBenchModel.run(i, model, p.input, p.output, p.cacheWrite, p.cacheRead);
    });
  })();
}

/**
 * Fills usage_events with generated rows, evenly spread over the last DAYS days, in SQL (a recursive counter
 * joined with the users' keys and the models): far faster than binding ten million rows from JavaScript.
 */
function bulkInsert(db: Db, firstMs: number, log: (message: string) => void): void {
  const keyCount = db.prepare('SELECT COUNT(*) FROM temp.bench_keys').pluck().get() as number;
  const spacing = (DAYS * DAY_MS) / ROWS;
  const insert = db.prepare(`
    WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i < ?),
    -- Multiplicative hashing, high bits: every key meets every model on every day, as with real traffic.
    gen AS (
      SELECT i, ((i * 2654435761) >> 20) % ${keyCount} AS k, ((i * 2246822519) >> 22) % ${MODELS.length} AS m,
        100 + (i * 7919) % 20000 AS n_in, (i * 104729) % 4000 AS n_out,
        CASE WHEN i % 5 = 0 THEN 2000 ELSE 0 END AS n_cw,
        CASE WHEN i % 3 = 0 THEN 10000 + i % 5000 ELSE 0 END AS n_cr,
        ${firstMs} + CAST(i * ${spacing} AS INTEGER) AS started
      FROM seq
    )
    INSERT INTO usage_events (request_id, user_id, key_id, slot_id, model, provider, input_tokens, output_tokens,
      cache_creation_tokens, cache_read_tokens, cost_usd, status, error_type, http_status, latency_ms, ttfb_ms,
      started_at, ended_at)
    SELECT 'req_' || i, bk.user_id, bk.key_id, NULL, bm.model, 'anthropic', n_in, n_out, n_cw, n_cr,
      (n_in * bm.input + n_out * bm.output + n_cw * bm.cache_write + n_cr * bm.cache_read) / 1e6,
      CASE WHEN i % 50 = 0 THEN 'error' ELSE 'success' END,
      CASE WHEN i % 50 = 0 THEN 'overloaded_error' ELSE NULL END,
      CASE WHEN i % 50 = 0 THEN 529 ELSE 200 END,
      800 + i % 9000, 200 + i % 700, started, started + 800 + i % 9000
    FROM gen JOIN temp.bench_keys bk ON bk.idx = gen.k JOIN temp.bench_models bm ON bm.idx = gen.m
  `);
  for (let start = 0; start < ROWS; start += INSERT_CHUNK) {
    db.transaction(() => insert.run(start, Math.min(ROWS, start + INSERT_CHUNK) - 1))();
    log(`inserted ${((start + INSERT_CHUNK) / 1e6).toFixed(0)}M of ${ROWS / 1e6}M rows`);
  }
}

const SUMS = `COUNT(*), SUM(status IN ('error', 'timeout')), SUM(input_tokens), SUM(output_tokens),
  SUM(cache_creation_tokens), SUM(cache_read_tokens), SUM(cost_usd)`;

/** Rollups of the generated rows, built the way a long-running agent would have them, a day at a time. */
function buildRollups(db: Db, firstMs: number, log: (message: string) => void): void {
  const hourly = db.prepare(`
    INSERT INTO usage_hourly SELECT (started_at / ${HOUR_MS}) * ${HOUR_MS}, user_id, key_id, model, provider, ${SUMS}
    FROM usage_events WHERE started_at >= ? AND started_at < ? GROUP BY 1, 2, 3, 4, 5`);
  for (let day = startOfDay(firstMs); day < firstMs + (DAYS + 1) * DAY_MS; day += DAY_MS) {
    db.transaction(() => hourly.run(day, day + DAY_MS))();
  }
  log('built the hourly rollups');
  db.exec(`
    INSERT INTO usage_daily SELECT (bucket / ${DAY_MS}) * ${DAY_MS}, user_id, key_id, model, provider, SUM(requests),
      SUM(errors), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), SUM(cache_read_tokens),
      SUM(cost_usd)
    FROM usage_hourly GROUP BY 1, 2, 3, 4, 5`);
  log('built the daily rollups');
}

function timed(run: () => unknown): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

/** The same 30-day aggregation computed from the raw rows: what a gateway without rollups does. */
function rawAggregation(db: Db, groupBy: UsageGroupBy, from: number, to: number): () => unknown {
  const column = groupBy === 'user' ? 'user_id' : 'model';
  const statement = db.prepare(`
    SELECT (started_at / ${DAY_MS}) * ${DAY_MS} AS bucket, ${column} AS grp, ${SUMS}
    FROM usage_events WHERE started_at >= ? AND started_at < ? GROUP BY bucket, grp`);
  return () => statement.all(from, to);
}

async function measureIngest(recorder: UsageRecorder, seconds: number): Promise<number> {
  let committed = 0;
  let n = 0;
  const deadline = performance.now() + seconds * 1000;
  const caller = async (): Promise<void> => {
    while (performance.now() < deadline) {
      n += 1;
      await recorder.record(benchEvent(n));
      committed += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: INGEST_CALLERS }, () => caller()));
  return committed / ((performance.now() - started) / 1000);
}

function benchEvent(n: number): UsageEvent {
  const now = Date.now();
  const key = (n * 2654435761) % USERS;
  return {
    requestId: `req_live_${n}`,
    userId: userId(key),
    keyId: keyId(key),
    slotId: null,
    model: MODELS[n % MODELS.length]!,
    provider: 'anthropic',
    inputTokens: 100 + (n % 5000),
    outputTokens: n % 2000,
    cacheCreationTokens: n % 5 === 0 ? 2000 : 0,
    cacheReadTokens: n % 3 === 0 ? 10_000 : 0,
    status: 'success',
    errorType: null,
    httpStatus: 200,
    latencyMs: 1200,
    ttfbMs: 300,
    startedAt: now - 1200,
    endedAt: now,
  };
}

/** Baseline for ingest: each row and its two rollup upserts in a transaction of their own. */
function measurePerRowTransactions(db: Db, prices: PriceTable, seconds: number): number {
  const insert = db.prepare(`
    INSERT INTO usage_events (request_id, user_id, key_id, slot_id, model, provider, input_tokens, output_tokens,
      cache_creation_tokens, cache_read_tokens, cost_usd, status, error_type, http_status, latency_ms, ttfb_ms,
      started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const upsert = (table: string) =>
    db.prepare(`
      INSERT INTO ${table} VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?)
      ON CONFLICT (bucket, user_id, key_id, model, provider) DO UPDATE SET requests = requests + 1,
        input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
        cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, cost_usd = cost_usd + excluded.cost_usd`);
  const hourly = upsert('usage_hourly');
  const daily = upsert('usage_daily');
  const write = db.transaction((e: UsageEvent) => {
    const cost = prices.cost(e.model, e);
    insert.run(
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
      cost,
      e.status,
      e.errorType,
      e.httpStatus,
      e.latencyMs,
      e.ttfbMs,
      e.startedAt,
      e.endedAt,
    );
    const cells = [
      e.userId,
      e.keyId,
      e.model,
      e.provider,
      e.inputTokens,
      e.outputTokens,
      e.cacheCreationTokens,
      e.cacheReadTokens,
      cost,
    ] as const;
    hourly.run(startOfHour(e.startedAt), ...cells);
    daily.run(startOfDay(e.startedAt), ...cells);
  });
  let rows = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline) {
    rows += 1;
    write(benchEvent(1_000_000_000 + rows));
  }
  return rows / ((performance.now() - started) / 1000);
}

export const usageSuite: Suite = {
  async run(log) {
    const dir = mkdtempSync(join(tmpdir(), 'sd-bench-usage-'));
    try {
      const file = join(dir, 'agent.db');
      const db = openDatabase(file);
      const prices = new PriceTable();
      // Loading only: the agent itself runs synchronous=NORMAL, restored before anything is measured.
      db.pragma('synchronous = OFF');
      db.pragma('cache_size = -262144');
      const now = Date.now();
      const firstMs = now - DAYS * DAY_MS;
      const loadStarted = performance.now();
      seedReference(db, prices);
      bulkInsert(db, firstMs, log);
      buildRollups(db, firstMs, log);
      db.pragma('wal_checkpoint(TRUNCATE)');
      // Measure with the settings the agent runs with: SQLite's default page cache (2 MB) and synchronous=NORMAL.
      db.pragma('synchronous = NORMAL');
      db.pragma('cache_size = -2000');
      const counts = db
        .prepare(`SELECT (SELECT COUNT(*) FROM usage_hourly) AS hourly, (SELECT COUNT(*) FROM usage_daily) AS daily`)
        .get() as { hourly: number; daily: number };
      const loadS = (performance.now() - loadStarted) / 1000;
      log(
        `loaded ${ROWS / 1e6}M rows in ${loadS.toFixed(0)} s (${(statSync(file).size / 2 ** 30).toFixed(2)} GiB; ` +
          `${counts.hourly} hourly and ${counts.daily} daily rollup rows)`,
      );

      const queries = new UsageQueries({ db, archiveFile: join(dir, 'usage-archive.db') });
      const to = startOfDay(now) + DAY_MS;
      const from = to - 30 * DAY_MS;
      const dashboard: Record<string, number> = {};
      const raw: Record<string, number> = {};
      for (const groupBy of ['user', 'model'] as const) {
        const query = UsageSummaryQuery.parse({
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          bucket: 'day',
          groupBy,
        });
        const summary = queries.summary(query);
        const runs = Array.from({ length: DASHBOARD_RUNS }, () => timed(() => queries.summary(query)));
        dashboard[groupBy] = median(runs);
        log(
          `summary by ${groupBy}: median ${dashboard[groupBy].toFixed(1)} ms over ${DASHBOARD_RUNS} runs ` +
            `(${summary.totals.requests} requests, ${summary.groups.length} groups, ${summary.series.length} points)`,
        );
        const aggregate = rawAggregation(db, groupBy, from, to);
        raw[groupBy] = median(Array.from({ length: RAW_RUNS }, () => timed(aggregate)));
        log(
          `same aggregation from the raw rows by ${groupBy}: median ${raw[groupBy].toFixed(0)} ms over ${RAW_RUNS} runs`,
        );
      }
      const dashboardMs = Math.max(dashboard.user!, dashboard.model!);
      const rawMs = Math.max(raw.user!, raw.model!);

      const quotas = new QuotaService({ db });
      // Quotas on a quarter of the users: the recorder also feeds their in-memory counters.
      for (let u = 0; u < USERS; u += 4)
        quotas.set('user', userId(u), [{ window: 'day', maxTokens: 1e12, maxCostUsd: null }]);
      const recorder = new UsageRecorder({ db, prices, quotas });
      log(`ingest: ${INGEST_CALLERS} concurrent callers of UsageRecorder.record() for ${INGEST_SECONDS} s`);
      const ingest = await measureIngest(recorder, INGEST_SECONDS);
      await recorder.close();
      log(`ingest: ${ingest.toFixed(0)} rows/s committed; baseline: one transaction per row for ${INGEST_SECONDS} s`);
      const perRow = measurePerRowTransactions(db, prices, INGEST_SECONDS);
      log(`baseline: ${perRow.toFixed(0)} rows/s`);
      db.close();

      const metrics: Record<string, Figure> = {
        dashboard_query_ms_10m_rows: {
          value: round(dashboardMs, 1),
          unit: 'ms',
          goal: '<= 100',
          baseline: { value: round(rawMs, 0), unit: 'ms', what: 'the same 30-day aggregation over the raw rows' },
          ratio: round(dashboardMs / rawMs, 4),
          detail: {
            by_user_ms: round(dashboard.user!, 1),
            by_model_ms: round(dashboard.model!, 1),
            raw_by_user_ms: round(raw.user!, 0),
            raw_by_model_ms: round(raw.model!, 0),
            rows: ROWS,
            days: DAYS,
            users: USERS,
            models: MODELS.length,
            hourly_rollup_rows: counts.hourly,
            daily_rollup_rows: counts.daily,
          },
        },
        ingest_rows_per_s: {
          value: Math.round(ingest),
          unit: 'rows/s',
          baseline: {
            value: Math.round(perRow),
            unit: 'rows/s',
            what: 'one transaction per row (row + 2 rollup upserts)',
          },
          ratio: round(ingest / perRow, 2),
          detail: { callers: INGEST_CALLERS, seconds: INGEST_SECONDS, synchronous: 'NORMAL (WAL)' },
        },
      };
      return metrics;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
