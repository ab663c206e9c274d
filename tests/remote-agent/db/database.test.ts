import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  migrateTo,
  openDatabase,
  schemaVersion,
  SchemaTooNewError,
  type Db,
} from '../../../remote-agent/src/db/database.js';
import { LATEST_SCHEMA_VERSION } from '../../../remote-agent/src/db/migrations.js';

let dir: string;
const open: Db[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-db-'));
});

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function openTracked(file: string, options?: { migrate?: boolean }): Db {
  const db = openDatabase(file, options);
  open.push(db);
  return db;
}

const ALL_TABLES = [
  'alert_rules',
  'alert_state',
  'alerts',
  'api_keys',
  'audit_log',
  'auth_account',
  'auth_invites',
  'auth_session',
  'auth_settings',
  'auth_throttle',
  'auth_two_factor',
  'auth_user',
  'auth_verification',
  'backup_settings',
  'gateway_refusals',
  'idle_policy',
  'idle_stops',
  'quotas',
  'settings',
  'slot_events',
  'slot_shares',
  'slots',
  'usage_daily',
  'usage_events',
  'usage_hourly',
  'user_prefs',
  'users',
];

function tables(db: Db): string[] {
  return (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{
      name: string;
    }>
  )
    .map((row) => row.name)
    .sort();
}

function insertSlot(db: Db, id: string, name: string): void {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO slots (id, name, command_json, argv_json, env_json, work_dir, work_dir_managed, home_dir, terminal,
       desired_state, cols, rows, created_at, updated_at)
     VALUES (?, ?, '{"preset":"shell"}', '["/bin/sh","-l"]', '{}', '/tmp', 0, '/tmp', 'builtin', 'running', 80, 24, ?, ?)`,
  ).run(id, name, now, now);
}

function insertEvent(db: Db, slotId: string, message: string): void {
  db.prepare("INSERT INTO slot_events (slot_id, at, kind, message) VALUES (?, ?, 'started', ?)").run(
    slotId,
    new Date().toISOString(),
    message,
  );
}

describe('openDatabase', () => {
  it('creates the file (and its folders) readable by the agent user only, in WAL mode with foreign keys on', () => {
    const file = join(dir, 'nested', 'data', 'agent.db');
    const db = openTracked(file);
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'nested', 'data')).mode & 0o777).toBe(0o700);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
  });

  it('brings a new database to the latest schema', () => {
    const db = openTracked(join(dir, 'agent.db'));
    expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
    expect(tables(db)).toEqual(ALL_TABLES);
  });

  it('leaves the schema alone when asked not to migrate', () => {
    const db = openTracked(join(dir, 'agent.db'), { migrate: false });
    expect(schemaVersion(db)).toBe(0);
    expect(tables(db)).toEqual([]);
  });

  it('keeps rows across reopening', () => {
    const file = join(dir, 'agent.db');
    const first = openTracked(file);
    insertSlot(first, 'aaaaaaaaaa', 'kept');
    first.close();
    const second = openTracked(file);
    expect(second.prepare('SELECT name FROM slots').all()).toEqual([{ name: 'kept' }]);
  });

  it('refuses a database from a newer agent, says what to do, and leaves it untouched', () => {
    const file = join(dir, 'agent.db');
    const db = openTracked(file);
    db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
    db.close();

    let caught: unknown;
    try {
      openTracked(file);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SchemaTooNewError);
    const error = caught as SchemaTooNewError;
    expect(error.found).toBe(LATEST_SCHEMA_VERSION + 1);
    expect(error.known).toBe(LATEST_SCHEMA_VERSION);
    expect(error.message).toContain(file);
    expect(error.message).toContain('Upgrade the agent');
    expect(error.message).toContain('"migrate down"');
    // user_version lives at byte 60 of the SQLite header: nothing migrated the newer schema down.
    expect(readFileSync(file).readUInt32BE(60)).toBe(LATEST_SCHEMA_VERSION + 1);
  });
});

describe('migrateTo', () => {
  it('moves the schema down and up again, one migration at a time, reporting what it applied', () => {
    const db = openTracked(join(dir, 'agent.db'));

    const down = migrateTo(db, 0);
    expect(down.map((m) => [m.version, m.direction])).toEqual(
      Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => [LATEST_SCHEMA_VERSION - i, 'down']),
    );
    expect(schemaVersion(db)).toBe(0);
    expect(tables(db)).toEqual([]);

    const up = migrateTo(db, LATEST_SCHEMA_VERSION);
    expect(up.map((m) => [m.version, m.direction])).toEqual(
      Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => [i + 1, 'up']),
    );
    expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
    expect(tables(db)).toEqual(ALL_TABLES);
    insertSlot(db, 'aaaaaaaaaa', 'after-round-trip');
  });

  it('takes the gateway tables away and back without touching existing slots', () => {
    const db = openTracked(join(dir, 'agent.db'));
    insertSlot(db, 'bbbbbbbbbb', 'kept');
    migrateTo(db, 1);
    expect(tables(db)).toEqual(['slot_events', 'slots']);
    migrateTo(db, 2);
    expect(db.prepare('SELECT name, owner_id, metered_key_id FROM slots').all()).toEqual([
      { name: 'kept', owner_id: null, metered_key_id: null },
    ]);
  });

  it('does nothing when the schema is already at the target', () => {
    const db = openTracked(join(dir, 'agent.db'));
    expect(migrateTo(db, LATEST_SCHEMA_VERSION)).toEqual([]);
  });

  it('rejects a target outside the known versions, naming the range', () => {
    const db = openTracked(join(dir, 'agent.db'));
    expect(() => migrateTo(db, LATEST_SCHEMA_VERSION + 1)).toThrow(`must be 0-${LATEST_SCHEMA_VERSION}`);
    expect(() => migrateTo(db, -1)).toThrow(RangeError);
    expect(() => migrateTo(db, 0.5)).toThrow(RangeError);
    expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
  });
});

describe('the slot schema', () => {
  it("deletes a slot's events with the slot", () => {
    const db = openTracked(join(dir, 'agent.db'));
    insertSlot(db, 'aaaaaaaaaa', 'one');
    insertSlot(db, 'bbbbbbbbbb', 'two');
    insertEvent(db, 'aaaaaaaaaa', 'first');
    insertEvent(db, 'aaaaaaaaaa', 'second');
    insertEvent(db, 'bbbbbbbbbb', 'other');

    db.prepare('DELETE FROM slots WHERE id = ?').run('aaaaaaaaaa');
    expect(db.prepare('SELECT slot_id, message FROM slot_events').all()).toEqual([
      { slot_id: 'bbbbbbbbbb', message: 'other' },
    ]);
  });

  it('refuses events for a slot that does not exist', () => {
    const db = openTracked(join(dir, 'agent.db'));
    expect(() => insertEvent(db, 'zzzzzzzzzz', 'orphan')).toThrow(/FOREIGN KEY/);
  });

  it('treats slot names case-insensitively, so "Dev" and "dev" cannot both exist', () => {
    const db = openTracked(join(dir, 'agent.db'));
    insertSlot(db, 'aaaaaaaaaa', 'Dev');
    expect(() => insertSlot(db, 'bbbbbbbbbb', 'dev')).toThrow(/UNIQUE/);
  });
});
