import type { Db } from '../../db/database.js';
import type { BackupKeyStatus, BackupSettings } from '../../contract/index.js';
import { keyIdOf } from './crypto.js';

export const DEFAULT_BACKUP_SETTINGS: BackupSettings = {
  enabled: true,
  intervalHours: 24,
  keepDaily: 7,
  keepWeekly: 4,
  includeHomes: false,
};

interface Row {
  enabled: number;
  interval_hours: number;
  keep_daily: number;
  keep_weekly: number;
  include_homes: number;
  public_key: string | null;
  key_id: string | null;
  key_registered_at: string | null;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
}

/** backup_settings (migration 8): one row, made with the defaults on first use. */
export class BackupStore {
  constructor(private readonly db: Db) {}

  /** The row, or the defaults when none was written yet: reading never writes (a full disk must not fail a read). */
  private row(): Row {
    const found = this.db.prepare('SELECT * FROM backup_settings WHERE id = 1').get() as Row | undefined;
    if (found) return found;
    const d = DEFAULT_BACKUP_SETTINGS;
    return {
      enabled: d.enabled ? 1 : 0,
      interval_hours: d.intervalHours,
      keep_daily: d.keepDaily,
      keep_weekly: d.keepWeekly,
      include_homes: d.includeHomes ? 1 : 0,
      public_key: null,
      key_id: null,
      key_registered_at: null,
      last_success_at: null,
      last_error: null,
      last_error_at: null,
    };
  }

  /** Makes the row (with the defaults) before a write updates it. */
  private ensureRow(): void {
    const d = DEFAULT_BACKUP_SETTINGS;
    this.db
      .prepare(
        `INSERT OR IGNORE INTO backup_settings (id, enabled, interval_hours, keep_daily, keep_weekly, include_homes, updated_at)
         VALUES (1, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        d.enabled ? 1 : 0,
        d.intervalHours,
        d.keepDaily,
        d.keepWeekly,
        d.includeHomes ? 1 : 0,
        new Date().toISOString(),
      );
  }

  settings(): BackupSettings {
    const row = this.row();
    return {
      enabled: row.enabled === 1,
      intervalHours: row.interval_hours,
      keepDaily: row.keep_daily,
      keepWeekly: row.keep_weekly,
      includeHomes: row.include_homes === 1,
    };
  }

  setSettings(next: BackupSettings): BackupSettings {
    this.ensureRow();
    this.db
      .prepare(
        'UPDATE backup_settings SET enabled = ?, interval_hours = ?, keep_daily = ?, keep_weekly = ?, include_homes = ?, updated_at = ? WHERE id = 1',
      )
      .run(
        next.enabled ? 1 : 0,
        next.intervalHours,
        next.keepDaily,
        next.keepWeekly,
        next.includeHomes ? 1 : 0,
        new Date().toISOString(),
      );
    return this.settings();
  }

  publicKey(): string | null {
    return this.row().public_key;
  }

  key(): BackupKeyStatus {
    const row = this.row();
    return { registered: row.public_key !== null, keyId: row.key_id, registeredAt: row.key_registered_at };
  }

  setKey(publicKey: string): BackupKeyStatus {
    this.ensureRow();
    this.db
      .prepare(
        'UPDATE backup_settings SET public_key = ?, key_id = ?, key_registered_at = ?, updated_at = ? WHERE id = 1',
      )
      .run(publicKey, keyIdOf(publicKey), new Date().toISOString(), new Date().toISOString());
    return this.key();
  }

  outcome(): { lastSuccessAt: string | null; lastError: string | null; lastErrorAt: string | null } {
    const row = this.row();
    return { lastSuccessAt: row.last_success_at, lastError: row.last_error, lastErrorAt: row.last_error_at };
  }

  recordSuccess(at: string): void {
    this.ensureRow();
    this.db
      .prepare('UPDATE backup_settings SET last_success_at = ?, last_error = NULL, last_error_at = NULL WHERE id = 1')
      .run(at);
  }

  recordFailure(at: string, error: string): void {
    this.ensureRow();
    this.db
      .prepare('UPDATE backup_settings SET last_error = ?, last_error_at = ? WHERE id = 1')
      .run(error.slice(0, 1000), at);
  }
}
