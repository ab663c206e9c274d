import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageSummaryQuery, type UsageGroupBy, type UsageSummary } from '../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../remote-agent/src/db/database.js';
import { PriceTable } from '../../remote-agent/src/modules/usage/prices.js';
import { UsageQueries } from '../../remote-agent/src/modules/usage/queries.js';
import { QuotaService } from '../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder, type UsageEvent } from '../../remote-agent/src/modules/usage/recorder.js';
import { DAY_MS, HOUR_MS, startOfDay, startOfHour } from '../../remote-agent/src/modules/usage/time.js';
import { AgentProcess } from '../../tests/integration/helpers/agent.js';
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
    log(`inserted ${(Math.min(ROWS, start + INSERT_CHUNK) / 1e6).toFixed(1)}M of ${ROWS / 1e6}M rows`);
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

/** The two summaries the panel's Usage view asks for when it shows the last 30 days (stores/usage.ts). */
const DASHBOARD_GROUPS: UsageGroupBy[] = ['model', 'user'];

export const usageSuite: Suite = {
  async run(log) {
    const dir = mkdtempSync(join(tmpdir(), 'sd-bench-usage-'));
    let agent: AgentProcess | null = null;
    try {
      // The agent's own database file in its data dir: the agent started on this dir below serves it.
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
      log(
        `loaded in ${((performance.now() - loadStarted) / 1000).toFixed(0)} s ` +
          `(${(statSync(file).size / 2 ** 30).toFixed(2)} GiB; ${counts.hourly} hourly and ${counts.daily} daily rollup rows)`,
      );

      const to = startOfDay(now) + DAY_MS;
      const from = to - 30 * DAY_MS;
      const raw: Record<string, number> = {};
      for (const groupBy of DASHBOARD_GROUPS) {
        const aggregate = rawAggregation(db, groupBy, from, to);
        raw[groupBy] = median(Array.from({ length: RAW_RUNS }, () => timed(aggregate)));
        log(`the 30-day aggregation by ${groupBy} from the raw rows: ${raw[groupBy].toFixed(0)} ms`);
      }

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

      // The rows are counted where they are, not taken from what the generator meant to insert.
      const rows = db.prepare('SELECT COUNT(*) FROM usage_events').pluck().get() as number;
      const rowsIn30Days = db
        .prepare('SELECT COUNT(*) FROM usage_events WHERE started_at >= ? AND started_at < ?')
        .pluck()
        .get(from, to) as number;
      // The same two summaries computed in this process, without HTTP: tells the query's time from the API's.
      const queries = new UsageQueries({ db, archiveFile: join(dir, 'usage-archive.db') });
      const inProcess = median(
        Array.from({ length: DASHBOARD_RUNS }, () =>
          DASHBOARD_GROUPS.reduce((sum, groupBy) => {
            const query = UsageSummaryQuery.parse({
              from: new Date(from).toISOString(),
              to: new Date(to).toISOString(),
              bucket: 'day',
              groupBy,
            });
            return sum + timed(() => queries.summary(query));
          }, 0),
        ),
      );
      log(`dashboard in process (no HTTP): median ${inProcess.toFixed(1)} ms for both summaries`);
      db.close();

      log(`dashboard: the agent on this database; the Usage view's two 30-day summaries over its admin HTTP API`);
      agent = await AgentProcess.start({ dataDir: dir, env: { SLOTDECK_AGENT_LOG_LEVEL: 'warn' } });
      const summary = async (groupBy: UsageGroupBy): Promise<{ ms: number; body: UsageSummary }> => {
        const query = new URLSearchParams({
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          bucket: 'day',
          groupBy,
        });
        const started = performance.now();
        const response = await agent!.request<UsageSummary>('GET', `/api/v1/usage/summary?${query}`);
        const ms = performance.now() - started;
        if (response.status !== 200) throw new Error(`summary by ${groupBy}: HTTP ${response.status}`);
        return { ms, body: response.body };
      };
      const runs: Array<Record<string, number>> = [];
      for (let i = 0; i < DASHBOARD_RUNS; i++) {
        const run: Record<string, number> = {};
        for (const groupBy of DASHBOARD_GROUPS) {
          const answer = await summary(groupBy);
          // A fast answer must also be the right one: every row of the 30 days counted once.
          if (answer.body.totals.requests !== rowsIn30Days)
            throw new Error(
              `summary by ${groupBy} counts ${answer.body.totals.requests} requests; the database holds ${rowsIn30Days}`,
            );
          run[groupBy] = answer.ms;
        }
        runs.push(run);
      }
      const sums = runs.map((run) => DASHBOARD_GROUPS.reduce((sum, groupBy) => sum + run[groupBy]!, 0));
      const dashboardMs = median(sums);
      const rawMs = DASHBOARD_GROUPS.reduce((sum, groupBy) => sum + raw[groupBy]!, 0);
      log(
        `dashboard: median ${dashboardMs.toFixed(1)} ms for both summaries over ${DASHBOARD_RUNS} runs (first ${sums[0]!.toFixed(1)} ms)`,
      );

      const metrics: Record<string, Figure> = {
        dashboard_http_ms_10m_rows: {
          value: round(dashboardMs, 1),
          unit: 'ms',
          what: `both summaries the Usage view requests for 30 days (by model, by user), over the agent's admin HTTP API, one after the other: their sum, median of ${DASHBOARD_RUNS}; ${(rows / 1e6).toFixed(1)}M rows in the database, counted`,
          goal: '<= 100',
          baseline: {
            value: round(rawMs, 0),
            unit: 'ms',
            what: 'the same two aggregations over the raw rows, in SQL, in process',
          },
          ratio: round(dashboardMs / rawMs, 4),
          detail: {
            by_model_ms_median: round(median(runs.map((run) => run.model!)), 1),
            by_user_ms_median: round(median(runs.map((run) => run.user!)), 1),
            first_run_ms: round(sums[0]!, 1),
            in_process_ms_median: round(inProcess, 1),
            raw_by_model_ms: round(raw.model!, 0),
            raw_by_user_ms: round(raw.user!, 0),
            rows_in_database: rows,
            rows_in_30_days: rowsIn30Days,
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
          what: `usage rows committed per second by ${INGEST_CALLERS} concurrent callers of the gateway's recorder (row and rollups), synchronous=NORMAL, WAL`,
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
      // destroy() also removes the data dir.
      if (agent) await agent.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
