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
import type { KeyObject } from 'node:crypto';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { AgentErrorCode, BackupInfo, BackupManifest, type BackupPart } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { AGENT_VERSION } from '../../version.js';
import {
  canonicalJson,
  manifestBinding,
  newDataKeyFor,
  openSealedPart,
  sealFile,
  signingPublicKey,
  signManifest,
  verifyManifest,
} from './crypto.js';
import { hashFile, hashMember, readMember, readTarIndex, TarFormatError, writeTar, type TarMember } from './tar.js';

export type BackupOrigin = BackupInfo['origin'];

/** Secret files a backup never carries: the host's own admin token stays with the host (the panel stays connected). */
export const HOST_BOUND_SECRETS = new Set(['admin-token', 'backup-signing-key']);

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
  /** This agent's Ed25519 key (secrets/backup-signing-key): signs the manifest. */
  signingKey: KeyObject;
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

/**
 * Tars a slot's home or work dir. The folder itself must be a real folder owned by `owner` (a slot could swap its
 * home for a link to the agent's secrets, and `tar -C` would follow it); tar then stays on that filesystem.
 */
export async function tarFolder(folder: string, target: string, owner: number | null = currentUid()): Promise<void> {
  const info = lstatSync(folder);
  if (!info.isDirectory()) throw new Error(`${folder} is not a folder (a link?): left out of the backup`);
  if (owner !== null && info.uid !== owner)
    throw new Error(`${folder} is owned by uid ${info.uid}, not ${owner}: left out of the backup`);
  await runTar([
    '-cf',
    target,
    '--one-file-system',
    ...HOME_EXCLUDES.map((pattern) => `--exclude=${pattern}`),
    '-C',
    folder,
    '.',
  ]);
  chmodSync(target, 0o600);
}

const currentUid = (): number | null => (typeof process.getuid === 'function' ? process.getuid() : null);

function listTar(archive: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['-tvf', archive, '--absolute-names', '--quoting-style=escape'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(Buffer.concat(out).toString('utf8').split('\n').filter(Boolean))
        : reject(new Error('tar -t failed')),
    );
  });
}

/** Why a member name (or a hard link's target) may not be extracted, or null. */
function unsafeTarPath(path: string): string | null {
  if (path.startsWith('/')) return `absolute name ${path}`;
  if (path.split('/').includes('..')) return `name with .. (${path})`;
  return null;
}

/**
 * Refuses a slot archive with absolute names, `..`, hard links out of it or device files. (Symbolic links are kept:
 * homes have them; GNU tar creates them last, so no member is written through one.)
 */
export async function checkSlotArchive(archive: string): Promise<void> {
  for (const line of await listTar(archive)) {
    const type = line[0];
    if (type !== '-' && type !== 'd' && type !== 'l' && type !== 'h')
      throw new Error(`the archive holds a special file (${line.slice(0, 80)})`);
    const rest = line.replace(/^\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+/, '');
    const [name, target] = type === 'h' ? rest.split(' link to ') : type === 'l' ? rest.split(' -> ') : [rest];
    const why = unsafeTarPath(name ?? '') ?? (type === 'h' ? unsafeTarPath(target ?? '') : null);
    if (why) throw new Error(`the archive holds an unsafe member: ${why}`);
  }
}

/**
 * Replaces `folder` with the archive's content: checked first, unpacked into a fresh empty folder next to it
 * (no owners, no absolute names), then swapped in, so a failed unpack leaves the old folder.
 */
export async function untarInto(archive: string, folder: string): Promise<void> {
  await checkSlotArchive(archive);
  const fresh = `${folder}.restoring-${randomBytes(4).toString('hex')}`;
  mkdirSync(fresh, { mode: 0o700 });
  try {
    await runTar(['-xf', archive, '-C', fresh, '--no-same-owner', '--no-overwrite-dir', '--no-unquote']);
    rmSync(folder, { recursive: true, force: true });
    renameSync(fresh, folder);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
}

/** Writes a backup: snapshot, verify, tar the homes, seal every part, sign the manifest, bundle, check the bundle. */
export async function writeBackup(options: WriteBackupOptions): Promise<BackupInfo> {
  if (!options.publicKey)
    throw new AppError(
      AgentErrorCode.BACKUP_KEY_MISSING,
      409,
      'No backup key: open this host in the panel (Backups view) so it registers its key; backups are sealed to it and none is written without one.',
    );
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
    const payload = Buffer.from(
      JSON.stringify({
        files: Object.fromEntries(
          files.map((name) => [name, readFileSync(join(options.dataDir, 'secrets', name)).toString('base64')]),
        ),
      }),
    );
    writeFileSync(join(work, 'secrets.json'), payload, { mode: 0o600 });
    payload.fill(0);
    entries.push({ name: 'secrets.enc', file: join(work, 'secrets.json') });
    const { envelope, dataKey } = newDataKeyFor(options.publicKey);

    const homeSlots: string[] = [];
    const homesSkipped: string[] = [];
    for (const slot of options.homes ?? []) {
      if (!existsSync(slot.home)) continue;
      try {
        await tarFolder(slot.home, join(work, `${slot.slotId}.home.tar`));
        entries.push({ name: `homes/${slot.slotId}.home.tar`, file: join(work, `${slot.slotId}.home.tar`) });
        if (slot.work && existsSync(slot.work)) {
          await tarFolder(slot.work, join(work, `${slot.slotId}.work.tar`));
          entries.push({ name: `homes/${slot.slotId}.work.tar`, file: join(work, `${slot.slotId}.work.tar`) });
        }
        homeSlots.push(slot.slotId);
      } catch (error) {
        homesSkipped.push(`${slot.slotId}: ${(error as Error).message}`);
        for (let i = entries.length - 1; i >= 0; i--)
          if (entries[i]!.name.startsWith(`homes/${slot.slotId}.`)) entries.splice(i, 1);
      }
    }

    const header: Omit<BackupManifest, 'parts'> = {
      format: 'slotdeck-backup',
      formatVersion: 2,
      agentVersion: AGENT_VERSION,
      schemaVersion: snapshot.schemaVersion,
      createdAt: now.toISOString(),
      sourceDataDir: options.dataDir,
      hostname: hostname(),
      counts: snapshot.counts,
      secrets: { included: true, reason: null, files, envelope },
      homes: {
        included: options.homes !== null,
        reason:
          options.homes === null
            ? options.homesReason
            : homesSkipped.length
              ? `left out: ${homesSkipped.join('; ')}`
              : null,
        slots: homeSlots,
      },
    };
    const binding = manifestBinding(header);
    const parts: Array<z.infer<typeof BackupPart>> = [];
    const sealedEntries: Array<{ name: string; file: string }> = [];
    try {
      for (const entry of entries) {
        const sealed = `${entry.file}.sealed`;
        await sealFile(dataKey, binding, entry.name, entry.file, sealed);
        rmSync(entry.file, { force: true });
        sealedEntries.push({ name: entry.name, file: sealed });
        parts.push({ name: entry.name, size: statSync(sealed).size, sha256: await hashFile(sealed) });
      }
      const manifest: BackupManifest = { ...header, parts };
      const signer = {
        publicKey: signingPublicKey(options.signingKey),
        signature: signManifest(options.signingKey, manifest),
      };
      writeFileSync(join(work, 'manifest.json'), `${canonicalJson(manifest)}\n`, { mode: 0o600 });
      writeFileSync(join(work, 'manifest.sig'), `${JSON.stringify({ alg: 'ed25519', ...signer })}\n`, { mode: 0o600 });
      const partial = `${backupFile(options.backupsDir, id)}.partial`;
      await writeTar(partial, [
        { name: 'manifest.json', file: join(work, 'manifest.json') },
        { name: 'manifest.sig', file: join(work, 'manifest.sig') },
        ...sealedEntries,
      ]);
      // Read back what was written: signature, every part's bytes, and the database opened with the key and checked.
      const { members } = await inspectBackup(partial);
      const reopened = join(work, 'verify.db');
      await openSealedPart(
        dataKey,
        binding,
        'agent.db',
        partial,
        members.get('agent.db')!.offset,
        members.get('agent.db')!.size,
        reopened,
      );
      const again = checkDatabase(reopened);
      const differsAgain = sameCounts(snapshot.counts, again.counts);
      if (again.integrity !== 'ok' || differsAgain)
        throw new AppError(
          AgentErrorCode.BACKUP_VERIFY_FAILED,
          500,
          `The sealed copy does not read back whole (${again.integrity}${differsAgain ? `, ${differsAgain}` : ''}). Nothing was kept; check the disk and try again.`,
        );
      renameSync(partial, backupFile(options.backupsDir, id));
      const info: BackupInfo = {
        id,
        origin: options.origin,
        createdAt: manifest.createdAt,
        size: statSync(backupFile(options.backupsDir, id)).size,
        verified: true,
        manifest,
        signer,
      };
      writeFileSync(sidecarFile(options.backupsDir, id), JSON.stringify(info), { mode: 0o600 });
      return info;
    } finally {
      dataKey.fill(0);
    }
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

const Signature = z.object({ alg: z.literal('ed25519'), publicKey: z.string(), signature: z.string() });

/**
 * The manifest and members of a backup file: the manifest's signature checked against the key it names (whether
 * that key is a host's the admin trusts is the restore's question), every part against its SHA-256 and size.
 */
export async function inspectBackup(file: string): Promise<{
  manifest: BackupManifest;
  members: Map<string, TarMember>;
  signer: { publicKey: string; signature: string };
}> {
  let index: TarMember[];
  try {
    index = await readTarIndex(file);
  } catch (error) {
    if (error instanceof TarFormatError) throw invalid(error.message);
    throw error;
  }
  const members = new Map(index.map((member) => [member.name, member]));
  const manifestMember = members.get('manifest.json');
  const signatureMember = members.get('manifest.sig');
  if (!manifestMember) throw invalid('it has no manifest.json');
  let raw: { formatVersion?: unknown };
  try {
    raw = JSON.parse((await readMember(file, manifestMember, 4 * 1024 * 1024)).toString('utf8')) as typeof raw;
  } catch {
    throw invalid('its manifest.json cannot be read');
  }
  if (raw.formatVersion === 1)
    throw invalid(
      'it is an early format whose database is not sealed and whose manifest is not signed (make a new backup)',
    );
  const parsed = BackupManifest.safeParse(raw);
  if (!parsed.success) throw invalid('its manifest.json cannot be read');
  const manifest = parsed.data;
  if (!signatureMember) throw invalid('it is not signed (no manifest.sig)');
  let signer: z.infer<typeof Signature>;
  try {
    signer = Signature.parse(JSON.parse((await readMember(file, signatureMember, 64 * 1024)).toString('utf8')));
  } catch {
    throw invalid('its manifest.sig cannot be read');
  }
  if (!verifyManifest(signer.publicKey, manifest, signer.signature))
    throw new AppError(
      AgentErrorCode.BACKUP_SIGNATURE_INVALID,
      400,
      "The backup's manifest does not match its signature: the file was changed after it was made. Do not restore it; use another copy.",
    );
  if (!manifest.secrets.envelope) throw invalid('it names no sealed data key');
  if (!manifest.parts.some((part) => part.name === 'agent.db')) throw invalid('it has no database');
  for (const part of manifest.parts) {
    const member = members.get(part.name);
    if (!member || member.size !== part.size) throw invalid(`the part ${part.name} is missing or cut short`);
    if ((await hashMember(file, member)) !== part.sha256)
      throw invalid(`the part ${part.name} does not match its checksum`);
  }
  return { manifest, members, signer: { publicKey: signer.publicKey, signature: signer.signature } };
}

/**
 * Checks an uploaded backup without its key (the agent never holds the panel's private key): the signature and every
 * part's checksum. The database is opened and checked (integrity_check, row counts) when the restore is staged.
 */
export async function verifyBackupFile(
  file: string,
): Promise<{ manifest: BackupManifest; signer: { publicKey: string; signature: string } }> {
  const { manifest, signer } = await inspectBackup(file);
  return { manifest, signer };
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
