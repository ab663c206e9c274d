import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  AgentErrorCode,
  BACKUP_UPLOAD_PATH,
  BackupInfo,
  backupsApi,
  buildPath,
  BACKUP_FILE_PATH,
  type BackupList,
  type BackupSettings,
  type RestoreAccepted,
} from '../../../../remote-agent/src/contract/index';
import type { BackupDownloadResult, BackupKeyInfo } from '../../../shared/ipc/contract-backups';
import { IpcError } from '../../ipc/errors';
import type { AgentClient } from '../agent/agent-client';
import { verifyManifest } from '../../../../remote-agent/src/modules/backups/crypto';
import type { BackupKeys } from './keys';

/** Browser mode sends a download over its socket up to this size (base64); larger ones need the app. */
export const BROWSER_BACKUP_MAX_BYTES = 32 * 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 60 * 60_000;
const PROGRESS_EVERY_BYTES = 256 * 1024;

export interface BackupProgress {
  hostId: string;
  direction: 'download' | 'upload';
  id: string | null;
  bytes: number;
  total: number | null;
  done: boolean;
}

export interface BackupServiceDeps {
  client: (hostId: string) => AgentClient;
  keys: BackupKeys;
  progress: (event: BackupProgress) => void;
  /** The Electron app's save dialog; browser mode has none (the file goes back to the page). */
  pickSaveFile?: ((suggestedName: string) => Promise<string | null>) | undefined;
  /** The Electron app's open dialog (a backup file to upload); browser mode has none. */
  pickOpenFile?: (() => Promise<string | null>) | undefined;
  /** Each host's backup-signing keys (public), pinned in the panel's SQLite (preferences). */
  signers: SignerPins;
}

/** Where pinned backup-signing keys live: the panel's preferences table, one entry per host. */
export interface SignerPins {
  hostIds(): string[];
  get(hostId: string): string[];
  set(hostId: string, keys: string[]): void;
}

/** Counts bytes as they pass and reports them now and then. */
function counter(report: (bytes: number) => void): Transform {
  let bytes = 0;
  let reported = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes - reported >= PROGRESS_EVERY_BYTES) {
        reported = bytes;
        report(bytes);
      }
      done(null, chunk);
    },
  });
}

/** Backups of hosts, over each host's AgentClient (through its tunnel): list, run, settings, key, download, restore. */
export class BackupService {
  constructor(private readonly deps: BackupServiceDeps) {}

  /** The host's backups; a host without any key is given this panel's, so its next backup seals its secrets. */
  async list(hostId: string, signal?: AbortSignal): Promise<BackupList> {
    const client = this.deps.client(hostId);
    const list = await client.call(backupsApi.listBackups, {}, signal);
    await this.pinSigner(hostId, signal);
    if (list.key.registered) return list;
    const { publicKey } = await this.deps.keys.publicKey();
    return { ...list, key: await client.call(backupsApi.registerBackupKey, { body: { publicKey } }, signal) };
  }

  /**
   * Pins the host's backup-signing key (asked over its tunnel, which is authenticated). A host that was set up again
   * has a new key: it is added, the old one kept, so the old host's backups still restore.
   */
  async pinSigner(hostId: string, signal?: AbortSignal): Promise<void> {
    const { publicKey } = await this.deps.client(hostId).call(backupsApi.getBackupSigningKey, {}, signal);
    const pinned = this.deps.signers.get(hostId);
    if (!pinned.includes(publicKey)) this.deps.signers.set(hostId, [...pinned, publicKey]);
  }

  /** Every signing key of every host this panel knows. */
  trustedSigners(): string[] {
    return [...new Set(this.deps.signers.hostIds().flatMap((id) => this.deps.signers.get(id)))];
  }

  /** Writes the panel's private backup key to a file the admin picks (for `slotdeck-agent restore --key-file`). */
  async exportKey(): Promise<{ savedTo: string | null; keyId: string }> {
    if (!this.deps.pickSaveFile)
      throw new IpcError(
        AgentErrorCode.BACKUP_KEY_MISSING,
        'The backup key is exported only from the Slotdeck app (it never goes to a browser page). Open the app on this computer and export it there.',
      );
    const { keyId } = await this.deps.keys.publicKey();
    const savedTo = await this.deps.pickSaveFile(`slotdeck-backup-key-${keyId}.pem`);
    if (!savedTo) return { savedTo: null, keyId };
    await this.deps.keys.exportTo(savedTo);
    return { savedTo, keyId };
  }

  /** The file the admin picks in the app's open dialog, uploaded; null when they cancelled. */
  async uploadPicked(hostId: string, signal: AbortSignal): Promise<BackupInfo | null> {
    if (!this.deps.pickOpenFile)
      throw new IpcError(
        AgentErrorCode.BACKUP_FILE_INVALID,
        "Browser mode cannot read files of this computer: type the backup file's path on the computer running Slotdeck, or use the app.",
      );
    const file = await this.deps.pickOpenFile();
    return file ? this.upload(hostId, file, signal) : null;
  }

  run(hostId: string, signal?: AbortSignal): Promise<BackupInfo> {
    return this.deps.client(hostId).call(backupsApi.runBackup, {}, signal);
  }

  setSettings(hostId: string, settings: BackupSettings, signal?: AbortSignal): Promise<BackupSettings> {
    return this.deps.client(hostId).call(backupsApi.setBackupSettings, { body: settings }, signal);
  }

  async keyInfo(hostId: string, signal?: AbortSignal): Promise<BackupKeyInfo> {
    const [panelKeyId, list] = await Promise.all([
      this.deps.keys.keyId(),
      this.deps.client(hostId).call(backupsApi.listBackups, {}, signal),
    ]);
    return { panelKeyId, hostKeyId: list.key.keyId, matches: panelKeyId !== null && panelKeyId === list.key.keyId };
  }

  /** Makes this panel's key the one the host seals to (replacing another panel's). */
  async registerKey(hostId: string, signal?: AbortSignal): Promise<BackupKeyInfo> {
    const { publicKey, keyId } = await this.deps.keys.publicKey();
    const status = await this.deps.client(hostId).call(backupsApi.registerBackupKey, { body: { publicKey } }, signal);
    return { panelKeyId: keyId, hostKeyId: status.keyId, matches: status.keyId === keyId };
  }

  delete(hostId: string, id: string, signal?: AbortSignal): Promise<{ deleted: true }> {
    return this.deps.client(hostId).call(backupsApi.deleteBackup, { params: { id } }, signal);
  }

  /** Streams a backup into the file the admin picked (the app), or returns it for the page (browser mode, capped). */
  async download(hostId: string, id: string, signal: AbortSignal): Promise<BackupDownloadResult> {
    const fileName = `slotdeck-${id}.tar`;
    const savedTo = this.deps.pickSaveFile ? await this.deps.pickSaveFile(fileName) : null;
    if (this.deps.pickSaveFile && !savedTo) return { fileName, bytes: 0, savedTo: null, contentBase64: null };
    const response = await this.deps
      .client(hostId)
      .download(buildPath(BACKUP_FILE_PATH, { id }), {}, TRANSFER_TIMEOUT_MS, signal);
    const total = Number(response.headers.get('content-length')) || null;
    if (!savedTo && total !== null && total > BROWSER_BACKUP_MAX_BYTES)
      throw new IpcError(
        AgentErrorCode.BACKUP_FAILED,
        `This backup is ${Math.round(total / 1024 / 1024)} MB, more than browser mode sends at once (${BROWSER_BACKUP_MAX_BYTES / 1024 / 1024} MB). Download it from the Slotdeck app, or with slotdeck-agent backup --out on the host.`,
      );
    const report = (bytes: number, done = false): void =>
      this.deps.progress({ hostId, direction: 'download', id, bytes, total, done });
    const body = response.body
      ? Readable.fromWeb(response.body as WebReadableStream<Uint8Array>, { signal })
      : Readable.from([]);
    if (savedTo) {
      await pipeline(body, counter(report), createWriteStream(savedTo, { mode: 0o600 }));
      const bytes = (await stat(savedTo)).size;
      report(bytes, true);
      return { fileName, bytes, savedTo, contentBase64: null };
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of body.pipe(counter(report)) as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > BROWSER_BACKUP_MAX_BYTES) {
        body.destroy();
        throw new IpcError(
          AgentErrorCode.BACKUP_FAILED,
          'This backup is too large for browser mode: download it from the Slotdeck app.',
        );
      }
      chunks.push(chunk);
    }
    report(bytes, true);
    return { fileName, bytes, savedTo: null, contentBase64: Buffer.concat(chunks).toString('base64') };
  }

  /** Sends a backup file from this computer to the host, where it is checked and listed (origin "upload"). */
  async upload(hostId: string, file: string, signal: AbortSignal): Promise<BackupInfo> {
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      size = info.size;
    } catch {
      throw new IpcError(
        AgentErrorCode.BACKUP_FILE_INVALID,
        `Cannot read ${file}. Check the path of the backup file on this computer.`,
      );
    }
    const report = (bytes: number, done = false): void =>
      this.deps.progress({ hostId, direction: 'upload', id: null, bytes, total: size, done });
    const body = createReadStream(file).pipe(counter(report));
    const response = await this.deps
      .client(hostId)
      .upload(
        BACKUP_UPLOAD_PATH,
        Readable.toWeb(body) as ReadableStream<Uint8Array>,
        size,
        TRANSFER_TIMEOUT_MS,
        signal,
      );
    report(size, true);
    return BackupInfo.parse(await response.json());
  }

  /**
   * Restores a backup that is on the host (made there or uploaded): the panel opens the backup's data key with its
   * private key and sends only that key; the agent stages everything and restarts onto it.
   */
  async restore(
    hostId: string,
    id: string,
    skipSecrets: boolean,
    allowUnknownSigner = false,
    signal?: AbortSignal,
  ): Promise<RestoreAccepted> {
    const client = this.deps.client(hostId);
    await this.pinSigner(hostId, signal);
    const { backups } = await client.call(backupsApi.listBackups, {}, signal);
    const backup = backups.find((b) => b.id === id);
    if (!backup)
      throw new IpcError(AgentErrorCode.BACKUP_NOT_FOUND, `No backup ${id} on this host any more. Refresh the list.`);
    // Checked here first (clear errors before anything is sent), and again by the agent on the file itself.
    if (!verifyManifest(backup.signer.publicKey, backup.manifest, backup.signer.signature))
      throw new IpcError(
        AgentErrorCode.BACKUP_SIGNATURE_INVALID,
        "This backup's manifest does not match its signature: the file was changed after it was made. Do not restore it; use another copy.",
      );
    const trustedSigners = this.trustedSigners();
    if (!trustedSigners.includes(backup.signer.publicKey) && !allowUnknownSigner)
      throw new IpcError(
        AgentErrorCode.BACKUP_SIGNER_UNKNOWN,
        `This backup (of "${backup.manifest.hostname}") was not made by a host this panel knows. Restore it only if you know where it comes from: confirm "restore a backup from an unknown host".`,
      );
    const envelope = backup.manifest.secrets.envelope;
    if (!envelope)
      throw new IpcError(AgentErrorCode.BACKUP_FILE_INVALID, 'This backup names no sealed key: make a new backup.');
    const dataKey = await this.deps.keys.unwrap(envelope);
    return client.call(
      backupsApi.restoreBackup,
      { params: { id }, body: { skipSecrets, dataKey, trustedSigners, allowUnknownSigner } },
      signal,
    );
  }
}
