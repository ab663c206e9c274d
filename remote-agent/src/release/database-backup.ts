import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** How many database copies stay in ROOT/backups. */
export const BACKUPS_KEPT = 5;

/**
 * Copies the agent's database with SQLite's online backup (consistent even while the agent writes to it) into
 * `backupsDir/agent-<fromVersion>-<stamp>.db`, private to the account, and keeps the newest BACKUPS_KEPT. Null when
 * there is no database yet (a first deploy).
 */
export async function backupDatabase(
  databaseFile: string,
  backupsDir: string,
  fromVersion: string | null,
  now = new Date(),
): Promise<string | null> {
  if (!existsSync(databaseFile)) return null;
  mkdirSync(backupsDir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const target = join(backupsDir, `agent-${fromVersion ?? 'none'}-${stamp}.db`);
  const db = new Database(databaseFile, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(`${target}.partial`);
  } finally {
    db.close();
  }
  chmodSync(`${target}.partial`, 0o600);
  renameSync(`${target}.partial`, target);
  pruneBackups(backupsDir);
  return target;
}

/** A consistent copy of the database at `target` (SQLite's online backup), private to the account. */
export async function copyDatabaseFile(databaseFile: string, target: string): Promise<void> {
  const db = new Database(databaseFile, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(target);
  } finally {
    db.close();
  }
  chmodSync(target, 0o600);
}

export function pruneBackups(backupsDir: string, keep = BACKUPS_KEPT): string[] {
  const copies = readdirSync(backupsDir)
    .filter((name) => /^agent-.*\.db$/.test(name))
    .map((name) => ({ name, at: statSync(join(backupsDir, name)).mtimeMs }))
    .sort((a, b) => b.at - a.at || b.name.localeCompare(a.name));
  const removed = copies.slice(keep).map((copy) => copy.name);
  for (const name of removed) rmSync(join(backupsDir, name), { force: true });
  return removed;
}

/** Puts a backup back in place of the database (the agent must be stopped): its WAL files go, they belong to the other. */
export function restoreDatabase(backupFile: string, databaseFile: string): void {
  copyFileSync(backupFile, `${databaseFile}.restore`);
  chmodSync(`${databaseFile}.restore`, 0o600);
  for (const suffix of ['-wal', '-shm']) rmSync(`${databaseFile}${suffix}`, { force: true });
  renameSync(`${databaseFile}.restore`, databaseFile);
}

/** The schema version (user_version) of a database file, without migrating it; 0 when there is none. */
export function databaseSchema(databaseFile: string): number {
  if (!existsSync(databaseFile)) return 0;
  const db = new Database(databaseFile, { fileMustExist: true, readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/**
 * Every slot account the database knows (isolated hosts): each end user's (sdu-<user>) and each owner-less slot's
 * (sds-<slot>); uninstall --delete-data removes them through the helper. Empty without a database.
 */
export function slotAccountsIn(
  databaseFile: string,
  accountOf: (slotId: string, ownerId: string | null) => string,
): string[] {
  if (!existsSync(databaseFile)) return [];
  const db = new Database(databaseFile, { fileMustExist: true, readonly: true });
  try {
    const accounts = new Set<string>();
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(
        (t) => t.name,
      ),
    );
    if (tables.has('users'))
      for (const { id } of db.prepare('SELECT id FROM users').all() as Array<{ id: string }>)
        accounts.add(accountOf('', id));
    if (tables.has('slots')) {
      const columns = (db.prepare('PRAGMA table_info(slots)').all() as Array<{ name: string }>).map((c) => c.name);
      const owner = columns.includes('owner_id') ? 'owner_id' : 'NULL';
      for (const row of db.prepare(`SELECT id, ${owner} AS ownerId FROM slots`).all() as Array<{
        id: string;
        ownerId: string | null;
      }>)
        accounts.add(accountOf(row.id, row.ownerId));
    }
    // Only names the helper accepts (it refuses anything else).
    return [...accounts].filter((name) => /^sd[us]-[a-z0-9]{10}$/.test(name)).sort();
  } finally {
    db.close();
  }
}
