import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { z } from 'zod';
import { AgentErrorCode, BackupInfo, BackupManifest, type BackupPart } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { AGENT_VERSION } from '../../version.js';
import { sealToRecipient } from './crypto.js';
import {
  extractMember,
  hashFile,
  hashMember,
  readMember,
  readTarIndex,
  TarFormatError,
  writeTar,
  type TarMember,
} from './tar.js';

export type BackupOrigin = BackupInfo['origin'];

/** Secret files a backup never carries: the host's own admin token stays with the host (the panel stays connected). */
export const HOST_BOUND_SECRETS = new Set(['admin-token']);

/** Folders left out of slot homes and work dirs: caches a program rebuilds. */
export const HOME_EXCLUDES = ['.cache', '_cacache', '.npm/_logs'];

export interface SlotFiles {
  slotId: string;
  home: string;
  /** The agent-made work dir, or null when the admin named one (never touched by the agent). */
  work: string | null;
}

export interface WriteBackupOptions {
  dbFile: string;
  dataDir: string;
  backupsDir: string;
  origin: BackupOrigin;
  /** The panel's X25519 public key (raw, base64); null: secrets are left out, and the manifest says so. */
  publicKey: string | null;
  /** Slot homes to include; null when they are not (with the reason). */
  homes: SlotFiles[] | null;
  homesReason: string | null;
  now?: Date;
}

const stampOf = (now: Date): string =>
  now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
export const newBackupId = (prefix: 'backup' | 'upload', now = new Date()): string =>
  `${prefix}-${stampOf(now)}-${randomBytes(2).toString('hex')}`;

export const backupFile = (backupsDir: string, id: string): string => join(backupsDir, `${id}.tar`);
const sidecarFile = (backupsDir: string, id: string): string => join(backupsDir, `${id}.json`);

function userTables(db: Database.Database): string[] {
  return (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as Array<{
      name: string;
    }>
  ).map((row) => row.name);
}

export function countRows(db: Database.Database): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const table of userTables(db))
    counts[table] = db
      .prepare(`SELECT COUNT(*) FROM "${table.replace(/"/g, '""')}"`)
      .pluck()
      .get() as number;
  return counts;
}

/**
 * The database at one moment, with its row counts at that same moment. A read transaction on the backup's own
 * connection pins a WAL snapshot: the counts are read in it and SQLite's backup API copies through it, so writes by
 * the agent during the copy (other connections) neither restart the copy nor reach it, and the copy holds exactly
 * the rows counted. The price: the WAL cannot be checkpointed past the snapshot until the copy ends.
 */
export async function snapshotDatabase(
  dbFile: string,
  target: string,
): Promise<{ counts: Record<string, number>; schemaVersion: number }> {
  const source = new Database(dbFile, { fileMustExist: true });
  try {
    source.pragma('busy_timeout = 5000');
    source.exec('BEGIN');
    const counts = countRows(source);
    const schemaVersion = source.pragma('user_version', { simple: true }) as number;
    await source.backup(target);
    source.exec('COMMIT');
    // A standalone file: no WAL to go with it (and it can be opened read-only anywhere).
    const copy = new Database(target);
    copy.pragma('journal_mode = DELETE');
    copy.close();
    chmodSync(target, 0o600);
    return { counts, schemaVersion };
  } finally {
    if (source.inTransaction) source.exec('ROLLBACK');
    source.close();
  }
}

/** integrity_check of a database file (opened read-only) and its rows per table. */
export function checkDatabase(file: string): {
  integrity: string;
  counts: Record<string, number>;
  schemaVersion: number;
} {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>)
      .map((row) => row.integrity_check)
      .join('; ');
    return { integrity, counts: countRows(db), schemaVersion: db.pragma('user_version', { simple: true }) as number };
  } finally {
    db.close();
  }
}

function sameCounts(a: Record<string, number>, b: Record<string, number>): string | null {
  for (const table of new Set([...Object.keys(a), ...Object.keys(b)]))
    if (a[table] !== b[table])
      return `${table}: ${a[table] ?? 'missing'} rows in the source, ${b[table] ?? 'missing'} in the copy`;
  return null;
}

/** The secret files of the data dir a backup carries (regular files, not the host's admin token). */
export function secretFiles(dataDir: string): string[] {
  const dir = join(dataDir, 'secrets');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !HOST_BOUND_SECRETS.has(name) && !name.endsWith('.tmp') && lstatSync(join(dir, name)).isFile())
    .sort();
}

function runTar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.once('error', reject);
    // GNU tar exits 1 when a file changed while it was read: a live home, still a usable copy.
    child.once('exit', (code) =>
      code === 0 || code === 1 ? resolve() : reject(new Error(`tar failed: ${stderr.trim()}`)),
    );
  });
}

export async function tarFolder(folder: string, target: string): Promise<void> {
  await runTar(['-cf', target, ...HOME_EXCLUDES.map((pattern) => `--exclude=${pattern}`), '-C', folder, '.']);
  chmodSync(target, 0o600);
}

export async function untarInto(archive: string, folder: string): Promise<void> {
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  await runTar(['-xf', archive, '-C', folder, '--no-same-owner', '--no-overwrite-dir']);
}

/** Writes a backup: snapshot, verify, seal the secrets, tar the homes, bundle, check the bundle, keep its manifest. */
export async function writeBackup(options: WriteBackupOptions): Promise<BackupInfo> {
  const now = options.now ?? new Date();
  const id = newBackupId('backup', now);
  mkdirSync(options.backupsDir, { recursive: true, mode: 0o700 });
  const work = join(options.backupsDir, `.work-${id}`);
  mkdirSync(work, { mode: 0o700 });
  try {
    const dbCopy = join(work, 'agent.db');
    const snapshot = await snapshotDatabase(options.dbFile, dbCopy);
    const check = checkDatabase(dbCopy);
    if (check.integrity !== 'ok')
      throw new AppError(
        AgentErrorCode.BACKUP_VERIFY_FAILED,
        500,
        `The copy failed integrity_check (${check.integrity}). Nothing was kept; check the disk and try again.`,
      );
    const differs = sameCounts(snapshot.counts, check.counts);
    if (differs)
      throw new AppError(
        AgentErrorCode.BACKUP_VERIFY_FAILED,
        500,
        `The copy's rows differ from the source's at the snapshot (${differs}). Nothing was kept; try again.`,
      );
    const entries: Array<{ name: string; file: string }> = [{ name: 'agent.db', file: dbCopy }];

    const files = secretFiles(options.dataDir);
    let secrets: BackupManifest['secrets'];
    if (options.publicKey) {
      const payload = Buffer.from(
        JSON.stringify({
          files: Object.fromEntries(
            files.map((name) => [name, readFileSync(join(options.dataDir, 'secrets', name)).toString('base64')]),
          ),
        }),
      );
      const { envelope, sealed } = sealToRecipient(options.publicKey, payload);
      payload.fill(0);
      writeFileSync(join(work, 'secrets.enc'), sealed, { mode: 0o600 });
      entries.push({ name: 'secrets.enc', file: join(work, 'secrets.enc') });
      secrets = { included: true, reason: null, files, envelope };
    } else {
      secrets = {
        included: false,
        reason:
          'No backup key is registered: connect the panel to this host (Backups view) so secrets are sealed to its key.',
        files: [],
        envelope: null,
      };
    }

    const homeSlots: string[] = [];
    for (const slot of options.homes ?? []) {
      if (!existsSync(slot.home)) continue;
      await tarFolder(slot.home, join(work, `${slot.slotId}.home.tar`));
      entries.push({ name: `homes/${slot.slotId}.home.tar`, file: join(work, `${slot.slotId}.home.tar`) });
      if (slot.work && existsSync(slot.work)) {
        await tarFolder(slot.work, join(work, `${slot.slotId}.work.tar`));
        entries.push({ name: `homes/${slot.slotId}.work.tar`, file: join(work, `${slot.slotId}.work.tar`) });
      }
      homeSlots.push(slot.slotId);
    }

    const parts: Array<z.infer<typeof BackupPart>> = [];
    for (const entry of entries)
      parts.push({ name: entry.name, size: statSync(entry.file).size, sha256: await hashFile(entry.file) });
    const manifest: BackupManifest = {
      format: 'slotdeck-backup',
      formatVersion: 1,
      agentVersion: AGENT_VERSION,
      schemaVersion: snapshot.schemaVersion,
      createdAt: now.toISOString(),
      sourceDataDir: options.dataDir,
      hostname: hostname(),
      counts: snapshot.counts,
      parts,
      secrets,
      homes: {
        included: options.homes !== null,
        reason: options.homes === null ? options.homesReason : null,
        slots: homeSlots,
      },
    };
    writeFileSync(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    const partial = `${backupFile(options.backupsDir, id)}.partial`;
    await writeTar(partial, [{ name: 'manifest.json', file: join(work, 'manifest.json') }, ...entries]);
    // Read back what was written: every part where the manifest says, with the bytes it says.
    await inspectBackup(partial);
    renameSync(partial, backupFile(options.backupsDir, id));
    const info: BackupInfo = {
      id,
      origin: options.origin,
      createdAt: manifest.createdAt,
      size: statSync(backupFile(options.backupsDir, id)).size,
      verified: true,
      manifest,
    };
    writeFileSync(sidecarFile(options.backupsDir, id), JSON.stringify(info), { mode: 0o600 });
    return info;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(`${backupFile(options.backupsDir, id)}.partial`, { force: true });
  }
}

const invalid = (why: string): AppError =>
  new AppError(
    AgentErrorCode.BACKUP_FILE_INVALID,
    400,
    `This is not a usable Slotdeck backup: ${why}. Pick a file made by a Slotdeck backup.`,
  );

/** The manifest and members of a backup file, every part checked against its SHA-256 and size. */
export async function inspectBackup(
  file: string,
): Promise<{ manifest: BackupManifest; members: Map<string, TarMember> }> {
  let index: TarMember[];
  try {
    index = await readTarIndex(file);
  } catch (error) {
    if (error instanceof TarFormatError) throw invalid(error.message);
    throw error;
  }
  const members = new Map(index.map((member) => [member.name, member]));
  const manifestMember = members.get('manifest.json');
  if (!manifestMember) throw invalid('it has no manifest.json');
  let manifest: BackupManifest;
  try {
    manifest = BackupManifest.parse(
      JSON.parse((await readMember(file, manifestMember, 4 * 1024 * 1024)).toString('utf8')),
    );
  } catch {
    throw invalid('its manifest.json cannot be read');
  }
  if (!manifest.parts.some((part) => part.name === 'agent.db')) throw invalid('it has no database');
  for (const part of manifest.parts) {
    const member = members.get(part.name);
    if (!member || member.size !== part.size) throw invalid(`the part ${part.name} is missing or cut short`);
    if ((await hashMember(file, member)) !== part.sha256)
      throw invalid(`the part ${part.name} does not match its checksum`);
  }
  return { manifest, members };
}

/** Checks an uploaded backup as a written one is checked: parts, integrity_check, row counts. */
export async function verifyBackupFile(file: string, scratch: string): Promise<BackupManifest> {
  const { manifest, members } = await inspectBackup(file);
  const copy = join(scratch, `verify-${randomBytes(4).toString('hex')}.db`);
  try {
    await extractMember(file, members.get('agent.db')!, copy);
    const check = checkDatabase(copy);
    if (check.integrity !== 'ok') throw invalid(`its database fails integrity_check (${check.integrity})`);
    const differs = sameCounts(manifest.counts, check.counts);
    if (differs) throw invalid(`its database's rows differ from its manifest (${differs})`);
    return manifest;
  } finally {
    rmSync(copy, { force: true });
  }
}

export function readSidecar(backupsDir: string, id: string): BackupInfo | null {
  try {
    const info = BackupInfo.parse(JSON.parse(readFileSync(sidecarFile(backupsDir, id), 'utf8')));
    return existsSync(backupFile(backupsDir, id)) ? info : null;
  } catch {
    return null;
  }
}

export function writeSidecar(backupsDir: string, info: BackupInfo): void {
  writeFileSync(sidecarFile(backupsDir, info.id), JSON.stringify(info), { mode: 0o600 });
}

/** Every backup in the folder, newest first. */
export function listBackups(backupsDir: string): BackupInfo[] {
  if (!existsSync(backupsDir)) return [];
  return readdirSync(backupsDir)
    .filter((name) => /^(backup|upload)-.*\.tar$/.test(name))
    .map((name) => readSidecar(backupsDir, name.slice(0, -4)))
    .filter((info): info is BackupInfo => info !== null)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

export function deleteBackup(backupsDir: string, id: string): void {
  rmSync(backupFile(backupsDir, id), { force: true });
  rmSync(sidecarFile(backupsDir, id), { force: true });
}
