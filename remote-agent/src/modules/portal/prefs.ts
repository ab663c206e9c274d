import type Database from 'better-sqlite3';
import { DEFAULT_PORTAL_PREFS, PortalPrefs } from '../../contract/index.js';
import type { Db } from '../../db/database.js';

/** Portal preferences per user (table user_prefs), validated on the way in and on the way out. */
export class PrefsStore {
  private readonly select: Database.Statement<[string], { version: number; prefs_json: string }>;
  private readonly upsert: Database.Statement<[string, number, string, string]>;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.select = db.prepare('SELECT version, prefs_json FROM user_prefs WHERE user_id = ?');
    this.upsert = db.prepare(
      `INSERT INTO user_prefs (user_id, version, prefs_json, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, prefs_json = excluded.prefs_json,
         updated_at = excluded.updated_at`,
    );
  }

  /** The saved preferences, or the defaults (none saved, or saved by a newer agent in a version this one lacks). */
  get(userId: string): PortalPrefs {
    const row = this.select.get(userId);
    if (!row) return { ...DEFAULT_PORTAL_PREFS };
    try {
      const parsed = PortalPrefs.safeParse(JSON.parse(row.prefs_json));
      return parsed.success ? parsed.data : { ...DEFAULT_PORTAL_PREFS };
    } catch {
      return { ...DEFAULT_PORTAL_PREFS };
    }
  }

  /** `prefs` is already validated (PortalPrefs). */
  set(userId: string, prefs: PortalPrefs): PortalPrefs {
    this.upsert.run(userId, prefs.version, JSON.stringify(prefs), new Date(this.now()).toISOString());
    return this.get(userId);
  }
}
