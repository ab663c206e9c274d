import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
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
import { unwrapDataKey } from './crypto.js';
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

/** `slotdeck-agent backup [--out FILE]`: an online backup (the agent may be running), like the scheduled one. */
export async function backupCommand(config: AgentConfig, out: string | undefined): Promise<number> {
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
    let info;
    try {
      info = await writeBackup({
        dbFile,
        dataDir: config.dataDir,
        backupsDir: join(config.dataDir, 'backups'),
        origin: 'cli',
        publicKey: store?.publicKey() ?? null,
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
      info.manifest.secrets.included
        ? `  secrets: ${info.manifest.secrets.files.length} files, sealed to the panel's key ${info.manifest.secrets.envelope!.keyId}`
        : `  secrets: left out (${info.manifest.secrets.reason})`,
    );
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
  options: { keyFile?: string | undefined; skipSecrets: boolean },
): Promise<number> {
  if (!existsSync(file)) throw new BackupCliError(`No file ${file}.`);
  try {
    const { manifest } = await inspectBackup(resolve(file));
    let dataKey: Buffer | null = null;
    if (manifest.secrets.included && !options.skipSecrets) {
      if (!options.keyFile)
        throw new BackupCliError(
          `The backup's secrets are sealed to the panel's key ${manifest.secrets.envelope!.keyId}. Give the key with --key-file (exported from the panel's Backups view), restore from the panel, or use --skip-secrets.`,
        );
      try {
        dataKey = unwrapDataKey(createPrivateKey(readFileSync(options.keyFile)), manifest.secrets.envelope!);
      } catch {
        throw new BackupCliError(
          `${options.keyFile} does not open this backup's secrets (sealed to key ${manifest.secrets.envelope!.keyId}).`,
        );
      }
    }
    const staged = await stageRestore({
      file: resolve(file),
      backupId: manifest.createdAt,
      dataDir: config.dataDir,
      dataKey,
      skipSecrets: options.skipSecrets,
    });
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
    const applied = await applyPendingRestore(config.dataDir);
    if (!applied && existsSync(pendingRestoreDir(config.dataDir)))
      throw new BackupCliError('The staged restore could not be applied.');
    say(
      `restored: database${applied?.secrets.length ? `, secrets (${applied.secrets.join(', ')})` : ''}${applied?.homes.length ? `, homes (${applied.homes.join(', ')})` : ''}`,
    );
    if (applied?.previousDatabase) say(`  the database it replaced: ${applied.previousDatabase}`);
    say(
      `start the agent (slotdeck-agent serve${running ? ', or let PM2 start it' : ''}): it migrates the schema and reconciles the slots`,
    );
    return 0;
  } finally {
    lock.release();
  }
}
