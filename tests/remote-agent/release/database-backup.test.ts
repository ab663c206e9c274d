import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  backupDatabase,
  BACKUPS_KEPT,
  databaseSchema,
  restoreDatabase,
  slotAccountsIn,
} from '../../../remote-agent/src/release/database-backup.js';
import { slotAccount } from '../../../remote-agent/src/modules/slots/paths.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-backup-'));
  file = join(dir, 'agent.db');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function names(db: Database.Database): string[] {
  return (db.prepare('SELECT name FROM t ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
}

describe('database backups around an activation', () => {
  it('has nothing to copy on a first deploy', async () => {
    expect(await backupDatabase(file, join(dir, 'backups'), null)).toBeNull();
  });

  it('copies a database in use (WAL, uncheckpointed rows included), private to the account, and restores it', async () => {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('user_version = 3');
    db.exec("CREATE TABLE t (name TEXT); INSERT INTO t VALUES ('kept')");
    const copy = await backupDatabase(file, join(dir, 'backups'), '1.2.3', new Date('2026-12-01T10:00:00Z'));
    expect(copy).toBe(join(dir, 'backups', 'agent-1.2.3-2026-12-01T10-00-00-000Z.db'));
    expect(statSync(copy!).mode & 0o777).toBe(0o600);
    db.exec("INSERT INTO t VALUES ('after the backup')");
    db.close();

    restoreDatabase(copy!, file);
    const restored = new Database(file, { readonly: true });
    expect(names(restored)).toEqual(['kept']);
    restored.close();
    expect(databaseSchema(file)).toBe(3);
    expect(databaseSchema(join(dir, 'missing.db'))).toBe(0);
  });

  it(`keeps the newest ${BACKUPS_KEPT} copies`, async () => {
    new Database(file).exec('CREATE TABLE t (name TEXT)');
    for (let i = 0; i < BACKUPS_KEPT + 2; i++) {
      const copy = await backupDatabase(file, join(dir, 'backups'), `1.0.${i}`, new Date(Date.UTC(2026, 11, 1, i)));
      utimesSync(copy!, new Date(Date.UTC(2026, 11, 1, i)), new Date(Date.UTC(2026, 11, 1, i)));
    }
    const left = readdirSync(join(dir, 'backups')).sort();
    expect(left).toHaveLength(BACKUPS_KEPT);
    expect(left.some((name) => name.startsWith('agent-1.0.0-') || name.startsWith('agent-1.0.1-'))).toBe(false);
  });
});

describe('the slot accounts uninstall --delete-data removes on an isolated host', () => {
  it('lists every end user and every owner-less slot the database knows', () => {
    // Only the columns it reads: users' ids and slots' ids and owners.
    const db = new Database(file);
    db.exec(`CREATE TABLE users (id TEXT PRIMARY KEY);
      CREATE TABLE slots (id TEXT PRIMARY KEY, owner_id TEXT);
      INSERT INTO users VALUES ('u_abcdefghij'), ('u_0123456789');
      INSERT INTO slots VALUES ('slot000001', 'u_abcdefghij'), ('slot000002', NULL), ('bad-id', NULL);`);
    db.close();
    expect(slotAccountsIn(file, slotAccount)).toEqual(['sds-slot000002', 'sdu-0123456789', 'sdu-abcdefghij']);
    expect(slotAccountsIn(join(dir, 'none.db'), slotAccount)).toEqual([]);
  });
});
