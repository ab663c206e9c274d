import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AgentErrorCode, BackupManifest, type RestoreAccepted } from '../../contract/index.js';
import { LATEST_SCHEMA_VERSION } from '../../db/migrations.js';
import { AppError } from '../../errors.js';
import { HOST_BOUND_SECRETS, checkDatabase, inspectBackup, untarInto } from './bundle.js';
import { keyIdOf, manifestBinding, openSealedPart } from './crypto.js';

/**
 * A restore is staged, then applied when the agent starts (before the database is opened), never under a running
 * agent: staging checks everything that can fail (parts, schema, the data key) while the agent still serves, and
 * the agent then stops and is started again by what runs it (its PM2 on hosts, the panel for "This computer"), so no
 * service ever sees the database change under it.
 */
export const pendingRestoreDir = (dataDir: string): string => join(dataDir, 'restore-pending');

const StagedRestore = z.object({ backupId: z.string(), manifest: BackupManifest, secrets: z.array(z.string()) });

const SecretsPayload = z.object({ files: z.record(z.string().regex(/^[A-Za-z0-9._-]+$/), z.string()) });

export async function stageRestore(options: {
  file: string;
  backupId: string;
  dataDir: string;
  dataKey: Buffer | null;
  skipSecrets: boolean;
  /** Signing keys of the hosts the admin trusts; null: not checked here (the CLI without --signer-key says so). */
  trustedSigners: string[] | null;
  allowUnknownSigner: boolean;
}): Promise<Omit<RestoreAccepted, 'message' | 'restarting'> & { signer: string }> {
  // inspectBackup refuses a bad signature (BACKUP_SIGNATURE_INVALID) whatever the admin confirmed.
  const { manifest, members, signer } = await inspectBackup(options.file);
  if (options.trustedSigners && !options.trustedSigners.includes(signer.publicKey) && !options.allowUnknownSigner)
    throw new AppError(
      AgentErrorCode.BACKUP_SIGNER_UNKNOWN,
      409,
      `This backup was signed by a host this panel does not know (signing key ${keyIdOf(signer.publicKey)}). Restore it only if you know where it comes from: confirm "restore a backup from an unknown host" to go on.`,
    );
  if (manifest.schemaVersion > LATEST_SCHEMA_VERSION)
    throw new AppError(
      AgentErrorCode.RESTORE_SCHEMA_NEWER,
      409,
      `The backup has schema version ${manifest.schemaVersion} (agent ${manifest.agentVersion}); this agent knows up to ${LATEST_SCHEMA_VERSION}. Update this host's agent first, then restore.`,
    );
  if (!options.dataKey)
    throw new AppError(
      AgentErrorCode.BACKUP_KEY_MISSING,
      400,
      `The backup is sealed to the panel's key ${manifest.secrets.envelope?.keyId ?? '?'}: restore it from the panel that holds that key (or with --key-file on the command line).`,
    );
  const dataKey = options.dataKey;
  const binding = manifestBinding(manifest);
  const open = async (name: string, target: string): Promise<void> => {
    const member = members.get(name)!;
    await openSealedPart(dataKey, binding, name, options.file, member.offset, member.size, target);
  };
  const pending = pendingRestoreDir(options.dataDir);
  const staging = `${pending}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'secrets'), { recursive: true, mode: 0o700 });
  mkdirSync(join(staging, 'homes'), { mode: 0o700 });
  try {
    try {
      await open('agent.db', join(staging, 'agent.db'));
    } catch {
      throw new AppError(
        AgentErrorCode.BACKUP_KEY_MISMATCH,
        400,
        `The key does not open this backup (sealed to key ${manifest.secrets.envelope?.keyId ?? '?'}). Use the panel (or key file) the backup was made for.`,
      );
    }
    const check = checkDatabase(join(staging, 'agent.db'));
    const differs = Object.entries(manifest.counts).find(([table, rows]) => check.counts[table] !== rows);
    if (check.integrity !== 'ok' || differs)
      throw new AppError(
        AgentErrorCode.RESTORE_FAILED,
        400,
        `The backup's database fails its checks (${check.integrity}${differs ? `; ${differs[0]} has ${check.counts[differs[0]] ?? 0} rows, the manifest says ${differs[1]}` : ''}); pick another backup.`,
      );
    const restored: string[] = [];
    if (!options.skipSecrets && members.has('secrets.enc')) {
      const plain = join(staging, 'secrets.json');
      await open('secrets.enc', plain);
      const secrets = SecretsPayload.parse(JSON.parse(readFileSync(plain, 'utf8'))).files;
      rmSync(plain, { force: true });
      for (const [name, content] of Object.entries(secrets)) {
        if (HOST_BOUND_SECRETS.has(name)) continue;
        writeFileSync(join(staging, 'secrets', name), Buffer.from(content, 'base64'), { mode: 0o600 });
        restored.push(name);
      }
    }
    for (const member of members.values())
      if (/^homes\/[a-z0-9]{10}\.(home|work)\.tar$/.test(member.name))
        await open(member.name, join(staging, member.name));
    writeFileSync(
      join(staging, 'restore.json'),
      JSON.stringify({ backupId: options.backupId, manifest, secrets: restored }),
      { mode: 0o600 },
    );
    rmSync(pending, { recursive: true, force: true });
    renameSync(staging, pending);
    return {
      secretsRestored: restored.sort(),
      secretsKept: [...HOST_BOUND_SECRETS],
      schemaFrom: manifest.schemaVersion,
      schemaTo: LATEST_SCHEMA_VERSION,
      signer: signer.publicKey,
    };
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

export interface AppliedRestore {
  backupId: string;
  previousDatabase: string | null;
  secrets: string[];
  homes: string[];
  /** Slot folders the backup held that were not unpacked, with why. */
  homesSkipped: string[];
}

/**
 * Applies a staged restore (the agent is not running: called by `serve` before it opens the database, and by the
 * CLI's restore with the instance lock held). The database it replaces is kept as backups/pre-restore-<time>.db.
 * Slot paths under the backup's data dir move to this one's; the schema is migrated up when the database is opened.
 */
export async function applyPendingRestore(
  dataDir: string,
  log: (message: string) => void = () => undefined,
  options: { isolated?: boolean } = {},
): Promise<AppliedRestore | null> {
  const pending = pendingRestoreDir(dataDir);
  if (!existsSync(join(pending, 'restore.json'))) return null;
  const staged = StagedRestore.parse(JSON.parse(readFileSync(join(pending, 'restore.json'), 'utf8')));
  const dbFile = join(dataDir, 'agent.db');
  let previousDatabase: string | null = null;
  if (existsSync(dbFile)) {
    // Fold the WAL in first, so the copy set aside is whole.
    const current = new Database(dbFile, { fileMustExist: true });
    try {
      current.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      current.close();
    }
    mkdirSync(join(dataDir, 'backups'), { recursive: true, mode: 0o700 });
    previousDatabase = join(dataDir, 'backups', `pre-restore-${new Date().toISOString().replace(/[-:.]/g, '')}.db`);
    renameSync(dbFile, previousDatabase);
  }
  for (const suffix of ['-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
  copyFileSync(join(pending, 'agent.db'), `${dbFile}.restoring`);
  chmodSync(`${dbFile}.restoring`, 0o600);
  renameSync(`${dbFile}.restoring`, dbFile);

  // Slots whose homes and work dirs the agent made lived under the backup's data dir: they live under this one now.
  const homes: string[] = [];
  const skipped: string[] = [];
  const db = new Database(dbFile, { fileMustExist: true });
  try {
    const from = staged.manifest.sourceDataDir;
    const slots = db.prepare('SELECT id, home_dir, work_dir, work_dir_managed FROM slots').all() as Array<{
      id: string;
      home_dir: string;
      work_dir: string;
      work_dir_managed: number;
    }>;
    const update = db.prepare('UPDATE slots SET home_dir = ?, work_dir = ? WHERE id = ?');
    for (const slot of slots) {
      const home =
        slot.home_dir === join(from, 'slots', slot.id, 'home')
          ? join(dataDir, 'slots', slot.id, 'home')
          : slot.home_dir;
      const work =
        slot.work_dir_managed === 1 && slot.work_dir === join(from, 'slots', slot.id, 'work')
          ? join(dataDir, 'slots', slot.id, 'work')
          : slot.work_dir;
      if (home !== slot.home_dir || work !== slot.work_dir) update.run(home, work, slot.id);
      for (const [kind, folder] of [
        ['home', home],
        ['work', work],
      ] as const) {
        const archive = join(pending, 'homes', `${slot.id}.${kind}.tar`);
        if (!existsSync(archive)) continue;
        // Only the agent's own slot folders are ever replaced: a path named by the backup's database is not trusted.
        const own = join(dataDir, 'slots', slot.id, kind);
        if (options.isolated || folder !== own) {
          const why = options.isolated
            ? 'slots run as accounts of their own on this host'
            : `${folder} is not this agent's slot folder ${own}`;
          skipped.push(`${slot.id}/${kind} (${why})`);
          continue;
        }
        mkdirSync(join(dataDir, 'slots', slot.id), { recursive: true, mode: 0o700 });
        try {
          await untarInto(archive, folder);
          homes.push(`${slot.id}/${kind}`);
        } catch (error) {
          skipped.push(`${slot.id}/${kind} (${(error as Error).message})`);
        }
      }
      // The screen of the replaced slot (if any) is not the restored one's.
      rmSync(join(dataDir, 'slots', slot.id, 'screen'), { recursive: true, force: true });
    }
  } finally {
    db.close();
  }

  const secretsDir = join(dataDir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(join(pending, 'secrets'))) {
    if (HOST_BOUND_SECRETS.has(name)) continue;
    copyFileSync(join(pending, 'secrets', name), join(secretsDir, `${name}.tmp`));
    chmodSync(join(secretsDir, `${name}.tmp`), 0o600);
    renameSync(join(secretsDir, `${name}.tmp`), join(secretsDir, name));
  }
  rmSync(pending, { recursive: true, force: true });
  log(
    `restored backup ${staged.backupId}: database${staged.secrets.length ? `, secrets (${staged.secrets.join(', ')})` : ''}${homes.length ? `, homes (${homes.join(', ')})` : ''}${skipped.length ? `; NOT unpacked: ${skipped.join(', ')}` : ''}`,
  );
  return { backupId: staged.backupId, previousDatabase, secrets: staged.secrets, homes, homesSkipped: skipped };
}

/**
 * The agent's start: applies a staged restore, or, if that fails, sets it aside (restore-failed-<time>) and says so,
 * so a broken restore never keeps the agent from starting again and again.
 */
export async function applyStagedRestore(
  dataDir: string,
  logger: Pick<Logger, 'info' | 'error'>,
  options: { isolated?: boolean } = {},
): Promise<void> {
  try {
    await applyPendingRestore(dataDir, (message) => logger.info(message), options);
  } catch (error) {
    const aside = join(dataDir, `restore-failed-${new Date().toISOString().replace(/[-:.]/g, '')}`);
    renameSync(pendingRestoreDir(dataDir), aside);
    logger.error({ err: error, aside }, 'the staged restore failed; it was set aside and the agent starts without it');
  }
}
