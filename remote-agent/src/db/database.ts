import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { LATEST_SCHEMA_VERSION, migrations, type Migration } from './migrations.js';

export type Db = Database.Database;

export class SchemaTooNewError extends Error {
  constructor(
    readonly found: number,
    readonly known: number,
    file: string,
  ) {
    super(
      `The database ${file} has schema version ${found}, newer than this agent knows (${known}). ` +
        'Upgrade the agent, or run the newer agent\'s "migrate down" first.',
    );
    this.name = 'SchemaTooNewError';
  }
}

/** Opens (creating when needed) the agent's SQLite database, private to its user, and applies pending migrations. */
export function openDatabase(file: string, options: { migrate?: boolean } = {}): Db {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const fresh = !existsSync(file);
  const db = new Database(file);
  if (fresh) chmodSync(file, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // WAL with synchronous=NORMAL survives a killed process; only a power loss can drop the newest commits.
  db.pragma('synchronous = NORMAL');
  try {
    const version = schemaVersion(db);
    if (version > LATEST_SCHEMA_VERSION) throw new SchemaTooNewError(version, LATEST_SCHEMA_VERSION, file);
    if (options.migrate !== false) migrateTo(db, LATEST_SCHEMA_VERSION);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Moves the schema up or down to `target`, one migration per transaction. Returns the migrations applied. */
export function migrateTo(db: Db, target: number): Array<{ version: number; name: string; direction: 'up' | 'down' }> {
  if (!Number.isInteger(target) || target < 0 || target > LATEST_SCHEMA_VERSION) {
    throw new RangeError(`target schema version must be 0-${LATEST_SCHEMA_VERSION}, got ${target}`);
  }
  const applied: Array<{ version: number; name: string; direction: 'up' | 'down' }> = [];
  const step = (migration: Migration, direction: 'up' | 'down'): void => {
    db.transaction(() => {
      db.exec(direction === 'up' ? migration.up : migration.down);
      db.pragma(`user_version = ${direction === 'up' ? migration.version : migration.version - 1}`);
    })();
    applied.push({ version: migration.version, name: migration.name, direction });
  };
  let current = schemaVersion(db);
  while (current < target) {
    const next = migrations.find((m) => m.version === current + 1);
    if (!next) throw new Error(`no migration from schema version ${current}`);
    step(next, 'up');
    current = next.version;
  }
  while (current > target) {
    const last = migrations.find((m) => m.version === current);
    if (!last) throw new Error(`no migration down from schema version ${current}`);
    step(last, 'down');
    current -= 1;
  }
  return applied;
}
