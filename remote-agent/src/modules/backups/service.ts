import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import {
  AgentErrorCode,
  BACKUP_UPLOAD_MAX_BYTES,
  type BackupInfo,
  type BackupKeyStatus,
  type BackupList,
  type BackupSettings,
  type BackupSigningKey,
  type RestoreAccepted,
  type RestoreBody,
} from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import { AppError, isAppError } from '../../errors.js';
import type { OpsEvents } from '../../ops/events.js';
import {
  backupFile,
  deleteBackup,
  listBackups,
  newBackupId,
  readSidecar,
  verifyBackupFile,
  writeBackup,
  writeSidecar,
  type BackupOrigin,
  type SlotFiles,
} from './bundle.js';
import { keyIdOf, loadOrCreateSigningKey, signingPublicKey } from './crypto.js';
import { backupsToKeep } from './retention.js';
import { stageRestore } from './restore.js';
import { BackupStore } from './store.js';

export interface BackupServiceDeps {
  db: Db;
  dataDir: string;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  ops?: OpsEvents;
  /** Slots whose homes the agent can read (none on isolated hosts, where `isolated` is set). */
  slotFiles: () => SlotFiles[];
  isolated: boolean;
  /** Ends this process so that what runs it starts it again (and the staged restore is applied). */
  requestRestart: () => void;
  /** How often the schedule is checked, and the first check after start. */
  tickMs?: number;
  firstTickMs?: number;
  /** Free bytes of the data dir's filesystem (tests); statfs by default. */
  freeBytes?: () => number | null;
}

const NO_KEY =
  'No backup key: open this host in the panel (Backups view) so it registers its key; scheduled backups wait for it.';

/** Free space an upload must leave behind. */
export const UPLOAD_FREE_MARGIN_BYTES = 256 * 1024 * 1024;

const HOMES_ISOLATED =
  'Slot homes cannot be backed up on this host: slots run as accounts of their own (setup-host) and the agent cannot read their homes. Back them up with the host\'s own tools (e.g. a volume snapshot), or turn "include homes" off.';

/** Scheduled and on-demand backups, retention, uploads and staged restores (see docs/operations.md). */
export class BackupService {
  readonly store: BackupStore;
  readonly backupsDir: string;
  private running: Promise<BackupInfo> | null = null;
  private restoring = false;
  private uploading = false;
  private signer: KeyObject | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastAttemptAt = 0;

  constructor(private readonly deps: BackupServiceDeps) {
    this.store = new BackupStore(deps.db);
    this.backupsDir = join(deps.dataDir, 'backups');
  }

  list(): BackupList {
    const outcome = this.store.outcome();
    const settings = this.store.settings();
    return {
      backups: listBackups(this.backupsDir),
      settings,
      key: this.store.key(),
      status: {
        running: this.running !== null,
        ...outcome,
        nextAt: settings.enabled ? new Date(this.nextDueAt()).toISOString() : null,
      },
      homesSupported: !this.deps.isolated,
    };
  }

  settings(): BackupSettings {
    return this.store.settings();
  }

  setSettings(next: BackupSettings): BackupSettings {
    if (next.includeHomes && this.deps.isolated)
      throw new AppError(AgentErrorCode.BACKUP_HOMES_UNSUPPORTED, 409, HOMES_ISOLATED);
    return this.store.setSettings(next);
  }

  /** This agent's backup-signing key (made on first use, in the secrets dir, never in a backup). */
  signingKey(): KeyObject {
    this.signer ??= loadOrCreateSigningKey(this.deps.dataDir);
    return this.signer;
  }

  signingPublicKey(): BackupSigningKey {
    const publicKey = signingPublicKey(this.signingKey());
    return { publicKey, keyId: keyIdOf(publicKey) };
  }

  registerKey(publicKey: string): BackupKeyStatus {
    const status = this.store.setKey(publicKey);
    this.deps.logger.info({ keyId: status.keyId }, 'backup key registered');
    return status;
  }

  status(): { lastSuccessAt: string | null; lastError: string | null } {
    const { lastSuccessAt, lastError } = this.store.outcome();
    return { lastSuccessAt, lastError };
  }

  get(id: string): BackupInfo {
    const info = readSidecar(this.backupsDir, id);
    if (!info)
      throw new AppError(
        AgentErrorCode.BACKUP_NOT_FOUND,
        404,
        `No backup ${id} on this host. List them with GET /api/v1/backups.`,
      );
    return info;
  }

  fileOf(id: string): { file: string; info: BackupInfo } {
    return { file: backupFile(this.backupsDir, id), info: this.get(id) };
  }

  delete(id: string): void {
    this.get(id);
    deleteBackup(this.backupsDir, id);
  }

  /** Backs up now; one run at a time. */
  run(origin: BackupOrigin): Promise<BackupInfo> {
    if (this.restoring)
      throw new AppError(
        AgentErrorCode.RESTORE_IN_PROGRESS,
        409,
        'A restore is under way: the agent restarts in a moment.',
      );
    if (this.running)
      throw new AppError(
        AgentErrorCode.BACKUP_IN_PROGRESS,
        409,
        'A backup is being written now; wait for it and list the backups.',
      );
    this.running = this.write(origin).finally(() => (this.running = null));
    return this.running;
  }

  private async write(origin: BackupOrigin): Promise<BackupInfo> {
    const started = Date.now();
    this.lastAttemptAt = started;
    const settings = this.store.settings();
    const homes = settings.includeHomes && !this.deps.isolated ? this.deps.slotFiles() : null;
    try {
      const info = await writeBackup({
        dbFile: join(this.deps.dataDir, 'agent.db'),
        dataDir: this.deps.dataDir,
        backupsDir: this.backupsDir,
        origin,
        publicKey: this.store.publicKey(),
        homes,
        homesReason: settings.includeHomes ? HOMES_ISOLATED : 'Slot homes are not included (a backup setting).',
        signingKey: this.signingKey(),
      });
      this.store.recordSuccess(info.createdAt);
      this.prune();
      this.deps.logger.info(
        { id: info.id, size: info.size, origin, secrets: info.manifest.secrets.included },
        'backup written and verified',
      );
      this.deps.ops?.emit('backup', {
        ok: true,
        at: Date.now(),
        file: `${info.id}.tar`,
        error: null,
        durationMs: Date.now() - started,
      });
      return info;
    } catch (error) {
      const message = (error as Error).message;
      this.store.recordFailure(new Date().toISOString(), message);
      this.deps.logger.error({ err: error }, 'backup failed');
      this.deps.ops?.emit('backup', {
        ok: false,
        at: Date.now(),
        file: null,
        error: message,
        durationMs: Date.now() - started,
      });
      if (isAppError(error)) throw error;
      throw new AppError(
        AgentErrorCode.BACKUP_FAILED,
        500,
        `The backup failed: ${message}. Check the disk space of the data dir and the agent's log.`,
      );
    }
  }

  /** Keeps what the retention says among this host's own backups (uploads are the admin's to delete). */
  private prune(): void {
    const { keepDaily, keepWeekly } = this.store.settings();
    const own = listBackups(this.backupsDir).filter((b) => b.origin !== 'upload');
    const keep = backupsToKeep(own, keepDaily, keepWeekly);
    for (const backup of own) if (!keep.has(backup.id)) deleteBackup(this.backupsDir, backup.id);
  }

  private nextDueAt(): number {
    const last = Math.max(this.lastAttemptAt, Date.parse(this.store.outcome().lastSuccessAt ?? '') || 0);
    return Math.max(Date.now(), last + this.store.settings().intervalHours * 3_600_000);
  }

  /** The schedule: checked every minute (first a few minutes after start, so a restart loop does not back up). */
  start(): void {
    const tick = (): void => {
      const settings = this.store.settings();
      if (!settings.enabled || this.running || this.restoring) return;
      if (Date.now() < this.nextDueAt()) return;
      if (!this.store.publicKey()) {
        // Nothing is written without the panel's key (it would hold the database in clear): say so, once.
        if (this.store.outcome().lastError !== NO_KEY) this.store.recordFailure(new Date().toISOString(), NO_KEY);
        return;
      }
      this.run('scheduled').catch(() => undefined);
    };
    this.timer = setTimeout(
      () => {
        tick();
        this.timer = setInterval(tick, this.deps.tickMs ?? 60_000);
        this.timer.unref();
      },
      this.deps.firstTickMs ?? 5 * 60_000,
    );
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** Takes an uploaded backup file (streamed to disk, capped), checks it as a written one is, and lists it. */
  async receiveUpload(body: Readable, declaredLength: number | null): Promise<BackupInfo> {
    if (declaredLength !== null && declaredLength > BACKUP_UPLOAD_MAX_BYTES)
      throw new AppError(
        AgentErrorCode.BACKUP_FILE_INVALID,
        413,
        `The file is larger than ${BACKUP_UPLOAD_MAX_BYTES / 1024 ** 3} GiB, the most an upload may be.`,
      );
    if (this.uploading)
      throw new AppError(
        AgentErrorCode.BACKUP_IN_PROGRESS,
        409,
        'Another backup file is being uploaded now; wait for it to finish, then send this one.',
      );
    mkdirSync(this.backupsDir, { recursive: true, mode: 0o700 });
    // The file plus a margin must fit, or the upload would fill the data dir and stop the gateway for everyone.
    const free = this.freeBytes();
    const needed = (declaredLength ?? 0) + UPLOAD_FREE_MARGIN_BYTES;
    if (free !== null && free < needed)
      throw new AppError(
        AgentErrorCode.STORAGE_FULL,
        507,
        `The data dir has ${Math.floor(free / 1024 ** 2)} MiB free; this upload needs ${Math.ceil(needed / 1024 ** 2)} MiB (the file and a margin). Free some space (delete old backups) and send it again.`,
      );
    this.uploading = true;
    try {
      return await this.receiveUploadUnlocked(body, free);
    } finally {
      this.uploading = false;
    }
  }

  private freeBytes(): number | null {
    if (this.deps.freeBytes) return this.deps.freeBytes();
    try {
      const fs = statfsSync(this.backupsDir);
      return fs.bavail * fs.bsize;
    } catch {
      return null;
    }
  }

  private async receiveUploadUnlocked(body: Readable, free: number | null): Promise<BackupInfo> {
    const id = newBackupId('upload');
    const partial = `${backupFile(this.backupsDir, id)}.partial`;
    let received = 0;
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > BACKUP_UPLOAD_MAX_BYTES) body.destroy(new Error('too large'));
      // Without a declared length, stop before the margin is eaten.
      else if (free !== null && received > free - UPLOAD_FREE_MARGIN_BYTES)
        body.destroy(new Error('no space left for it'));
    });
    try {
      await pipeline(body, createWriteStream(partial, { mode: 0o600, flags: 'wx' }));
      if (received === 0)
        throw new AppError(
          AgentErrorCode.BACKUP_FILE_INVALID,
          400,
          'The upload was empty: send the backup file as the body (application/octet-stream).',
        );
      const { manifest, signer } = await verifyBackupFile(partial);
      renameSync(partial, backupFile(this.backupsDir, id));
      const info: BackupInfo = {
        id,
        origin: 'upload',
        createdAt: manifest.createdAt,
        size: statSync(backupFile(this.backupsDir, id)).size,
        // Signature and checksums; the database is opened (it needs the panel's key) when a restore is staged.
        verified: true,
        manifest,
        signer,
      };
      writeSidecar(this.backupsDir, info);
      this.deps.logger.info({ id, size: info.size, from: manifest.hostname }, 'backup uploaded and verified');
      return info;
    } catch (error) {
      rmSync(partial, { force: true });
      if (isAppError(error)) throw error;
      throw new AppError(
        AgentErrorCode.BACKUP_FILE_INVALID,
        400,
        `The upload did not arrive whole (${(error as Error).message}); send it again.`,
      );
    }
  }

  /**
   * Checks the backup and stages it for the next start (database, decrypted secrets, homes), then asks for a
   * restart: the agent stops its services and whatever runs it (PM2, the panel) starts it again onto the backup.
   */
  async restore(id: string, body: RestoreBody & { skipSecrets: boolean }): Promise<RestoreAccepted> {
    const { file } = this.fileOf(id);
    if (this.restoring)
      throw new AppError(
        AgentErrorCode.RESTORE_IN_PROGRESS,
        409,
        'A restore is under way: the agent restarts in a moment.',
      );
    if (this.running)
      throw new AppError(
        AgentErrorCode.BACKUP_IN_PROGRESS,
        409,
        'A backup is being written now; restore once it is done.',
      );
    this.restoring = true;
    const dataKey = body.dataKey ? Buffer.from(body.dataKey, 'base64') : null;
    try {
      const staged = await stageRestore({
        file,
        backupId: id,
        dataDir: this.deps.dataDir,
        dataKey,
        skipSecrets: body.skipSecrets,
        trustedSigners: body.trustedSigners ?? null,
        allowUnknownSigner: body.allowUnknownSigner ?? false,
      });
      this.deps.logger.info({ id, secrets: staged.secretsRestored.length }, 'restore staged; restarting onto it');
      setTimeout(() => this.deps.requestRestart(), 250).unref();
      return {
        restarting: true,
        ...staged,
        message:
          'The backup is checked and staged. The agent is restarting onto it: its database, secrets and homes are replaced, the schema migrated, and the slots reconciled.',
      };
    } catch (error) {
      this.restoring = false;
      if (isAppError(error)) throw error;
      throw new AppError(
        AgentErrorCode.RESTORE_FAILED,
        500,
        `The restore could not be staged: ${(error as Error).message}. Nothing was changed.`,
      );
    } finally {
      dataKey?.fill(0);
    }
  }

  /** Whether a restore is staged and waits for the restart. */
  get restorePending(): boolean {
    return this.restoring || existsSync(join(this.deps.dataDir, 'restore-pending'));
  }
}
