import { chmodSync, existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import type Database from 'better-sqlite3';
import type { z } from 'zod';
import {
  AgentErrorCode,
  USAGE_MAX_RANGE_DAYS,
  type ArchiveUsageResult,
  type UsageExportQuery,
  type UsageGroupBy,
  type UsageRow,
  type UsageRowsQuery,
  type UsageStatus,
  type UsageSummary,
  type UsageSummaryQuery,
  type UsageTotals,
} from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import { AppError } from '../../errors.js';
import type { UsageLogger } from './recorder.js';
import { DAY_MS, HOUR_MS, startOfDay, startOfHour } from './time.js';

type SummaryQuery = z.output<typeof UsageSummaryQuery>;
type RowsQuery = z.output<typeof UsageRowsQuery>;
type ExportQuery = z.output<typeof UsageExportQuery>;
type Filters = Pick<SummaryQuery, 'userId' | 'keyId' | 'model'>;
type Statement = Database.Statement<unknown[]>;

/** How a user appears in usage: deleted users keep their name, marked. */
export type UsernameLookup = (ids: string[]) => Map<string, { username: string; deleted: boolean }>;

interface RawEvent {
  id: number;
  request_id: string | null;
  user_id: string | null;
  username: string | null;
  key_id: string | null;
  slot_id: string | null;
  model: string;
  provider: string;
  input_tokens: number;
  output_tokens: number;
  cache_creation_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
  status: UsageStatus;
  error_type: string | null;
  http_status: number | null;
  latency_ms: number;
  ttfb_ms: number | null;
  started_at: number;
  ended_at: number;
}

interface RawSums {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_creation_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
}

const GROUP_COLUMN: Record<UsageGroupBy, string> = {
  user: 'user_id',
  key: 'key_id',
  model: 'model',
  provider: 'provider',
};

const SUMS_SQL = `SUM(requests) AS requests, SUM(errors) AS errors, SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens, SUM(cache_creation_tokens) AS cache_creation_tokens,
  SUM(cache_read_tokens) AS cache_read_tokens, SUM(cost_usd) AS cost_usd`;

const EVENT_COLUMNS = `e.id, e.request_id, e.user_id, u.username, e.key_id, e.slot_id, e.model, e.provider,
  e.input_tokens, e.output_tokens, e.cache_creation_tokens, e.cache_read_tokens, e.cost_usd, e.status, e.error_type,
  e.http_status, e.latency_ms, e.ttfb_ms, e.started_at, e.ended_at`;

const EXPORT_PAGE_ROWS = 1000;
const ARCHIVE_BATCH_ROWS = 5000;

export const CSV_COLUMNS = [
  'id',
  'request_id',
  'user_id',
  'username',
  'key_id',
  'slot_id',
  'model',
  'provider',
  'input_tokens',
  'output_tokens',
  'cache_creation_tokens',
  'cache_read_tokens',
  'cost_usd',
  'status',
  'error_type',
  'http_status',
  'latency_ms',
  'ttfb_ms',
  'started_at',
  'ended_at',
] as const;

export const emptyTotals = (): UsageTotals => ({
  requests: 0,
  errors: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheCreationTokens: 0,
  cacheReadTokens: 0,
  totalTokens: 0,
  costUsd: 0,
});

function addSums(totals: UsageTotals, sums: RawSums): void {
  totals.requests += sums.requests;
  totals.errors += sums.errors;
  totals.inputTokens += sums.input_tokens;
  totals.outputTokens += sums.output_tokens;
  totals.cacheCreationTokens += sums.cache_creation_tokens;
  totals.cacheReadTokens += sums.cache_read_tokens;
  totals.totalTokens += sums.input_tokens + sums.output_tokens + sums.cache_creation_tokens + sums.cache_read_tokens;
  totals.costUsd += sums.cost_usd;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function toRow(raw: RawEvent): UsageRow {
  return {
    id: raw.id,
    requestId: raw.request_id,
    userId: raw.user_id,
    username: raw.username,
    keyId: raw.key_id,
    slotId: raw.slot_id,
    model: raw.model,
    provider: raw.provider,
    inputTokens: raw.input_tokens,
    outputTokens: raw.output_tokens,
    cacheCreationTokens: raw.cache_creation_tokens,
    cacheReadTokens: raw.cache_read_tokens,
    costUsd: raw.cost_usd,
    status: raw.status,
    errorType: raw.error_type,
    httpStatus: raw.http_status,
    latencyMs: raw.latency_ms,
    ttfbMs: raw.ttfb_ms,
    startedAt: iso(raw.started_at),
    endedAt: iso(raw.ended_at),
  };
}

/** One CSV field; text that a spreadsheet would run as a formula is prefixed with a quote. */
function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function csvLine(raw: RawEvent): string {
  return `${CSV_COLUMNS.map((column) => {
    if (column === 'started_at' || column === 'ended_at') return iso(raw[column]);
    return csvField(raw[column]);
  }).join(',')}\n`;
}

function filterSql(filters: Filters, args: unknown[], alias = ''): string {
  let sql = '';
  if (filters.userId !== undefined) {
    sql += ` AND ${alias}user_id = ?`;
    args.push(filters.userId);
  }
  if (filters.keyId !== undefined) {
    sql += ` AND ${alias}key_id = ?`;
    args.push(filters.keyId);
  }
  if (filters.model !== undefined) {
    sql += ` AND ${alias}model = ?`;
    args.push(filters.model);
  }
  return sql;
}

function rangeOf(query: { from: string; to: string }): { from: number; to: number } {
  const from = Date.parse(query.from);
  const to = Date.parse(query.to);
  if (!(from < to)) {
    throw new AppError(
      AgentErrorCode.USAGE_RANGE_INVALID,
      400,
      `The range is empty: "from" (${query.from}) must be before "to" (${query.to}).`,
    );
  }
  return { from, to };
}

/**
 * Reads usage for the admin: summaries from the hourly and daily rollups (never the raw rows, so that dashboards
 * stay fast with tens of millions of rows), raw rows page by page, streamed exports, and archival of old rows.
 */
export class UsageQueries {
  private readonly db: Db;
  private readonly archiveFile: string;
  private readonly usernames: UsernameLookup;
  private readonly now: () => number;
  /** Statements built for a combination of table, grouping and filters, prepared once each. */
  private readonly prepared = new Map<string, Statement>();
  private readonly statements;
  private archiving: Promise<unknown> = Promise.resolve();

  constructor(options: { db: Db; archiveFile: string; usernames?: UsernameLookup; now?: () => number }) {
    this.db = options.db;
    this.archiveFile = options.archiveFile;
    this.now = options.now ?? Date.now;
    const db = options.db;
    this.statements = {
      users: db.prepare<[string], { id: string; username: string; deleted_at: string | null }>(
        'SELECT id, username, deleted_at FROM users WHERE id IN (SELECT value FROM json_each(?))',
      ),
      keys: db.prepare<[string], { id: string; name: string; prefix: string }>(
        'SELECT id, name, prefix FROM api_keys WHERE id IN (SELECT value FROM json_each(?))',
      ),
      startedAtOf: db.prepare<[number], { started_at: number }>('SELECT started_at FROM usage_events WHERE id = ?'),
    };
    this.usernames = options.usernames ?? ((ids) => this.lookUpUsernames(ids));
  }

  /** Totals, groups and a series over [from, to), from the rollups; buckets that overlap the range count whole. */
  summary(query: SummaryQuery): UsageSummary {
    const range = rangeOf(query);
    const maxDays = USAGE_MAX_RANGE_DAYS[query.bucket];
    if (range.to - range.from > maxDays * DAY_MS) {
      throw new AppError(
        AgentErrorCode.USAGE_RANGE_INVALID,
        400,
        `The range is too long: a summary by ${query.bucket} covers at most ${maxDays} days.` +
          (query.bucket === 'hour' ? ' Pick a shorter range, or bucket=day.' : ' Pick a shorter range.'),
      );
    }
    const size = query.bucket === 'hour' ? HOUR_MS : DAY_MS;
    const align = query.bucket === 'hour' ? startOfHour : startOfDay;
    const from = align(range.from);
    const to = align(range.to - 1) + size;
    const table = query.bucket === 'hour' ? 'usage_hourly' : 'usage_daily';
    const column = GROUP_COLUMN[query.groupBy];
    const args: unknown[] = [from, to];
    const filters = filterSql(query, args);
    const statement = this.statement(
      `summary:${table}:${column}:${filters}`,
      `SELECT bucket, ${column} AS grp, ${SUMS_SQL} FROM ${table}
       WHERE bucket >= ? AND bucket < ?${filters} GROUP BY bucket, grp ORDER BY bucket, grp`,
    );
    const totals = emptyTotals();
    const groups = new Map<string, UsageTotals>();
    const series: UsageSummary['series'] = [];
    const bucketStarts = new Map<number, string>();
    // all() rather than iterate(): one call into SQLite for the thousands of points of a 30-day chart.
    for (const raw of statement.all(...args) as Array<RawSums & { bucket: number; grp: string }>) {
      const point = emptyTotals();
      addSums(point, raw);
      let bucketStart = bucketStarts.get(raw.bucket);
      if (bucketStart === undefined) bucketStarts.set(raw.bucket, (bucketStart = iso(raw.bucket)));
      series.push({ bucketStart, key: raw.grp, totals: point });
      addSums(totals, raw);
      let group = groups.get(raw.grp);
      if (!group) groups.set(raw.grp, (group = emptyTotals()));
      addSums(group, raw);
    }
    const labels = this.labels(query.groupBy, [...groups.keys()]);
    return {
      from: iso(from),
      to: iso(to),
      bucket: query.bucket,
      groupBy: query.groupBy,
      totals,
      groups: [...groups]
        .map(([key, groupTotals]) => ({ key, label: labels.get(key) ?? key, totals: groupTotals }))
        .sort(
          (a, b) =>
            b.totals.costUsd - a.totals.costUsd ||
            b.totals.totalTokens - a.totals.totalTokens ||
            (a.key < b.key ? -1 : 1),
        ),
      series,
    };
  }

  /** Raw rows started in [from, to), newest first; nextCursor (the last row's id) fetches the next page. */
  rows(query: RowsQuery): { rows: UsageRow[]; nextCursor: string | null } {
    const range = rangeOf(query);
    const args: unknown[] = [range.from, range.to];
    let sql = filterSql(query, args, 'e.');
    if (query.status !== undefined) {
      sql += ' AND e.status = ?';
      args.push(query.status);
    }
    let after = '';
    if (query.cursor !== undefined) {
      const id = Number(query.cursor);
      const cursorRow = this.statements.startedAtOf.get(id);
      if (!cursorRow) {
        throw new AppError(
          AgentErrorCode.VALIDATION_FAILED,
          400,
          'The cursor names a row that is no longer there (archived); load the first page again without a cursor.',
        );
      }
      after = ' AND (e.started_at < ? OR (e.started_at = ? AND e.id < ?))';
      args.push(cursorRow.started_at, cursorRow.started_at, id);
    }
    args.push(query.limit + 1);
    const statement = this.statement(
      `rows:${sql}:${after}`,
      `SELECT ${EVENT_COLUMNS} FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
       WHERE e.started_at >= ? AND e.started_at < ?${sql}${after}
       ORDER BY e.started_at DESC, e.id DESC LIMIT ?`,
    );
    const raws = statement.all(...args) as RawEvent[];
    const more = raws.length > query.limit;
    const rows = raws.slice(0, query.limit).map(toRow);
    return { rows, nextCursor: more ? String(rows[rows.length - 1]!.id) : null };
  }

  /**
   * The rows started in [from, to), oldest first, as CSV (with a header) or a JSON array, read from the database a
   * page at a time as the reader takes them: an export of millions of rows never sits in memory.
   */
  exportStream(query: ExportQuery): Readable {
    const range = rangeOf(query);
    const filterArgs: unknown[] = [];
    const filters = filterSql(query, filterArgs, 'e.');
    const first = this.statement(
      `export-first:${filters}`,
      `SELECT ${EVENT_COLUMNS} FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
       WHERE e.started_at >= ? AND e.started_at < ?${filters} ORDER BY e.started_at, e.id LIMIT ?`,
    );
    const next = this.statement(
      `export-next:${filters}`,
      `SELECT ${EVENT_COLUMNS} FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
       WHERE e.started_at < ? AND (e.started_at > ? OR (e.started_at = ? AND e.id > ?))${filters}
       ORDER BY e.started_at, e.id LIMIT ?`,
    );
    const csv = query.format === 'csv';
    async function* pages(): AsyncGenerator<string> {
      yield csv ? `${CSV_COLUMNS.join(',')}\n` : '[';
      let last: RawEvent | undefined;
      let count = 0;
      for (;;) {
        const page = (
          last
            ? next.all(range.to, last.started_at, last.started_at, last.id, ...filterArgs, EXPORT_PAGE_ROWS)
            : first.all(range.from, range.to, ...filterArgs, EXPORT_PAGE_ROWS)
        ) as RawEvent[];
        if (page.length === 0) break;
        let chunk = '';
        for (const raw of page) {
          chunk += csv ? csvLine(raw) : `${count === 0 ? '\n' : ',\n'}${JSON.stringify(toRow(raw))}`;
          count += 1;
        }
        yield chunk;
        if (page.length < EXPORT_PAGE_ROWS) break;
        last = page[page.length - 1];
        // Let requests (and the recorder's commits) run between pages of a long export.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (!csv) yield count === 0 ? ']\n' : '\n]\n';
    }
    return Readable.from(pages(), { objectMode: false });
  }

  /**
   * A user's (or one key's) usage since a time, from the rollups: whole hours up to the next UTC midnight, then
   * whole days. Compact enough for /v1/me/usage on every status-line refresh.
   */
  totals(userId: string, keyId: string | null, sinceMs: number): UsageTotals {
    const hourFrom = startOfHour(sinceMs);
    const dayFrom = hourFrom === startOfDay(hourFrom) ? hourFrom : startOfDay(hourFrom) + DAY_MS;
    const keyFilter = keyId === null ? '' : ' AND key_id = ?';
    const keyArgs = keyId === null ? [] : [keyId];
    const hours = this.statement(
      `totals-hourly:${keyFilter}`,
      `SELECT ${SUMS_SQL} FROM usage_hourly WHERE bucket >= ? AND bucket < ? AND user_id = ?${keyFilter}`,
    );
    const days = this.statement(
      `totals-daily:${keyFilter}`,
      `SELECT ${SUMS_SQL} FROM usage_daily WHERE bucket >= ? AND user_id = ?${keyFilter}`,
    );
    const totals = emptyTotals();
    for (const sums of [
      hours.get(hourFrom, dayFrom, userId, ...keyArgs) as RawSums,
      days.get(dayFrom, userId, ...keyArgs) as RawSums,
    ]) {
      // SUM over no rows is NULL.
      if (sums.requests !== null) addSums(totals, sums);
    }
    return totals;
  }

  /**
   * Moves rows that started more than `olderThanDays` ago into the archive database, a batch per transaction, and
   * yields between batches so that the gateway keeps metering. The rollups stay: summaries and totals still cover
   * the archived rows.
   */
  archive(olderThanDays: number): Promise<z.input<typeof ArchiveUsageResult>> {
    // One at a time: the timer and the admin API share the connection and its ATTACH.
    const run = this.archiving.then(() => this.archiveNow(olderThanDays));
    this.archiving = run.catch(() => undefined);
    return run;
  }

  private async archiveNow(olderThanDays: number): Promise<z.input<typeof ArchiveUsageResult>> {
    const before = this.now() - olderThanDays * DAY_MS;
    const fresh = !existsSync(this.archiveFile);
    this.db.prepare('ATTACH DATABASE ? AS archive').run(this.archiveFile);
    let archivedRows = 0;
    try {
      if (fresh) chmodSync(this.archiveFile, 0o600);
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS archive.usage_events AS SELECT * FROM main.usage_events WHERE 0;
        CREATE UNIQUE INDEX IF NOT EXISTS archive.usage_events_by_id ON usage_events (id);
        CREATE INDEX IF NOT EXISTS archive.usage_events_by_time ON usage_events (started_at);
      `);
      // The newest row stays: SQLite gives new rows max(id)+1, and reusing an archived id would clash with it.
      const pick = this.db
        .prepare<[number, number]>(
          `SELECT id FROM main.usage_events
           WHERE started_at < ? AND id < (SELECT MAX(id) FROM main.usage_events) ORDER BY started_at LIMIT ?`,
        )
        .pluck();
      const copy = this.db.prepare<[string]>(
        `INSERT OR IGNORE INTO archive.usage_events SELECT * FROM main.usage_events
         WHERE id IN (SELECT value FROM json_each(?))`,
      );
      const remove = this.db.prepare<[string]>(
        'DELETE FROM main.usage_events WHERE id IN (SELECT value FROM json_each(?))',
      );
      for (;;) {
        const ids = pick.all(before, ARCHIVE_BATCH_ROWS) as number[];
        if (ids.length === 0) break;
        const list = JSON.stringify(ids);
        // Two commits, copy then delete: transactions across attached WAL databases are not atomic as a whole, and
        // a crash between them leaves a copy that the next run skips (same id), never a lost row.
        this.db.transaction(() => copy.run(list))();
        this.db.transaction(() => remove.run(list))();
        archivedRows += ids.length;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.db.exec('DETACH DATABASE archive');
    }
    return { archivedRows, archiveFile: this.archiveFile, before: iso(before) };
  }

  /** Archives on a timer (first run after one interval); returns a function that stops it. */
  startArchiver(options: { olderThanDays: number; intervalMs?: number; logger?: UsageLogger }): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.archive(options.olderThanDays)
        .then((result) => {
          if (result.archivedRows > 0) options.logger?.info?.(result, 'archived old usage rows');
        })
        .catch((error: unknown) => options.logger?.error({ err: error }, 'could not archive old usage rows'))
        .finally(() => (running = false));
    }, options.intervalMs ?? DAY_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  private statement(key: string, sql: string): Statement {
    let statement = this.prepared.get(key);
    if (!statement) this.prepared.set(key, (statement = this.db.prepare<unknown[]>(sql)));
    return statement;
  }

  private labels(groupBy: UsageGroupBy, keys: string[]): Map<string, string> {
    const labels = new Map<string, string>();
    if (groupBy === 'user') {
      const names = this.usernames(keys.filter((key) => key !== ''));
      for (const key of keys) {
        const user = names.get(key);
        labels.set(
          key,
          key === '' ? '(no user)' : !user ? key : user.deleted ? `(deleted) ${user.username}` : user.username,
        );
      }
    } else if (groupBy === 'key') {
      const known = new Map(this.statements.keys.all(JSON.stringify(keys)).map((k) => [k.id, k]));
      for (const key of keys) {
        const apiKey = known.get(key);
        labels.set(key, key === '' ? '(no key)' : apiKey ? `${apiKey.name} (${apiKey.prefix}…)` : key);
      }
    }
    return labels;
  }

  private lookUpUsernames(ids: string[]): Map<string, { username: string; deleted: boolean }> {
    return new Map(
      this.statements.users
        .all(JSON.stringify(ids))
        .map((u) => [u.id, { username: u.username, deleted: u.deleted_at !== null }]),
    );
  }
}
