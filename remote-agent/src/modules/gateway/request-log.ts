import type { z } from 'zod';
import { GatewayErrorCode } from '../../contract/index.js';
import type { RefusalCount, RefusalList, RefusalListQuery, RefusalRow } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import type { Refusal } from './refusal.js';

/** The few logger methods the request log uses (pino's signature). */
export interface RequestLogLogger {
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface RequestLogOptions {
  db: Db;
  logger?: RequestLogLogger;
  now?: () => number;
  /** Rows whose last refusal is older than this are deleted. */
  retentionDays?: number;
  /** The most rows kept; the oldest go first. */
  maxRows?: number;
  /** How long refusals wait in memory to be written together. */
  flushDelayMs?: number;
}

export const REQUEST_LOG_RETENTION_DAYS = 30;
export const REQUEST_LOG_MAX_ROWS = 200_000;
/** Distinct refusals held between two writes; beyond it a flood is counted, not kept. */
const MAX_PENDING = 5_000;
/** Rows recently written, by what they are, so that the same refusal again adds to their count. */
const MAX_OPEN_ROWS = 10_000;
/** Rows written per transaction by the timer; a few ms each (about 50 µs a row with its indexes). */
const WRITE_CHUNK = 200;
/** Rows deleted per statement while pruning: each step is short, and the event loop runs between steps. */
const PRUNE_CHUNK = 250;
const PRUNE_INTERVAL_MS = 3_600_000;
/** A caller the gateway knew gets a row per minute per kind of refusal; an unknown one a row per hour. */
const KNOWN_CALLER_BUCKET_MS = 60_000;
const UNKNOWN_CALLER_BUCKET_MS = 3_600_000;
/**
 * New rows one subject (key, else user, else address block) may make per minute and per hour; past either, its
 * refusals add to one overflow row per subject per hour. A subject thus writes at most 61 rows an hour (about 44,000
 * in 30 days), so no single key or address can push everyone else's history out past the row cap.
 */
const ROWS_PER_SUBJECT_PER_MINUTE = 10;
const ROWS_PER_SUBJECT_PER_HOUR = 60;
/** Subjects whose row budget is tracked; when all are of the current hour, a new subject only gets its overflow row. */
const MAX_SUBJECTS = 10_000;
/**
 * Codes of a key that was found but refused: the gateway names its user and key, but admitted no caller, so the
 * client (maybe whoever leaked the key) still controls everything else in the request.
 */
const KEY_REFUSED = new Set<string>([
  GatewayErrorCode.KEY_REVOKED,
  GatewayErrorCode.KEY_EXPIRED,
  GatewayErrorCode.USER_DISABLED,
  GatewayErrorCode.USER_DELETED,
]);
/** The label stored and grouped on for any path the gateway does not serve: a made-up path must not make new rows. */
export const UNKNOWN_ROUTE = '(unknown route)';
const SERVED_ROUTES = /^\/v1\/(?:messages|messages\/count_tokens|models|me\/usage|me\/quota)$/;

interface SubjectRows {
  minute: number;
  inMinute: number;
  hour: number;
  inHour: number;
}

interface Pending {
  fingerprint: string;
  bucket: number;
  refusal: Refusal;
  count: number;
  lastAt: number;
}

interface RawRow {
  id: number;
  at: number;
  last_at: number;
  count: number;
  status: number;
  code: string;
  message: string;
  user_id: string | null;
  username: string | null;
  key_id: string | null;
  key_name: string | null;
  key_prefix: string | null;
  model: string | null;
  method: string;
  path: string;
  ip: string;
}

const printable = (value: string, max: number): string =>
  // eslint-disable-next-line no-control-regex
  value.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, max);

/** Anything shaped like an API key (ours or Anthropic's) keeps its first 12 characters only. */
const KEY_LIKE = /\b(sk[-_][A-Za-z0-9_-]{9})[A-Za-z0-9_-]{8,}/g;
const redactKeys = (text: string): string => text.replace(KEY_LIKE, '$1…');

/** The first 12 characters at most of a key the gateway did not know: enough to recognise, too few to use. */
function safePrefix(prefix: string | null): string | null {
  if (!prefix) return null;
  const visible = prefix.slice(0, 12);
  return /^[\x21-\x7e]+$/.test(visible) ? visible : null;
}

/** The part of an address that one attacker controls in bulk: an IPv6 /64, or the whole IPv4 address. */
function addressBlock(ip: string): string {
  if (!ip.includes(':') || ip.startsWith('::ffff:')) return ip;
  return ip.split(':').slice(0, 4).join(':');
}

/** What the client was told, bounded and cleaned: never a key, never a control character. */
function clean(refusal: Refusal): Refusal {
  return {
    at: Math.trunc(refusal.at),
    status: Number.isInteger(refusal.status) ? refusal.status : 0,
    code: printable(refusal.code, 64),
    message: redactKeys(printable(refusal.message, 500)),
    userId: refusal.userId ? printable(refusal.userId, 64) : null,
    keyId: refusal.keyId ? printable(refusal.keyId, 64) : null,
    keyPrefix: safePrefix(refusal.keyPrefix),
    model: refusal.model ? redactKeys(printable(refusal.model, 200)) : null,
    method: printable(refusal.method, 16),
    path: storedPath(refusal.path),
    ip: printable(refusal.ip, 64),
  };
}

/** A route with the part a caller makes up (a model id, an unknown path) taken out: varying it must not make rows. */
function routeOf(path: string): string {
  const bare = path.slice(0, 200).split('?')[0] ?? '';
  if (bare === '') return '';
  if (/^\/v1\/models\/.+$/.test(bare)) return '/v1/models/:id';
  return SERVED_ROUTES.test(bare) ? bare : UNKNOWN_ROUTE;
}

/** The path as the row shows it: a served one as it came (redacted), any other as the fixed label. */
function storedPath(path: string): string {
  const bare = path.split('?')[0] ?? '';
  return routeOf(bare) === UNKNOWN_ROUTE ? UNKNOWN_ROUTE : redactKeys(printable(bare, 200));
}

/** A refusal of a caller the gateway admitted (its key was valid): it alone is grouped per minute and route. */
const admittedCaller = (r: Refusal): boolean => r.userId !== null && !KEY_REFUSED.has(r.code);

/** Whose row budget a refusal spends: its key, else its user (legacy mode), else its address block. */
const subjectOf = (r: Refusal): string =>
  r.keyId !== null ? `k:${r.keyId}` : r.userId !== null ? `u:${r.userId}` : `a:${addressBlock(r.ip)}`;

/**
 * Refusals of a caller the gateway admitted are grouped per minute by what the admin filters or reads on (status,
 * code, key, address block, route), keeping the first one's model. All others are grouped per address block and
 * code (and key, when a refused key was recognised), per hour, whatever path or model they sent: someone spraying
 * keys, or replaying a revoked one at made-up paths, adds a row an hour, not one a request.
 */
function groupOf(r: Refusal): { fingerprint: string; bucket: number } {
  if (admittedCaller(r)) {
    const bucket = Math.floor(r.at / KNOWN_CALLER_BUCKET_MS);
    return {
      bucket,
      fingerprint: [
        'k',
        bucket,
        r.status,
        r.code,
        r.userId,
        r.keyId,
        addressBlock(r.ip),
        r.method,
        routeOf(r.path),
      ].join('\u0000'),
    };
  }
  const bucket = Math.floor(r.at / UNKNOWN_CALLER_BUCKET_MS);
  return { bucket, fingerprint: ['u', bucket, r.status, r.code, r.userId, r.keyId, addressBlock(r.ip)].join('\u0000') };
}

/** The one row per subject per hour that takes its refusals once its row budget is spent. */
function overflowOf(subject: string, at: number): { fingerprint: string; bucket: number } {
  const bucket = Math.floor(at / UNKNOWN_CALLER_BUCKET_MS);
  return { bucket, fingerprint: ['o', bucket, subject].join('\u0000') };
}

const toIso = (ms: number): string => new Date(ms).toISOString();

/**
 * The request log: what the gateway refused and why, for the admin's "why did my call fail?". record() only queues
 * (the gateway never waits on the disk); queued refusals are written together a moment later in one transaction,
 * identical ones merged into one row with a count. Rows older than the retention, or beyond the row cap, are
 * pruned in short steps.
 */
export class RequestLog {
  private readonly db: Db;
  private readonly logger: RequestLogLogger | undefined;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly maxRows: number;
  private readonly flushDelayMs: number;
  private readonly statements;
  private readonly writeBatch: (batch: Pending[]) => void;
  private pending = new Map<string, Pending>();
  /** Rows written in the current buckets, by fingerprint: a repeat adds to the row instead of making another. */
  private open = new Map<string, number>();
  /** New rows made per subject in the current minute and hour. */
  private subjects = new Map<string, SubjectRows>();
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;
  private writing: NodeJS.Immediate | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private pruning: Promise<number> | null = null;
  private rowsSincePrune = 0;
  private closed = false;

  constructor(options: RequestLogOptions) {
    this.db = options.db;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.retentionMs = (options.retentionDays ?? REQUEST_LOG_RETENTION_DAYS) * 86_400_000;
    this.maxRows = options.maxRows ?? REQUEST_LOG_MAX_ROWS;
    this.flushDelayMs = options.flushDelayMs ?? 250;
    this.statements = {
      insert: this.db.prepare<
        [
          number,
          number,
          number,
          number,
          string,
          string,
          string | null,
          string | null,
          string | null,
          string | null,
          string,
          string,
          string,
        ]
      >(
        `INSERT INTO gateway_refusals (at, last_at, count, status, code, message, user_id, key_id, key_prefix, model,
           method, path, ip)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      addTo: this.db.prepare<[number, number, number]>(
        'UPDATE gateway_refusals SET count = count + ?, last_at = max(last_at, ?) WHERE id = ?',
      ),
      pruneOld: this.db.prepare<[number, number]>(
        `DELETE FROM gateway_refusals WHERE id IN
           (SELECT id FROM gateway_refusals WHERE last_at < ? ORDER BY id LIMIT ?)`,
      ),
      nthNewest: this.db.prepare<[number], { id: number }>(
        'SELECT id FROM gateway_refusals ORDER BY id DESC LIMIT 1 OFFSET ?',
      ),
      pruneUpTo: this.db.prepare<[number, number]>(
        `DELETE FROM gateway_refusals WHERE id IN
           (SELECT id FROM gateway_refusals WHERE id <= ? ORDER BY id LIMIT ?)`,
      ),
    };
    this.writeBatch = this.db.transaction((batch: Pending[]) => this.insert(batch));
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  /** Queues one refusal; never throws, never waits (it runs on the gateway's path). */
  record(refusal: Refusal): void {
    if (this.closed) return;
    if (!Number.isFinite(refusal.at)) refusal = { ...refusal, at: this.now() };
    try {
      // Grouped on the fields as reported (cheap); only the first of a group is cleaned, so a flood of one kind
      // costs a map lookup per request.
      let { fingerprint, bucket } = groupOf(refusal);
      if (!this.pending.has(fingerprint) && !this.open.has(fingerprint)) {
        const subject = subjectOf(refusal);
        if (!this.spendRow(subject, refusal.at)) ({ fingerprint, bucket } = overflowOf(subject, refusal.at));
      }
      const same = this.pending.get(fingerprint);
      if (same) {
        same.count += 1;
        same.lastAt = Math.max(same.lastAt, refusal.at);
      } else if (this.pending.size >= MAX_PENDING) {
        this.dropped += 1;
      } else {
        const cleaned = clean(refusal);
        this.pending.set(fingerprint, { fingerprint, bucket, refusal: cleaned, count: 1, lastAt: cleaned.at });
      }
      if (!this.timer && !this.writing) {
        this.timer = setTimeout(() => this.writeSome(), this.flushDelayMs);
        this.timer.unref();
      }
    } catch (error) {
      this.logger?.error({ err: error }, 'could not queue a refusal for the request log');
    }
  }

  /** Whether the subject may make one more row now (and counts it): at most so many a minute and an hour. */
  private spendRow(subject: string, at: number): boolean {
    const minute = Math.floor(at / 60_000);
    const hour = Math.floor(at / 3_600_000);
    let rows = this.subjects.get(subject);
    if (!rows || rows.hour !== hour) {
      if (!rows && this.subjects.size >= MAX_SUBJECTS) {
        for (const [key, old] of this.subjects) if (old.hour !== hour) this.subjects.delete(key);
        if (this.subjects.size >= MAX_SUBJECTS) return false;
      }
      rows = { minute, inMinute: 0, hour, inHour: 0 };
      this.subjects.set(subject, rows);
    }
    if (rows.minute !== minute) {
      rows.minute = minute;
      rows.inMinute = 0;
    }
    if (rows.inMinute >= ROWS_PER_SUBJECT_PER_MINUTE || rows.inHour >= ROWS_PER_SUBJECT_PER_HOUR) return false;
    rows.inMinute += 1;
    rows.inHour += 1;
    return true;
  }

  /** Writes everything queued now (before the admin reads the log, and on close). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.write(this.pending.size);
  }

  /**
   * The timer's write: at most WRITE_CHUNK rows in one transaction, then the event loop runs before the next chunk,
   * so that a burst of different refusals never holds the gateway for long.
   */
  private writeSome(): void {
    this.timer = null;
    this.writing = null;
    this.write(WRITE_CHUNK);
    if (this.pending.size > 0) this.writing = setImmediate(() => this.writeSome());
  }

  private write(most: number): void {
    if (this.dropped > 0) {
      this.logger?.warn(
        { dropped: this.dropped },
        'request log: too many different refusals at once; some were counted out of the log',
      );
      this.dropped = 0;
    }
    if (this.pending.size === 0) return;
    const batch: Pending[] = [];
    for (const [fingerprint, pending] of this.pending) {
      if (batch.length >= most) break;
      batch.push(pending);
      this.pending.delete(fingerprint);
    }
    try {
      this.writeBatch(batch);
    } catch (error) {
      // The gateway's answers went out already; losing log rows must not take anything else down.
      this.logger?.error({ err: error, refusals: batch.length }, 'could not write refusals to the request log');
      return;
    }
    if (this.rowsSincePrune > this.maxRows / 10) void this.prune();
  }

  /** Writes what is queued and stops taking more. */
  close(): void {
    if (this.writing) clearImmediate(this.writing);
    this.writing = null;
    this.flush();
    this.closed = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.pruneTimer = null;
  }

  private insert(batch: Pending[]): void {
    if (this.open.size > MAX_OPEN_ROWS) this.open.clear();
    for (const p of batch) {
      const openRow = this.open.get(p.fingerprint);
      if (openRow !== undefined && this.statements.addTo.run(p.count, p.lastAt, openRow).changes === 1) continue;
      const r = p.refusal;
      const { lastInsertRowid } = this.statements.insert.run(
        r.at,
        p.lastAt,
        p.count,
        r.status,
        r.code,
        r.message,
        r.userId,
        r.keyId,
        r.keyPrefix,
        r.model,
        r.method,
        r.path,
        r.ip,
      );
      this.open.set(p.fingerprint, Number(lastInsertRowid));
      this.rowsSincePrune += 1;
    }
  }

  /**
   * Deletes rows past the retention, then the oldest beyond the row cap, a chunk at a time with the event loop free
   * between chunks. Resolves with the number deleted. One prune runs at a time.
   */
  prune(): Promise<number> {
    this.pruning ??= this.pruneInSteps().finally(() => {
      this.pruning = null;
    });
    return this.pruning;
  }

  private async pruneInSteps(): Promise<number> {
    this.rowsSincePrune = 0;
    let deleted = 0;
    const step = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    try {
      const cutoff = this.now() - this.retentionMs;
      for (;;) {
        const { changes } = this.statements.pruneOld.run(cutoff, PRUNE_CHUNK);
        deleted += changes;
        if (changes < PRUNE_CHUNK) break;
        await step();
      }
      const boundary = this.statements.nthNewest.get(this.maxRows);
      if (boundary) {
        for (;;) {
          const { changes } = this.statements.pruneUpTo.run(boundary.id, PRUNE_CHUNK);
          deleted += changes;
          if (changes < PRUNE_CHUNK) break;
          await step();
        }
      }
    } catch (error) {
      this.logger?.error({ err: error }, 'could not prune the request log');
    }
    // Deleted rows may be in the map of open rows: a repeat of one then makes a new row (addTo changes nothing).
    return deleted;
  }

  /** Newest first; the cursor is the id of the last row of the previous page. */
  list(query: z.output<typeof RefusalListQuery>): RefusalList {
    const where: string[] = [];
    const params: Array<string | number> = [];
    const filter = (sql: string, value: string | number | undefined): void => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    filter('r.user_id = ?', query.userId);
    filter('r.key_id = ?', query.keyId);
    filter('r.status = ?', query.status);
    filter('r.code = ?', query.code);
    filter('r.last_at >= ?', query.from === undefined ? undefined : Date.parse(query.from));
    filter('r.at <= ?', query.to === undefined ? undefined : Date.parse(query.to));
    filter('r.id < ?', query.cursor === undefined ? undefined : Number(query.cursor));
    const rows = this.db
      .prepare<Array<string | number>, RawRow>(
        `SELECT r.id, r.at, r.last_at, r.count, r.status, r.code, r.message, r.user_id, u.username, r.key_id,
           k.name AS key_name, COALESCE(k.prefix, r.key_prefix) AS key_prefix, r.model, r.method, r.path, r.ip
         FROM gateway_refusals r
         LEFT JOIN users u ON u.id = r.user_id
         LEFT JOIN api_keys k ON k.id = r.key_id
         ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY r.id DESC
         LIMIT ?`,
      )
      .all(...params, query.limit + 1);
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    return { rows: page.map(toRow), nextCursor: more ? String(page[page.length - 1]!.id) : null };
  }

  /** How many requests were refused from `from` to `to` (now when left out). */
  count(query: {
    from: string;
    to?: string | undefined;
    userId?: string | undefined;
    keyId?: string | undefined;
  }): RefusalCount {
    const from = Date.parse(query.from);
    const to = query.to === undefined ? this.now() : Date.parse(query.to);
    const where = ['last_at >= ?', 'at <= ?'];
    const params: Array<string | number> = [from, to];
    if (query.userId !== undefined) {
      where.push('user_id = ?');
      params.push(query.userId);
    }
    if (query.keyId !== undefined) {
      where.push('key_id = ?');
      params.push(query.keyId);
    }
    const row = this.db
      .prepare<Array<string | number>, { refusals: number | null }>(
        `SELECT SUM(count) AS refusals FROM gateway_refusals WHERE ${where.join(' AND ')}`,
      )
      .get(...params);
    const result: RefusalCount = { from: toIso(from), to: toIso(to), refusals: row?.refusals ?? 0 };
    return result;
  }
}

function toRow(raw: RawRow): RefusalRow {
  return {
    id: raw.id,
    at: toIso(raw.at),
    lastAt: toIso(raw.last_at),
    count: raw.count,
    status: raw.status,
    code: raw.code,
    message: raw.message,
    userId: raw.user_id,
    username: raw.username,
    keyId: raw.key_id,
    keyName: raw.key_name,
    keyPrefix: raw.key_prefix,
    model: raw.model,
    method: raw.method,
    path: raw.path,
    ip: raw.ip,
  };
}
