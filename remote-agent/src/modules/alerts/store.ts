import type { Alert, AlertFilter, AlertSeverity } from '../../contract/index.js';
import type { Db } from '../../db/database.js';

interface AlertRow {
  id: number;
  kind: 'alert' | 'recovery';
  rule: string;
  subject: string;
  severity: AlertSeverity;
  title: string;
  message: string;
  state: 'firing' | 'resolved' | 'info';
  fired_at: string;
  resolved_at: string | null;
  last_seen_at: string;
  occurrences: number;
  notified: number;
  last_notified_at: string | null;
  read_at: string | null;
}

export interface FiringAlert {
  id: number;
  rule: string;
  subject: string;
  severity: AlertSeverity;
  title: string;
  message: string;
  firedAt: number;
  notified: boolean;
  lastNotifiedAt: number | null;
}

export const ALERT_RETENTION_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_TEXT = 1000;

const clip = (text: string): string => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}\u2026` : text);

export function toAlert(row: AlertRow): Alert {
  return {
    id: String(row.id),
    kind: row.kind,
    rule: row.rule,
    subject: row.subject,
    severity: row.severity,
    title: row.title,
    message: row.message,
    state: row.state,
    firedAt: row.fired_at,
    resolvedAt: row.resolved_at,
    lastSeenAt: row.last_seen_at,
    occurrences: row.occurrences,
    notified: row.notified === 1,
    read: row.read_at !== null,
  };
}

const FILTERS: Record<AlertFilter, string> = {
  all: '',
  firing: " AND state = 'firing'",
  resolved: " AND state = 'resolved'",
  recovery: " AND kind = 'recovery'",
  unread: ' AND read_at IS NULL',
};

/** The history: alerts (firing, then resolved in place) and recovery events, kept 30 days. */
export class AlertStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  private iso(ms = this.now()): string {
    return new Date(ms).toISOString();
  }

  get(id: number): Alert | null {
    const row = this.db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
    return row ? toAlert(row) : null;
  }

  firing(): FiringAlert[] {
    const rows = this.db.prepare("SELECT * FROM alerts WHERE state = 'firing' ORDER BY id").all() as AlertRow[];
    return rows.map((row) => ({
      id: row.id,
      rule: row.rule,
      subject: row.subject,
      severity: row.severity,
      title: row.title,
      message: row.message,
      firedAt: Date.parse(row.fired_at),
      notified: row.notified === 1,
      lastNotifiedAt: row.last_notified_at ? Date.parse(row.last_notified_at) : null,
    }));
  }

  /** The last time any alert of this rule and subject was notified (to hold back a re-fire within the hour). */
  lastNotified(rule: string, subject: string): number | null {
    const row = this.db
      .prepare('SELECT MAX(last_notified_at) AS at FROM alerts WHERE kind = ? AND rule = ? AND subject = ?')
      .get('alert', rule, subject) as { at: string | null };
    return row.at ? Date.parse(row.at) : null;
  }

  fire(input: {
    rule: string;
    subject: string;
    severity: AlertSeverity;
    title: string;
    message: string;
    notify: boolean;
    /** Momentary alerts (the agent restarted) are resolved as they are recorded. */
    resolved?: boolean;
    /** When it fired, if earlier than now (an alert kept in memory while the disk was full). */
    firedAt?: number;
  }): Alert {
    const at = this.iso();
    const firedAt = input.firedAt === undefined ? at : new Date(input.firedAt).toISOString();
    const result = this.db
      .prepare(
        `INSERT INTO alerts (kind, rule, subject, severity, title, message, state, fired_at, resolved_at, last_seen_at,
           notified, last_notified_at)
         VALUES ('alert', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        input.rule,
        input.subject,
        input.severity,
        clip(input.title),
        clip(input.message),
        input.resolved ? 'resolved' : 'firing',
        firedAt,
        input.resolved ? at : null,
        at,
        input.notify ? 1 : 0,
        input.notify ? at : null,
      );
    return this.get(Number(result.lastInsertRowid))!;
  }

  /** Still firing: the latest message and when it was seen. */
  seen(id: number, message: string): void {
    this.db.prepare('UPDATE alerts SET message = ?, last_seen_at = ? WHERE id = ?').run(clip(message), this.iso(), id);
  }

  markNotified(id: number): void {
    const at = this.iso();
    this.db.prepare('UPDATE alerts SET notified = 1, last_notified_at = ? WHERE id = ?').run(at, id);
  }

  resolve(id: number): Alert | null {
    const at = this.iso();
    this.db
      .prepare(
        "UPDATE alerts SET state = 'resolved', resolved_at = ?, last_seen_at = ? WHERE id = ? AND state = 'firing'",
      )
      .run(at, at, id);
    return this.get(id);
  }

  /**
   * A recovery event: the same kind and target within `coalesceMs` adds to the last row (a slot PM2 restarts every
   * few seconds is one line that counts up, unread again) instead of filling the history.
   */
  recovery(input: { kind: string; target: string | null; message: string }, coalesceMs = 60_000): Alert {
    const subject = input.target ?? '';
    const now = this.now();
    const last = this.db
      .prepare("SELECT * FROM alerts WHERE kind = 'recovery' AND rule = ? AND subject = ? ORDER BY id DESC LIMIT 1")
      .get(input.kind, subject) as AlertRow | undefined;
    if (last && now - Date.parse(last.last_seen_at) < coalesceMs) {
      this.db
        .prepare(
          'UPDATE alerts SET occurrences = occurrences + 1, message = ?, last_seen_at = ?, read_at = NULL WHERE id = ?',
        )
        .run(clip(input.message), this.iso(now), last.id);
      return this.get(last.id)!;
    }
    const at = this.iso(now);
    const result = this.db
      .prepare(
        `INSERT INTO alerts (kind, rule, subject, severity, title, message, state, fired_at, last_seen_at)
         VALUES ('recovery', ?, ?, 'info', ?, ?, 'info', ?, ?)`,
      )
      .run(input.kind, subject, clip(recoveryTitle(input.kind)), clip(input.message), at, at);
    return this.get(Number(result.lastInsertRowid))!;
  }

  list(query: { filter: AlertFilter; limit: number; cursor?: string | undefined }): {
    alerts: Alert[];
    nextCursor: string | null;
  } {
    const args: unknown[] = [];
    let where = FILTERS[query.filter];
    if (query.cursor !== undefined) {
      where += ' AND id < ?';
      args.push(Number(query.cursor));
    }
    const rows = this.db
      .prepare(`SELECT * FROM alerts WHERE 1=1${where} ORDER BY id DESC LIMIT ?`)
      .all(...args, query.limit + 1) as AlertRow[];
    const page = rows.slice(0, query.limit);
    return {
      alerts: page.map(toAlert),
      nextCursor: rows.length > query.limit ? String(page[page.length - 1]!.id) : null,
    };
  }

  counts(): { unread: number; firing: number } {
    return this.db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM alerts WHERE read_at IS NULL) AS unread,
                (SELECT COUNT(*) FROM alerts WHERE state = 'firing') AS firing`,
      )
      .get() as { unread: number; firing: number };
  }

  markRead(ids: string[] | 'all'): number {
    const at = this.iso();
    if (ids === 'all') return this.db.prepare('UPDATE alerts SET read_at = ? WHERE read_at IS NULL').run(at).changes;
    const statement = this.db.prepare('UPDATE alerts SET read_at = ? WHERE id = ? AND read_at IS NULL');
    let marked = 0;
    this.db.transaction(() => {
      for (const id of ids) marked += statement.run(at, Number(id)).changes;
    })();
    return marked;
  }

  /** Removes what ended more than 30 days ago (a firing alert stays however old). */
  prune(): number {
    const cutoff = this.iso(this.now() - ALERT_RETENTION_DAYS * DAY_MS);
    return this.db.prepare("DELETE FROM alerts WHERE state != 'firing' AND last_seen_at < ?").run(cutoff).changes;
  }
}

const RECOVERY_TITLES: Record<string, string> = {
  'slot-restarted': 'PM2 restarted a slot',
  'slot-adopted': 'A running slot was taken over again',
  'supervisor-restarted': 'PM2 daemon recovered',
  reconcile: 'Reconciliation fixed a slot',
  storage: 'Storage writable again',
};

function recoveryTitle(kind: string): string {
  return RECOVERY_TITLES[kind] ?? `Recovered: ${kind.replace(/[-_.]/g, ' ')}`;
}
