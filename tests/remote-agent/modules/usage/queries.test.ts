import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  UsageExportQuery,
  UsageRowsQuery,
  UsageSummaryQuery,
  type UsageRow,
  type UsageTotals,
} from '../../../../remote-agent/src/contract/index.js';
import { AppError } from '../../../../remote-agent/src/errors.js';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';
import { CSV_COLUMNS, UsageQueries } from '../../../../remote-agent/src/modules/usage/queries.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder, type UsageEvent } from '../../../../remote-agent/src/modules/usage/recorder.js';
import { DAY_MS, HOUR_MS } from '../../../../remote-agent/src/modules/usage/time.js';
import { addKey, addUser, tempDb, totalTokensOf, usageEvent, type TempDb } from './helpers.js';

const ADA = 'u_aaaaaaaaaa';
const EVE = 'u_eeeeeeeeee';
const ADA_KEY = 'k_aaaaaaaaaa';
const EVE_KEY = 'k_eeeeeeeeee';
const DAY1 = Date.UTC(2026, 10, 1);
const MODELS = ['claude-sonnet-4-5-20250929', 'claude-opus-4-5-20251101', 'claude-haiku-4-5'];
const prices = new PriceTable();

let t: TempDb;
let clock: number;
let queries: UsageQueries;
let events: UsageEvent[];

const summaryQuery = (input: Record<string, unknown>) => UsageSummaryQuery.parse(input);
const rowsQuery = (input: Record<string, unknown>) => UsageRowsQuery.parse(input);

/** Totals of `events` computed the obvious way, for comparison with what the rollups answer. */
function totalsOf(list: UsageEvent[]): UsageTotals {
  return {
    requests: list.length,
    errors: list.filter((e) => e.status === 'error' || e.status === 'timeout').length,
    inputTokens: list.reduce((sum, e) => sum + e.inputTokens, 0),
    outputTokens: list.reduce((sum, e) => sum + e.outputTokens, 0),
    cacheCreationTokens: list.reduce((sum, e) => sum + e.cacheCreationTokens, 0),
    cacheReadTokens: list.reduce((sum, e) => sum + e.cacheReadTokens, 0),
    totalTokens: list.reduce((sum, e) => sum + totalTokensOf(e), 0),
    costUsd: list.reduce((sum, e) => sum + prices.cost(e.model, e), 0),
  };
}

function expectTotals(actual: UsageTotals, list: UsageEvent[]): void {
  const expected = totalsOf(list);
  expect({ ...actual, costUsd: 0 }).toEqual({ ...expected, costUsd: 0 });
  expect(actual.costUsd).toBeCloseTo(expected.costUsd, 9);
}

beforeEach(async () => {
  t = tempDb();
  addUser(t.db, ADA, 'ada');
  addUser(t.db, EVE, 'eve', true);
  addKey(t.db, ADA_KEY, ADA, 'laptop', 'sk_user_Ab3');
  addKey(t.db, EVE_KEY, EVE, 'old', 'sk_user_Ev1');
  clock = DAY1 + 40 * DAY_MS;
  queries = new UsageQueries({ db: t.db, archiveFile: join(t.dir, 'usage-archive.db'), now: () => clock });
  const recorder = new UsageRecorder({ db: t.db, prices, quotas: new QuotaService({ db: t.db }) });
  // 3 days, 90 requests: ada, eve (deleted since) and requests with no user, on three models, some failing.
  events = Array.from({ length: 90 }, (_, i) => {
    const who = i % 3;
    return usageEvent({
      requestId: `req_${String(i).padStart(3, '0')}`,
      userId: who === 0 ? ADA : who === 1 ? EVE : null,
      keyId: who === 0 ? ADA_KEY : who === 1 ? EVE_KEY : null,
      model: MODELS[Math.floor(i / 3) % 3]!,
      status: i % 10 === 9 ? 'error' : i % 10 === 8 ? 'client_abort' : 'success',
      inputTokens: 100 + i,
      outputTokens: 10 * i,
      cacheCreationTokens: i % 2 === 0 ? 500 : 0,
      cacheReadTokens: i % 5 === 0 ? 2000 : 0,
      startedAt: DAY1 + Math.floor(i / 30) * DAY_MS + (i % 30) * 45 * 60_000,
    });
  });
  await Promise.all(events.map((e) => recorder.record(e)));
  await recorder.close();
});

afterEach(() => t.cleanup());

describe('UsageQueries.summary', () => {
  it('totals, groups and series by model and day match the recorded requests', () => {
    const summary = queries.summary(summaryQuery({ from: '2026-11-01T00:00:00Z', to: '2026-11-04T00:00:00Z' }));
    expect(summary).toMatchObject({
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-11-04T00:00:00.000Z',
      bucket: 'day',
      groupBy: 'model',
    });
    expectTotals(summary.totals, events);
    expect(summary.groups.map((g) => g.key).sort()).toEqual([...MODELS].sort());
    for (const group of summary.groups) {
      expect(group.label).toBe(group.key);
      expectTotals(
        group.totals,
        events.filter((e) => e.model === group.key),
      );
    }
    // Largest cost first.
    const costs = summary.groups.map((g) => g.totals.costUsd);
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
    expect(summary.series).toHaveLength(9);
    for (const point of summary.series) {
      const start = Date.parse(point.bucketStart);
      expectTotals(
        point.totals,
        events.filter((e) => e.model === point.key && e.startedAt >= start && e.startedAt < start + DAY_MS),
      );
    }
  });

  it('groups by user with names, marking deleted users and requests without a user', () => {
    const summary = queries.summary(
      summaryQuery({ from: '2026-11-01T00:00:00Z', to: '2026-11-04T00:00:00Z', groupBy: 'user' }),
    );
    const labels = Object.fromEntries(summary.groups.map((g) => [g.key, g.label]));
    expect(labels).toEqual({ [ADA]: 'ada', [EVE]: '(deleted) eve', '': '(no user)' });
    for (const group of summary.groups) {
      expectTotals(
        group.totals,
        events.filter((e) => (e.userId ?? '') === group.key),
      );
    }
  });

  it('groups by key with its name and prefix', () => {
    const summary = queries.summary(
      summaryQuery({ from: '2026-11-01T00:00:00Z', to: '2026-11-04T00:00:00Z', groupBy: 'key', userId: ADA }),
    );
    expect(summary.groups.map((g) => g.label)).toEqual(['laptop (sk_user_Ab3…)']);
    expectTotals(
      summary.totals,
      events.filter((e) => e.userId === ADA),
    );
  });

  it('filters by user and model, and cuts the series by hour', () => {
    const summary = queries.summary(
      summaryQuery({
        from: '2026-11-02T00:00:00Z',
        to: '2026-11-02T06:00:00Z',
        bucket: 'hour',
        userId: ADA,
        model: MODELS[1],
      }),
    );
    const wanted = events.filter(
      (e) =>
        e.userId === ADA &&
        e.model === MODELS[1] &&
        e.startedAt >= DAY1 + DAY_MS &&
        e.startedAt < DAY1 + DAY_MS + 6 * HOUR_MS,
    );
    expect(wanted.length).toBeGreaterThan(0);
    expectTotals(summary.totals, wanted);
    for (const point of summary.series) {
      const start = Date.parse(point.bucketStart);
      expect(start % HOUR_MS).toBe(0);
      expectTotals(
        point.totals,
        wanted.filter((e) => e.startedAt >= start && e.startedAt < start + HOUR_MS),
      );
    }
  });

  it('refuses an empty or reversed range, and ranges longer than the bucket allows, saying the limit', () => {
    const attempt = (input: Record<string, unknown>) => {
      try {
        queries.summary(summaryQuery(input));
      } catch (error) {
        return error;
      }
      throw new Error('the range was accepted');
    };
    const reversed = attempt({ from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z' });
    expect(reversed).toBeInstanceOf(AppError);
    expect(reversed).toMatchObject({ code: 'USAGE_RANGE_INVALID', status: 400 });
    expect(attempt({ from: '2026-11-01T00:00:00Z', to: '2026-11-01T00:00:00Z' })).toMatchObject({
      code: 'USAGE_RANGE_INVALID',
    });
    expect(attempt({ from: '2026-11-01T00:00:00Z', to: '2026-12-03T00:00:00Z', bucket: 'hour' })).toMatchObject({
      code: 'USAGE_RANGE_INVALID',
      message: expect.stringContaining('at most 31 days') as string,
    });
    expect(attempt({ from: '2025-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' })).toMatchObject({
      code: 'USAGE_RANGE_INVALID',
      message: expect.stringContaining('at most 400 days') as string,
    });
    // The limits themselves are fine.
    expect(() =>
      queries.summary(summaryQuery({ from: '2026-11-01T00:00:00Z', to: '2026-12-02T00:00:00Z', bucket: 'hour' })),
    ).not.toThrow();
  });
});

describe('UsageQueries.rows', () => {
  it('pages through every row newest first, without gaps or repeats', () => {
    const seen: UsageRow[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = queries.rows(
        rowsQuery({
          from: '2026-11-01T00:00:00Z',
          to: '2026-11-05T00:00:00Z',
          limit: 7,
          ...(cursor ? { cursor } : {}),
        }),
      );
      seen.push(...page.rows);
      cursor = page.nextCursor ?? undefined;
      pages += 1;
      expect(page.rows.length).toBeLessThanOrEqual(7);
    } while (cursor);
    expect(pages).toBe(13);
    expect(seen.map((r) => r.requestId)).toEqual(
      [...events].sort((a, b) => b.startedAt - a.startedAt).map((e) => e.requestId),
    );
    const first = seen.find((r) => r.requestId === 'req_001')!;
    const source = events[1]!;
    expect(first).toMatchObject({
      userId: EVE,
      username: 'eve',
      keyId: EVE_KEY,
      model: source.model,
      inputTokens: source.inputTokens,
      outputTokens: source.outputTokens,
      cacheCreationTokens: source.cacheCreationTokens,
      cacheReadTokens: source.cacheReadTokens,
      status: 'success',
      startedAt: new Date(source.startedAt).toISOString(),
      endedAt: new Date(source.endedAt).toISOString(),
    });
    expect(first.costUsd).toBeCloseTo(prices.cost(source.model, source), 12);
  });

  it('filters by user, model and status', () => {
    const page = queries.rows(
      rowsQuery({
        from: '2026-11-01T00:00:00Z',
        to: '2026-11-05T00:00:00Z',
        userId: ADA,
        status: 'error',
        limit: 1000,
      }),
    );
    const wanted = events.filter((e) => e.userId === ADA && e.status === 'error');
    expect(page.rows.map((r) => r.requestId).sort()).toEqual(wanted.map((e) => e.requestId).sort());
    expect(page.nextCursor).toBeNull();
    const byModel = queries.rows(
      rowsQuery({ from: '2026-11-01T00:00:00Z', to: '2026-11-05T00:00:00Z', model: MODELS[2], limit: 1000 }),
    );
    expect(byModel.rows).toHaveLength(events.filter((e) => e.model === MODELS[2]).length);
  });
});

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** Splits CSV text into records (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else field += c;
  }
  return records;
}

describe('UsageQueries.exportStream', () => {
  it('streams CSV with a header and one line per row, oldest first, across pages', async () => {
    const text = await readAll(
      queries.exportStream(UsageExportQuery.parse({ from: '2026-11-01T00:00:00Z', to: '2026-11-05T00:00:00Z' })),
    );
    const [header, ...records] = parseCsv(text);
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(records.map((r) => r[1])).toEqual(
      [...events].sort((a, b) => a.startedAt - b.startedAt).map((e) => e.requestId),
    );
    const ada = records.find((r) => r[1] === 'req_000')!;
    const column = (name: (typeof CSV_COLUMNS)[number]) => ada[CSV_COLUMNS.indexOf(name)];
    expect(column('username')).toBe('ada');
    expect(column('input_tokens')).toBe('100');
    expect(column('cache_creation_tokens')).toBe('500');
    expect(column('cache_read_tokens')).toBe('2000');
    expect(column('started_at')).toBe(new Date(DAY1).toISOString());
    expect(column('error_type')).toBe('');
  });

  it('quotes awkward text and defuses spreadsheet formulas', async () => {
    const recorder = new UsageRecorder({ db: t.db, prices, quotas: new QuotaService({ db: t.db }) });
    await recorder.record(
      usageEvent({ requestId: 'odd', model: '=HYPERLINK("x"),\nmodel', startedAt: DAY1 + 5 * DAY_MS }),
    );
    await recorder.close();
    const text = await readAll(
      queries.exportStream(UsageExportQuery.parse({ from: '2026-11-06T00:00:00Z', to: '2026-11-07T00:00:00Z' })),
    );
    const records = parseCsv(text);
    expect(records).toHaveLength(2);
    expect(records[1]![CSV_COLUMNS.indexOf('model')]).toBe(`'=HYPERLINK("x"),\nmodel`);
  });

  it('streams a JSON array of the same rows the rows API answers, filtered', async () => {
    const text = await readAll(
      queries.exportStream(
        UsageExportQuery.parse({
          from: '2026-11-01T00:00:00Z',
          to: '2026-11-05T00:00:00Z',
          userId: ADA,
          format: 'json',
        }),
      ),
    );
    const rows = JSON.parse(text) as UsageRow[];
    const api = queries.rows(
      rowsQuery({ from: '2026-11-01T00:00:00Z', to: '2026-11-05T00:00:00Z', userId: ADA, limit: 1000 }),
    );
    expect(rows).toEqual([...api.rows].reverse());
    expect(rows).toHaveLength(30);
    const empty = await readAll(
      queries.exportStream(
        UsageExportQuery.parse({ from: '2027-01-01T00:00:00Z', to: '2027-01-02T00:00:00Z', format: 'json' }),
      ),
    );
    expect(JSON.parse(empty)).toEqual([]);
  });

  it('exports more rows than one page holds', async () => {
    const recorder = new UsageRecorder({ db: t.db, prices, quotas: new QuotaService({ db: t.db }) });
    const start = DAY1 + 10 * DAY_MS;
    // Several rows share a start time: the pages must neither skip nor repeat them.
    await Promise.all(
      Array.from({ length: 2500 }, (_, i) =>
        recorder.record(usageEvent({ requestId: `bulk_${i}`, startedAt: start + Math.floor(i / 4) * 1000 })),
      ),
    );
    await recorder.close();
    const text = await readAll(
      queries.exportStream(UsageExportQuery.parse({ from: '2026-11-11T00:00:00Z', to: '2026-11-12T00:00:00Z' })),
    );
    const ids = parseCsv(text)
      .slice(1)
      .map((r) => r[1]);
    expect(ids).toHaveLength(2500);
    expect(new Set(ids).size).toBe(2500);
  });
});

describe('UsageQueries.totals', () => {
  it("sums a user's usage since a time from the rollups, for all keys or one", () => {
    const since = DAY1 + DAY_MS + 5 * HOUR_MS;
    const wanted = events.filter((e) => e.userId === ADA && e.startedAt >= since);
    expectTotals(queries.totals(ADA, null, since), wanted);
    expectTotals(queries.totals(ADA, ADA_KEY, since), wanted);
    expect(queries.totals(ADA, 'k_zzzzzzzzzz', since).requests).toBe(0);
    expectTotals(
      queries.totals(EVE, null, DAY1),
      events.filter((e) => e.userId === EVE),
    );
  });
});

describe('UsageQueries.archive', () => {
  it('moves old rows into the archive database while summaries and totals stay the same', async () => {
    const range = { from: '2026-11-01T00:00:00Z', to: '2026-11-04T00:00:00Z', groupBy: 'user' };
    const before = queries.summary(summaryQuery(range));
    // Rows of the first two days are older than 38 days on day 41.
    clock = DAY1 + 40 * DAY_MS;
    const result = await queries.archive(38);
    const cutoff = DAY1 + 2 * DAY_MS;
    const moved = events.filter((e) => e.startedAt < cutoff);
    expect(result).toEqual({
      archivedRows: moved.length,
      archiveFile: join(t.dir, 'usage-archive.db'),
      before: new Date(cutoff).toISOString(),
    });
    expect(queries.summary(summaryQuery(range))).toEqual(before);
    expectTotals(
      queries.totals(ADA, null, DAY1),
      events.filter((e) => e.userId === ADA),
    );
    const left = queries.rows(rowsQuery({ from: '2026-11-01T00:00:00Z', to: '2026-11-05T00:00:00Z', limit: 1000 }));
    expect(left.rows.map((r) => r.requestId).sort()).toEqual(
      events
        .filter((e) => e.startedAt >= cutoff)
        .map((e) => e.requestId)
        .sort(),
    );

    expect(statSync(result.archiveFile).mode & 0o777).toBe(0o600);
    const archive = new Database(result.archiveFile, { readonly: true });
    try {
      const archived = archive.prepare('SELECT request_id, input_tokens FROM usage_events ORDER BY request_id').all();
      expect(archived).toEqual(
        moved
          .map((e) => ({ request_id: e.requestId, input_tokens: e.inputTokens }))
          .sort((a, b) => (a.request_id! < b.request_id! ? -1 : 1)),
      );
    } finally {
      archive.close();
    }
    // A second run finds nothing more to move, and the database is usable as before.
    await expect(queries.archive(38)).resolves.toMatchObject({ archivedRows: 0 });
    expect(existsSync(result.archiveFile)).toBe(true);
  });

  it('archives on a timer once started, and stops when told', async () => {
    clock = DAY1 + 40 * DAY_MS;
    const stop = queries.startArchiver({ olderThanDays: 38, intervalMs: 10 });
    try {
      await vi.waitFor(() => {
        expect(t.db.prepare('SELECT COUNT(*) FROM usage_events').pluck().get()).toBe(30);
      });
    } finally {
      stop();
    }
  });
});
