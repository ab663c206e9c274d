/** Numbered schema changes. Never edit a released migration: add the next number. */
export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'slots and their events',
    up: `
      CREATE TABLE slots (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE,
        command_json TEXT NOT NULL,
        argv_json TEXT NOT NULL,
        env_json TEXT NOT NULL,
        work_dir TEXT NOT NULL,
        work_dir_managed INTEGER NOT NULL CHECK (work_dir_managed IN (0, 1)),
        home_dir TEXT NOT NULL,
        memory_limit_mb INTEGER,
        terminal TEXT NOT NULL CHECK (terminal IN ('builtin', 'ttyd')),
        desired_state TEXT NOT NULL CHECK (desired_state IN ('running', 'stopped')),
        failed_reason TEXT,
        failed_at TEXT,
        cols INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        restarts INTEGER NOT NULL DEFAULT 0,
        supervisor_restarts_seen INTEGER NOT NULL DEFAULT 0,
        ttyd_port INTEGER,
        last_activity_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE slot_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slot_id TEXT NOT NULL REFERENCES slots(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
      );
      CREATE INDEX slot_events_by_slot ON slot_events (slot_id, id DESC);
    `,
    down: `
      DROP TABLE slot_events;
      DROP TABLE slots;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = migrations[migrations.length - 1]!.version;
