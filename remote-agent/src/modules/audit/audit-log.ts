import { AsyncLocalStorage } from 'node:async_hooks';
import { Readable } from 'node:stream';
import type { Db } from '../../db/database.js';

export type AuditActor = { type: 'admin' | 'user' | 'anonymous' | 'system'; id: string | null };
export type AuditDetail = Record<string, string | number | boolean | null>;

export interface AuditEntryInput {
  actor: AuditActor;
  action: string;
  target?: string | null;
  outcome?: 'success' | 'failure';
  ip?: string | null;
  userAgent?: string | null;
  detail?: AuditDetail;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: AuditActor;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure';
  ip: string | null;
  userAgent: string | null;
  detail: AuditDetail;
}

export interface AuditFilter {
  /** ISO time, inclusive. */
  since?: string;
  /** ISO time, exclusive. */
  until?: string;
  /** An actor id (a user's or 'admin'). */
  actor?: string;
  action?: string;
}

export interface AuditListQuery extends AuditFilter {
  limit?: number;
  /** The id of the last entry of the previous page (pages go newest first). */
  cursor?: string;
}

interface AuditRow {
  id: number;
  at: string;
  actor_type: AuditActor['type'];
  actor_id: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure';
  ip: string | null;
  user_agent: string | null;
  detail_json: string;
}

/** Kept a year; older entries are removed by `prune` (run on a timer by `startPruning`). */
export const AUDIT_RETENTION_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;
const EXPORT_PAGE_ROWS = 1000;
const MAX_FIELD = 512;
export const AUDIT_CSV_COLUMNS = [
  'id',
  'at',
  'actor_type',
  'actor_id',
  'action',
  'target',
  'outcome',
  'ip',
  'user_agent',
  'detail',
] as const;

const clip = (value: string | null | undefined): string | null =>
  value === undefined || value === null ? null : value.length > MAX_FIELD ? value.slice(0, MAX_FIELD) : value;

function toEntry(row: AuditRow): AuditEntry {
  let detail: AuditDetail = {};
  try {
    detail = JSON.parse(row.detail_json) as AuditDetail;
  } catch {
    // A row written by hand with broken JSON still lists.
  }
  return {
    id: String(row.id),
    at: row.at,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    ip: row.ip,
    userAgent: row.user_agent,
    detail,
  };
}

/**
 * A CSV cell: quoted when needed, and a leading = + - @ | % (or tab/CR), also after leading spaces (some imports trim
 * them), neutralised with a ' so a spreadsheet never runs it as a formula.
 */
function csvCell(value: string | null): string {
  if (value === null) return '';
  const safe = /^[\s]*[=+\-@|%]/.test(value) || /^[\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function csvLine(row: AuditRow): string {
  return (
    [
      String(row.id),
      row.at,
      row.actor_type,
      row.actor_id,
      row.action,
      row.target,
      row.outcome,
      row.ip,
      row.user_agent,
      row.detail_json,
    ]
      .map(csvCell)
      .join(',') + '\n'
  );
}

/** An admin API request being served: who sent it (the panel's host profile) and from where. */
export interface AuditScope {
  actor: AuditActor;
  ip: string | null;
  userAgent: string | null;
  /** Whether the request's own code wrote an admin row (then the generic one is not written). */
  recorded: boolean;
}

const adminRequest = new AsyncLocalStorage<AuditScope>();

/** Runs `fn` (the rest of an admin request) in its audit scope (modules/audit/admin-actions.ts sets it up). */
export function runInAuditScope(scope: AuditScope, fn: () => void): void {
  adminRequest.run(scope, fn);
}

/**
 * Who did what, when, from where. Callers never pass secrets (passwords, tokens, keys) in `detail`; values are
 * scalars only, so an object holding a secret cannot slip in whole.
 */
export class AuditLog {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  record(entry: AuditEntryInput): void {
    // Inside an admin request, an admin row names the panel's host profile that sent it, and where from.
    const scope = adminRequest.getStore();
    if (scope && entry.actor.type === 'admin') {
      entry = { ...entry, actor: scope.actor, ip: entry.ip ?? scope.ip, userAgent: entry.userAgent ?? scope.userAgent };
      scope.recorded = true;
    }
    const detail: AuditDetail = {};
    for (const [key, value] of Object.entries(entry.detail ?? {})) {
      detail[key] = typeof value === 'string' ? clip(value) : value;
    }
    this.db
      .prepare(
        `INSERT INTO audit_log (at, actor_type, actor_id, action, target, outcome, ip, user_agent, detail_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        new Date(this.now()).toISOString(),
        entry.actor.type,
        entry.actor.id,
        entry.action,
        clip(entry.target),
        entry.outcome ?? 'success',
        clip(entry.ip),
        clip(entry.userAgent),
        JSON.stringify(detail),
      );
  }

  /**
   * Whether an API key was made in the portal by its user: a portal `key.created` for it, or a portal `key.rotated`
   * whose old key was. A key without such a record (the admin's, or older than the retention) answers false.
   */
  keyMadeInPortal(keyId: string): boolean {
    const statement = this.db.prepare(
      `SELECT action, target FROM audit_log
       WHERE outcome = 'success' AND json_extract(detail_json, '$.via') = 'portal'
         AND ((action = 'key.created' AND target = ?)
           OR (action = 'key.rotated' AND json_extract(detail_json, '$.newKeyId') = ?))
       LIMIT 1`,
    );
    let id = keyId;
    for (let hops = 0; hops < 100; hops += 1) {
      const row = statement.get(id, id) as { action: string; target: string } | undefined;
      if (!row) return false;
      if (row.action === 'key.created') return true;
      id = row.target;
    }
    return false;
  }

  /** Newest first, `limit` (1-500, default 100) at a time; `nextCursor` is null on the last page. */
  list(query: AuditListQuery = {}): { entries: AuditEntry[]; nextCursor: string | null } {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 500);
    const args: unknown[] = [];
    let where = this.filterSql(query, args);
    if (query.cursor !== undefined) {
      where += ' AND id < ?';
      args.push(Number(query.cursor));
    }
    const rows = this.db
      .prepare(`SELECT * FROM audit_log WHERE 1=1${where} ORDER BY id DESC LIMIT ?`)
      .all(...args, limit + 1) as AuditRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    return { entries: page.map(toEntry), nextCursor: more ? String(page[page.length - 1]!.id) : null };
  }

  /**
   * The filtered entries, oldest first, as JSON lines or CSV (with a header), read a page at a time as the reader
   * takes them, so a year of entries never sits in memory.
   */
  exportStream(filter: AuditFilter, format: 'jsonl' | 'csv'): Readable {
    const args: unknown[] = [];
    const where = this.filterSql(filter, args);
    const statement = this.db.prepare(`SELECT * FROM audit_log WHERE id > ?${where} ORDER BY id LIMIT ?`);
    async function* pages(): AsyncGenerator<string> {
      if (format === 'csv') yield `${AUDIT_CSV_COLUMNS.join(',')}\n`;
      let lastId = 0;
      for (;;) {
        const page = statement.all(lastId, ...args, EXPORT_PAGE_ROWS) as AuditRow[];
        if (page.length === 0) break;
        yield page.map((row) => (format === 'csv' ? csvLine(row) : `${JSON.stringify(toEntry(row))}\n`)).join('');
        if (page.length < EXPORT_PAGE_ROWS) break;
        lastId = page[page.length - 1]!.id;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return Readable.from(pages(), { objectMode: false });
  }

  /** Removes entries older than the retention; returns how many. */
  prune(): number {
    const cutoff = new Date(this.now() - AUDIT_RETENTION_DAYS * DAY_MS).toISOString();
    return this.db.prepare('DELETE FROM audit_log WHERE at < ?').run(cutoff).changes;
  }

  /** Prunes now and then every `intervalMs` (default 6 hours) until `stop`. */
  startPruning(intervalMs = 6 * 60 * 60 * 1000): void {
    if (this.timer) return;
    this.prune();
    this.timer = setInterval(() => this.prune(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private filterSql(filter: AuditFilter, args: unknown[]): string {
    let sql = '';
    if (filter.since !== undefined) {
      sql += ' AND at >= ?';
      args.push(new Date(filter.since).toISOString());
    }
    if (filter.until !== undefined) {
      sql += ' AND at < ?';
      args.push(new Date(filter.until).toISOString());
    }
    if (filter.actor !== undefined) {
      // `admin` is every admin row, whichever host profile sent it.
      sql += filter.actor === 'admin' ? " AND (actor_id = ? OR actor_type = 'admin')" : ' AND actor_id = ?';
      args.push(filter.actor);
    }
    if (filter.action !== undefined) {
      sql += ' AND action = ?';
      args.push(filter.action);
    }
    return sql;
  }
}
