import type { Db } from '../../db/database.js';
import { DEFAULT_AUTH_SETTINGS, StoredAuthSettings, type UpdateAuthSettingsBody } from '../../contract/index.js';
import type { z } from 'zod';

/** The sign-in settings row (auth_settings), validated with the versioned schema on read and on write. */
export class AuthSettingsStore {
  private cached: StoredAuthSettings | null = null;

  constructor(
    private readonly db: Db,
    private readonly onInvalid: (message: string) => void = () => {},
  ) {}

  get(): StoredAuthSettings {
    if (this.cached) return this.cached;
    const row = this.db.prepare('SELECT settings_json FROM auth_settings WHERE id = 1').get() as
      { settings_json: string } | undefined;
    let settings = DEFAULT_AUTH_SETTINGS;
    if (row) {
      let raw: unknown = null;
      try {
        raw = JSON.parse(row.settings_json);
      } catch {
        // Reported below.
      }
      const parsed = StoredAuthSettings.safeParse(raw);
      if (parsed.success) settings = parsed.data;
      // A row this agent cannot read (hand-edited, or from a newer agent) falls back to the safe defaults: sign-up off.
      else this.onInvalid('the stored sign-in settings are not valid; using the defaults until an admin saves them');
    }
    this.cached = settings;
    return settings;
  }

  update(
    changes: z.output<typeof UpdateAuthSettingsBody> | { github: StoredAuthSettings['github'] },
  ): StoredAuthSettings {
    const next = StoredAuthSettings.parse({ ...this.get(), ...changes });
    this.db
      .prepare(
        `INSERT INTO auth_settings (id, settings_json, updated_at) VALUES (1, ?, ?)
         ON CONFLICT (id) DO UPDATE SET settings_json = excluded.settings_json, updated_at = excluded.updated_at`,
      )
      .run(JSON.stringify(next), new Date().toISOString());
    this.cached = next;
    return next;
  }
}
