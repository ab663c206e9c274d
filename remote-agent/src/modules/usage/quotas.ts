import type { Quota, QuotaStatus, QuotaWindow } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, startOfDay, startOfMinute, startOfMonth, startOfNextMonth } from './time.js';

export type QuotaSubject = 'user' | 'key';

export type QuotaCheck = { ok: true } | { ok: false; quota: QuotaStatus; message: string };

/** What one committed request adds to its user's and key's quotas. */
export interface QuotaUse {
  userId: string | null;
  keyId: string | null;
  startedAt: number;
  /** All four token kinds: input, output, cache creation and cache read. */
  totalTokens: number;
  costUsd: number;
}

const ROLLING_MS = 5 * HOUR_MS;
const WINDOW_ORDER: QuotaWindow[] = ['day', '5h', 'month'];
const WINDOW_LABEL: Record<QuotaWindow, string> = { day: 'Daily', '5h': '5-hour', month: 'Monthly' };
const OK: QuotaCheck = { ok: true };
const NO_USE = { tokens: 0, cost: 0 } as const;
/** The hold of a request whose user and key have no quotas: nothing to count. */
const NO_HOLD = { set: (): void => undefined, release: (): void => undefined };

interface Period {
  start: number;
  tokens: number;
  cost: number;
}

interface Used {
  tokens: number;
  cost: number;
  resetsAt: number;
}

/**
 * One subject's usage over the quota windows, in memory: a total for the current UTC day and month, and minute
 * buckets for the rolling 5 hours. A use stays in the rolling window until its whole minute has left it, so the
 * window never lets a budget through early.
 */
class SubjectUsage {
  private day: Period;
  private month: Period;
  private readonly minutes = new Map<number, { tokens: number; cost: number }>();
  private rollingTokens = 0;
  private rollingCost = 0;
  /** When the oldest minute bucket leaves the window; Infinity when there is none. */
  private oldestExpiry = Infinity;

  constructor(day: Period, month: Period) {
    this.day = day;
    this.month = month;
  }

  /** An independent copy, for a rotated key's replacement. */
  copy(): SubjectUsage {
    const copy = new SubjectUsage({ ...this.day }, { ...this.month });
    for (const [minute, cell] of this.minutes) copy.minutes.set(minute, { ...cell });
    copy.rollingTokens = this.rollingTokens;
    copy.rollingCost = this.rollingCost;
    copy.oldestExpiry = this.oldestExpiry;
    return copy;
  }

  add(startedAt: number, tokens: number, cost: number, now: number): void {
    this.day = addToPeriod(this.day, startOfDay(startedAt), tokens, cost);
    this.month = addToPeriod(this.month, startOfMonth(startedAt), tokens, cost);
    this.addToMinute(startOfMinute(startedAt), tokens, cost, now);
  }

  addToMinute(minute: number, tokens: number, cost: number, now: number): void {
    const expiry = minute + MINUTE_MS + ROLLING_MS;
    if (expiry <= now) return;
    const cell = this.minutes.get(minute);
    if (cell) {
      cell.tokens += tokens;
      cell.cost += cost;
    } else {
      this.minutes.set(minute, { tokens, cost });
    }
    this.rollingTokens += tokens;
    this.rollingCost += cost;
    if (expiry < this.oldestExpiry) this.oldestExpiry = expiry;
  }

  used(window: QuotaWindow, now: number): Used {
    if (window === 'day') {
      const start = startOfDay(now);
      const current = this.day.start === start;
      return { tokens: current ? this.day.tokens : 0, cost: current ? this.day.cost : 0, resetsAt: start + DAY_MS };
    }
    if (window === 'month') {
      const current = this.month.start === startOfMonth(now);
      return {
        tokens: current ? this.month.tokens : 0,
        cost: current ? this.month.cost : 0,
        resetsAt: startOfNextMonth(now),
      };
    }
    this.expire(now);
    return {
      tokens: this.rollingTokens,
      cost: this.rollingCost,
      resetsAt: this.oldestExpiry === Infinity ? now + ROLLING_MS : this.oldestExpiry,
    };
  }

  /** Drops the minute buckets that left the rolling window; a no-op until the oldest one does. */
  private expire(now: number): void {
    if (now < this.oldestExpiry) return;
    let oldest = Infinity;
    for (const [minute, cell] of this.minutes) {
      const expiry = minute + MINUTE_MS + ROLLING_MS;
      if (expiry <= now) {
        this.minutes.delete(minute);
        this.rollingTokens -= cell.tokens;
        this.rollingCost -= cell.cost;
      } else if (expiry < oldest) {
        oldest = expiry;
      }
    }
    // Subtracting floats drifts: an empty window is exactly zero.
    if (this.minutes.size === 0) this.rollingTokens = this.rollingCost = 0;
    this.oldestExpiry = oldest;
  }
}

function addToPeriod(period: Period, start: number, tokens: number, cost: number): Period {
  if (start === period.start) {
    period.tokens += tokens;
    period.cost += cost;
    return period;
  }
  // A use in a later period starts it; a late use of an earlier period no longer matters.
  return start > period.start ? { start, tokens, cost } : period;
}

interface RawQuota {
  subject_type: QuotaSubject;
  subject_id: string;
  window: QuotaWindow;
  max_tokens: number | null;
  max_cost_usd: number | null;
}

const TOKENS_SQL = 'input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens';

/**
 * Reads a subject's usage: the column is fixed per subject type, never taken from input. A key's usage includes the
 * keys it replaced (rotation), so that a rotated key's budget stays spent across restarts too.
 */
function usageStatements(db: Db, column: 'user_id' | 'key_id') {
  const subject =
    column === 'user_id'
      ? 'user_id = ?'
      : `key_id IN (WITH RECURSIVE chain(id) AS (SELECT ? UNION SELECT k.id FROM api_keys k JOIN chain ON k.rotated_to = chain.id) SELECT id FROM chain)`;
  return {
    period: db.prepare<[number, number, string], { tokens: number | null; cost: number | null }>(
      `SELECT SUM(${TOKENS_SQL}) AS tokens, SUM(cost_usd) AS cost FROM usage_daily
       WHERE bucket >= ? AND bucket < ? AND ${subject}`,
    ),
    // Minute buckets of the rolling window come from the rows: the rollups are too coarse for it.
    minutes: db.prepare<[string, number], { minute: number; tokens: number; cost: number }>(
      `SELECT (started_at / ${MINUTE_MS}) * ${MINUTE_MS} AS minute, SUM(${TOKENS_SQL}) AS tokens, SUM(cost_usd) AS cost
       FROM usage_events WHERE ${subject} AND started_at >= ? GROUP BY minute`,
    ),
  };
}

/**
 * Quotas of users and keys, and what they used. check() runs on every gateway request: the quotas and the usage
 * of every subject that has quotas are kept in memory (loaded from the rollups the first time), and the recorder
 * adds each committed request, so a warm check runs no SQL.
 */
/** A request's usage while it is still running; set as it grows, released once the request's row is committed. */
export interface QuotaHold {
  set(tokens: number, costUsd: number): void;
  release(): void;
}

export class QuotaService {
  /** Usage of requests still in flight, per subject: checks count it, so parallel streams cannot overrun a budget. */
  private readonly pending = new Map<string, { tokens: number; cost: number }>();
  private readonly db: Db;
  private readonly now: () => number;
  private readonly definitions = new Map<string, Quota[]>();
  private readonly usage = new Map<string, SubjectUsage>();
  private readonly statements;

  constructor(options: { db: Db; now?: () => number }) {
    this.db = options.db;
    this.now = options.now ?? Date.now;
    const db = options.db;
    this.statements = {
      all: db.prepare<[], RawQuota>('SELECT * FROM quotas'),
      remove: db.prepare<[QuotaSubject, string]>('DELETE FROM quotas WHERE subject_type = ? AND subject_id = ?'),
      insert: db.prepare<[QuotaSubject, string, QuotaWindow, number | null, number | null]>(
        'INSERT INTO quotas (subject_type, subject_id, window, max_tokens, max_cost_usd) VALUES (?, ?, ?, ?, ?)',
      ),
      username: db.prepare<[string], { username: string }>('SELECT username FROM users WHERE id = ?'),
      keyName: db.prepare<[string], { name: string; prefix: string }>('SELECT name, prefix FROM api_keys WHERE id = ?'),
      user: usageStatements(db, 'user_id'),
      key: usageStatements(db, 'key_id'),
    };
    for (const raw of this.statements.all.all()) {
      const key = subjectKey(raw.subject_type, raw.subject_id);
      const list = this.definitions.get(key) ?? [];
      list.push({ window: raw.window, maxTokens: raw.max_tokens, maxCostUsd: raw.max_cost_usd });
      this.definitions.set(key, sortByWindow(list));
    }
  }

  /** Replaces a subject's quotas (an empty list removes them) and answers their state. */
  set(subjectType: QuotaSubject, subjectId: string, quotas: Quota[]): QuotaStatus[] {
    this.db.transaction(() => {
      this.statements.remove.run(subjectType, subjectId);
      for (const q of quotas) {
        this.statements.insert.run(subjectType, subjectId, q.window, q.maxTokens, q.maxCostUsd);
      }
    })();
    const key = subjectKey(subjectType, subjectId);
    if (quotas.length === 0) {
      this.definitions.delete(key);
      this.usage.delete(key);
    } else {
      this.definitions.set(
        key,
        sortByWindow(quotas.map((q) => ({ window: q.window, maxTokens: q.maxTokens, maxCostUsd: q.maxCostUsd }))),
      );
    }
    return this.status(subjectType, subjectId);
  }

  /**
   * A rotated key's replacement takes over its quotas (the repository copied them) and what was used of them, so
   * that rotating a key never hands out a fresh budget.
   */
  inheritKey(oldKeyId: string, newKeyId: string): void {
    const quotas = this.definitions.get(subjectKey('key', oldKeyId));
    if (!quotas) return;
    this.definitions.set(
      subjectKey('key', newKeyId),
      quotas.map((q) => ({ ...q })),
    );
    this.usage.set(subjectKey('key', newKeyId), this.usageOf('key', oldKeyId).copy());
  }

  /**
   * Counts a running request against its user's and key's quotas from the moment it is admitted until its row is
   * committed. `estimate` is reserved at once (capped by what is left of the tightest budget it touches), so that
   * requests admitted in parallel see each other before any usage is known; set() then raises the hold to the usage
   * known so far whenever that is more (a hold never drops below its reservation while the request runs).
   */
  hold(userId: string, keyId: string | null, estimate: { tokens: number; cost: number } = NO_USE): QuotaHold {
    const subjects = [subjectKey('user', userId), ...(keyId !== null ? [subjectKey('key', keyId)] : [])].filter(
      (subject) => this.definitions.has(subject),
    );
    if (subjects.length === 0) return NO_HOLD;
    const reserved = this.capToBudget(userId, keyId, estimate);
    let held = { tokens: 0, cost: 0 };
    const apply = (tokens: number, cost: number): void => {
      for (const subject of subjects) {
        const sum = this.pending.get(subject) ?? { tokens: 0, cost: 0 };
        sum.tokens += tokens - held.tokens;
        sum.cost += cost - held.cost;
        if (sum.tokens <= 0 && sum.cost <= 1e-12) this.pending.delete(subject);
        else this.pending.set(subject, sum);
      }
      held = { tokens, cost };
    };
    let released = false;
    apply(reserved.tokens, reserved.cost);
    return {
      set: (tokens, cost) => {
        if (!released) apply(Math.max(tokens, reserved.tokens), Math.max(cost, reserved.cost));
      },
      release: () => {
        if (released) return;
        apply(0, 0);
        released = true;
      },
    };
  }

  /** What is held for requests still running, per subject (for tests and the status line). */
  pendingOf(subjectType: QuotaSubject, subjectId: string): { tokens: number; cost: number } {
    return { ...(this.pending.get(subjectKey(subjectType, subjectId)) ?? NO_USE) };
  }

  /** The estimate, cut down to what is left of the tightest token and cost budget of this user and key. */
  private capToBudget(
    userId: string,
    keyId: string | null,
    estimate: { tokens: number; cost: number },
  ): { tokens: number; cost: number } {
    let tokens = Math.max(0, estimate.tokens);
    let cost = Math.max(0, estimate.cost);
    const now = this.now();
    const subjects: Array<[QuotaSubject, string]> = [
      ['user', userId],
      ...(keyId !== null ? [['key', keyId] as [QuotaSubject, string]] : []),
    ];
    for (const [subjectType, subjectId] of subjects) {
      const quotas = this.definitions.get(subjectKey(subjectType, subjectId));
      if (!quotas) continue;
      const usage = this.usageOf(subjectType, subjectId);
      const pending = this.pending.get(subjectKey(subjectType, subjectId));
      for (const quota of quotas) {
        const used = withPending(usage.used(quota.window, now), pending);
        if (quota.maxTokens !== null) tokens = Math.min(tokens, Math.max(0, quota.maxTokens - used.tokens));
        if (quota.maxCostUsd !== null) cost = Math.min(cost, Math.max(0, quota.maxCostUsd - used.cost));
      }
    }
    return { tokens, cost };
  }

  /** A subject's quotas with what is used of each and when it resets. */
  status(subjectType: QuotaSubject, subjectId: string): QuotaStatus[] {
    const quotas = this.definitions.get(subjectKey(subjectType, subjectId));
    if (!quotas) return [];
    const usage = this.usageOf(subjectType, subjectId);
    const now = this.now();
    const pending = this.pending.get(subjectKey(subjectType, subjectId));
    return quotas.map((quota) => toStatus(subjectType, quota, withPending(usage.used(quota.window, now), pending)));
  }

  /** Whether a request of this user with this key may go ahead: refused once any of their quotas is used up. */
  check(userId: string, keyId: string | null): QuotaCheck {
    const refused = this.firstExceeded('user', userId) ?? (keyId !== null ? this.firstExceeded('key', keyId) : null);
    if (!refused) return OK;
    return { ok: false, quota: refused.status, message: this.message(refused.subjectId, refused.status) };
  }

  /** Counts a committed request; subjects without quotas are not tracked (their usage is read when they get one). */
  add(use: QuotaUse): void {
    if (this.usage.size === 0) return;
    const now = this.now();
    if (use.userId !== null)
      this.usage.get(subjectKey('user', use.userId))?.add(use.startedAt, use.totalTokens, use.costUsd, now);
    if (use.keyId !== null)
      this.usage.get(subjectKey('key', use.keyId))?.add(use.startedAt, use.totalTokens, use.costUsd, now);
  }

  private firstExceeded(
    subjectType: QuotaSubject,
    subjectId: string,
  ): { subjectId: string; status: QuotaStatus } | null {
    const quotas = this.definitions.get(subjectKey(subjectType, subjectId));
    if (!quotas) return null;
    const usage = this.usageOf(subjectType, subjectId);
    const now = this.now();
    const pending = this.pending.get(subjectKey(subjectType, subjectId));
    for (const quota of quotas) {
      const used = withPending(usage.used(quota.window, now), pending);
      if (isExceeded(quota, used)) return { subjectId, status: toStatus(subjectType, quota, used) };
    }
    return null;
  }

  /** The subject's usage counters, read from the rollups and recent rows the first time they are needed. */
  private usageOf(subjectType: QuotaSubject, subjectId: string): SubjectUsage {
    const key = subjectKey(subjectType, subjectId);
    let usage = this.usage.get(key);
    if (usage) return usage;
    const now = this.now();
    const statements = this.statements[subjectType];
    const period = (start: number, end: number): Period => {
      const row = statements.period.get(start, end, subjectId);
      return { start, tokens: row?.tokens ?? 0, cost: row?.cost ?? 0 };
    };
    const dayStart = startOfDay(now);
    const monthStart = startOfMonth(now);
    usage = new SubjectUsage(period(dayStart, dayStart + DAY_MS), period(monthStart, startOfNextMonth(now)));
    for (const row of statements.minutes.all(subjectId, startOfMinute(now - ROLLING_MS - MINUTE_MS))) {
      usage.addToMinute(row.minute, row.tokens, row.cost, now);
    }
    this.usage.set(key, usage);
    return usage;
  }

  private message(subjectId: string, status: QuotaStatus): string {
    let subject: string;
    if (status.subject === 'user') {
      subject = `user ${this.statements.username.get(subjectId)?.username ?? subjectId}`;
    } else {
      const key = this.statements.keyName.get(subjectId);
      subject = key ? `key "${key.name}" (${key.prefix}…)` : `key ${subjectId}`;
    }
    const tokensOut = status.maxTokens !== null && status.usedTokens >= status.maxTokens;
    const what = tokensOut
      ? `token quota of ${status.maxTokens} tokens for ${subject} is used up (${status.usedTokens} used)`
      : `cost quota of ${usd(status.maxCostUsd ?? 0)} for ${subject} is used up (${usd(status.usedCostUsd)} used)`;
    return `${WINDOW_LABEL[status.window]} ${what}; it resets at ${status.resetsAt}. Ask your admin to raise it.`;
  }
}

const subjectKey = (subjectType: QuotaSubject, subjectId: string): string => `${subjectType}:${subjectId}`;

const sortByWindow = (quotas: Quota[]): Quota[] =>
  quotas.sort((a, b) => WINDOW_ORDER.indexOf(a.window) - WINDOW_ORDER.indexOf(b.window));

/**
 * Costs are float sums: a budget filled exactly (a reservation of max − used) can add up to a hair below max and
 * would admit one more request with nothing left to reserve. A nano-dollar is far below the price of one token.
 */
const COST_EPSILON_USD = 1e-9;

const isExceeded = (quota: Quota, used: Used): boolean =>
  (quota.maxTokens !== null && used.tokens >= quota.maxTokens) ||
  (quota.maxCostUsd !== null && used.cost >= quota.maxCostUsd - COST_EPSILON_USD);

function withPending(used: Used, pending: { tokens: number; cost: number } | undefined): Used {
  return pending ? { ...used, tokens: used.tokens + pending.tokens, cost: used.cost + pending.cost } : used;
}

function toStatus(subject: QuotaSubject, quota: Quota, used: Used): QuotaStatus {
  return {
    subject,
    window: quota.window,
    maxTokens: quota.maxTokens,
    maxCostUsd: quota.maxCostUsd,
    usedTokens: used.tokens,
    usedCostUsd: used.cost,
    resetsAt: new Date(used.resetsAt).toISOString(),
    exceeded: isExceeded(quota, used),
  };
}

const usd = (value: number): string => `$${value.toFixed(2)}`;
