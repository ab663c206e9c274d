import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { AgentConfig } from '../../config.js';
import { openDatabase } from '../../db/database.js';
import { isAppError } from '../../errors.js';
import { databasePath, readAgentState } from '../../server.js';
import { acquireInstanceLock, InstanceLockedError } from '../../util/instance-lock.js';
import { detectIsolation } from '../slots/accounts.js';
import { backupFile, inspectBackup, writeBackup, type SlotFiles } from './bundle.js';
import { loadOrCreateSigningKey, unwrapDataKey } from './crypto.js';
import { applyPendingRestore, pendingRestoreDir, stageRestore } from './restore.js';
import { BackupStore } from './store.js';

/** A failure the CLI prints as a sentence (exit 2). */
export class BackupCliError extends Error {}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

async function isolated(): Promise<boolean> {
  try {
    return (await detectIsolation(pino({ level: 'silent' }))) !== null;
  } catch {
    return true;
  }
}

/**
 * Files the CLI writes (the database, secrets, backups) must belong to the agent's account: run as root, it would
 * leave files the agent cannot open, and the agent would not start.
 */
export function requireDataDirOwner(dataDir: string, uid: number | null = process.getuid?.() ?? null): void {
  if (uid === null || !existsSync(dataDir)) return;
  const owner = statSync(dataDir).uid;
  if (owner !== uid)
    throw new BackupCliError(
      `${dataDir} belongs to uid ${owner}, and this runs as uid ${uid}: files written now would be unreadable by the agent. Run it as the agent's account, e.g. \`sudo -u slotdeck slotdeck-agent …\`.`,
    );
}

/** `slotdeck-agent backup [--out FILE]`: an online backup (the agent may be running), like the scheduled one. */
/** A public key file: the raw 32 bytes in base64 (what the panel shows), or a PEM SPKI key. */
function readPublicKeyFile(file: string, kind: 'x25519' | 'ed25519'): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    throw new BackupCliError(`Cannot read ${file}.`);
  }
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return text;
  try {
    const key = createPublicKey(text);
    if (key.asymmetricKeyType !== kind) throw new Error(kind);
    return (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12).toString('base64');
  } catch {
    throw new BackupCliError(`${file} holds no ${kind} public key (raw base64 or PEM).`);
  }
}

export async function backupCommand(
  config: AgentConfig,
  out: string | undefined,
  publicKeyFile?: string,
): Promise<number> {
  requireDataDirOwner(config.dataDir);
  const dbFile = databasePath(config.dataDir);
  if (!existsSync(dbFile))
    throw new BackupCliError(`No database in ${config.dataDir}: nothing to back up. Check --data-dir.`);
  const db = openDatabase(dbFile, { migrate: false });
  try {
    let store: BackupStore | null = new BackupStore(db);
    try {
      store.settings();
    } catch {
      store = null; // an older schema, before backup settings: no key, no homes
    }
    const settings = store?.settings();
    const homes: SlotFiles[] | null =
      settings?.includeHomes && !(await isolated())
        ? (
            db.prepare('SELECT id, home_dir, work_dir, work_dir_managed FROM slots').all() as Array<{
              id: string;
              home_dir: string;
              work_dir: string;
              work_dir_managed: number;
            }>
          ).map((row) => ({
            slotId: row.id,
            home: row.home_dir,
            work: row.work_dir_managed === 1 ? row.work_dir : null,
          }))
        : null;
    const publicKey = publicKeyFile ? readPublicKeyFile(publicKeyFile, 'x25519') : (store?.publicKey() ?? null);
    if (!publicKey)
      throw new BackupCliError(
        "BACKUP_KEY_MISSING: no backup key is registered, and a backup is sealed to one. Open this host in the panel (Backups view) so it registers its key, or give the panel's public key with --public-key FILE.",
      );
    let info;
    try {
      info = await writeBackup({
        dbFile,
        dataDir: config.dataDir,
        backupsDir: join(config.dataDir, 'backups'),
        origin: 'cli',
        publicKey,
        signingKey: loadOrCreateSigningKey(config.dataDir),
        homes,
        homesReason: settings?.includeHomes
          ? 'slot homes cannot be read on an isolated host'
          : 'not included (a backup setting)',
      });
    } catch (error) {
      if (isAppError(error)) throw new BackupCliError(error.message);
      throw error;
    }
    store?.recordSuccess(info.createdAt);
    const file = backupFile(join(config.dataDir, 'backups'), info.id);
    if (out) copyFileSync(file, resolve(out));
    const rows = Object.values(info.manifest.counts).reduce((a, b) => a + b, 0);
    say(
      `backup ${info.id}: ${info.size} bytes, verified (integrity_check ok, ${rows} rows in ${Object.keys(info.manifest.counts).length} tables)`,
    );
    say(`  file: ${out ? resolve(out) : file}`);
    say(
      `  sealed to the panel's key ${info.manifest.secrets.envelope!.keyId} (database, ${info.manifest.secrets.files.length} secret files${info.manifest.homes.slots.length ? ', homes' : ''})`,
    );
    say(`  signed by this host's key ${info.signer.publicKey} (keep it to check restores: --signer-key)`);
    say(`  homes: ${info.manifest.homes.included ? info.manifest.homes.slots.length + ' slots' : 'not included'}`);
    return 0;
  } finally {
    db.close();
  }
}

/**
 * `slotdeck-agent restore <file> [--key-file F] [--skip-secrets]`: stages the backup, stops a running agent, and
 * applies it (or leaves it to the agent when its supervisor starts it again first).
 */
export async function restoreCommand(
  config: AgentConfig,
  file: string,
  options: { keyFile?: string | undefined; signerKey?: string | undefined; skipSecrets: boolean },
): Promise<number> {
  if (!existsSync(file)) throw new BackupCliError(`No file ${file}.`);
  requireDataDirOwner(config.dataDir);
  try {
    const { manifest, signer } = await inspectBackup(resolve(file));
    const trusted = options.signerKey ? [readPublicKeyFile(options.signerKey, 'ed25519')] : null;
    if (!options.keyFile)
      throw new BackupCliError(
        `BACKUP_KEY_MISSING: the backup is sealed to the panel's key ${manifest.secrets.envelope!.keyId}. Give the private key with --key-file (the panel's Backups view: "Export key…"), or restore from the panel.`,
      );
    let dataKey: Buffer;
    try {
      dataKey = unwrapDataKey(createPrivateKey(readFileSync(options.keyFile)), manifest.secrets.envelope!);
    } catch {
      throw new BackupCliError(
        `${options.keyFile} does not open this backup (sealed to key ${manifest.secrets.envelope!.keyId}).`,
      );
    }
    const staged = await stageRestore({
      file: resolve(file),
      backupId: manifest.createdAt,
      dataDir: config.dataDir,
      dataKey,
      skipSecrets: options.skipSecrets,
      trustedSigners: trusted,
      allowUnknownSigner: false,
    });
    say(
      trusted
        ? `signature checked: signed by the key in ${options.signerKey}`
        : `signature NOT checked against a host you trust (signed by key ${signer.publicKey}): give --signer-key FILE to check it`,
    );
    dataKey?.fill(0);
    say(
      `checked and staged the backup of ${manifest.hostname} from ${manifest.createdAt} (schema ${staged.schemaFrom} → ${staged.schemaTo})`,
    );
  } catch (error) {
    if (isAppError(error)) throw new BackupCliError(error.message);
    throw error;
  }
  const running = readAgentState(config.dataDir);
  if (running) {
    say(`stopping the agent (pid ${running.pid}) to restore`);
    process.kill(running.pid, 'SIGTERM');
    for (let waited = 0; waited < 30_000; waited += 100) {
      try {
        process.kill(running.pid, 0);
      } catch {
        break;
      }
      await sleep(100);
    }
  }
  let lock: { release(): void };
  try {
    lock = await acquireInstanceLock(join(config.runDir, 'agent.lock'));
  } catch (error) {
    if (!(error instanceof InstanceLockedError)) throw error;
    say('the agent was started again (by PM2) and restores the backup as it starts');
    return 0;
  }
  try {
    const applied = await applyPendingRestore(config.dataDir, () => undefined, { isolated: await isolated() });
    if (!applied && existsSync(pendingRestoreDir(config.dataDir)))
      throw new BackupCliError('The staged restore could not be applied.');
    say(
      `restored: database${applied?.secrets.length ? `, secrets (${applied.secrets.join(', ')})` : ''}${applied?.homes.length ? `, homes (${applied.homes.join(', ')})` : ''}`,
    );
    if (applied?.homesSkipped.length) say(`  NOT unpacked: ${applied.homesSkipped.join(', ')}`);
    if (applied?.previousDatabase) say(`  the database it replaced: ${applied.previousDatabase}`);
    say(
      `start the agent (slotdeck-agent serve${running ? ', or let PM2 start it' : ''}): it migrates the schema and reconciles the slots`,
    );
    return 0;
  } finally {
    lock.release();
  }
}
