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
    if (list.key.registered) return list;
    const { publicKey } = await this.deps.keys.publicKey();
    return { ...list, key: await client.call(backupsApi.registerBackupKey, { body: { publicKey } }, signal) };
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
  async restore(hostId: string, id: string, skipSecrets: boolean, signal?: AbortSignal): Promise<RestoreAccepted> {
    const client = this.deps.client(hostId);
    const { backups } = await client.call(backupsApi.listBackups, {}, signal);
    const backup = backups.find((b) => b.id === id);
    if (!backup)
      throw new IpcError(AgentErrorCode.BACKUP_NOT_FOUND, `No backup ${id} on this host any more. Refresh the list.`);
    const envelope = backup.manifest.secrets.envelope;
    const dataKey = envelope && !skipSecrets ? await this.deps.keys.unwrap(envelope) : undefined;
    return client.call(
      backupsApi.restoreBackup,
      { params: { id }, body: { skipSecrets, ...(dataKey ? { dataKey } : {}) } },
      signal,
    );
  }
}
