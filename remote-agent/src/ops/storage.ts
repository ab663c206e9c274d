import { randomBytes } from 'node:crypto';
import { promises as fsPromises } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AgentErrorCode } from '../contract/errors.js';
import { AppError } from '../errors.js';
import type { OpsEvents } from './events.js';

/** Error codes of a write that failed for want of space (or a disk that will take no writes). */
const STORAGE_ERROR_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'SQLITE_FULL',
  'SQLITE_READONLY',
  'SQLITE_IOERR_WRITE',
]);

/** True when `error` says the disk is full (or will take no writes), as Node's fs or SQLite report it. */
export function isStorageError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  // By code only: Node's fs and better-sqlite3 both set one, and a message may carry text from outside (an
  // uncaught error quoting a request must not pass for a full disk and be swallowed).
  const { code } = error as { code?: unknown };
  return typeof code === 'string' && STORAGE_ERROR_CODES.has(code);
}

export interface StorageState {
  /** True while the data dir cannot be written (or has less than the reserve free). */
  full: boolean;
  path: string;
  /** From the last statfs; null before the first check or where statfs failed. */
  freeBytes: number | null;
  totalBytes: number | null;
  /** Why it counts as full, in words (what failed, or how little is free); null when not full. */
  error: string | null;
  /** When it became full (epoch ms); null when not full. */
  since: number | null;
}

/** What the monitor asks of the file system; tests pass a failing one. */
export interface StorageProbeFs {
  statfs(path: string): Promise<{ bavail: number; blocks: number; bsize: number }>;
  /** Writes, syncs and removes a small file: proof that a write goes through. */
  probeWrite(path: string): Promise<void>;
}

const realFs: StorageProbeFs = {
  statfs: (path) => fsPromises.statfs(path),
  async probeWrite(path) {
    const handle = await fsPromises.open(path, 'w', 0o600);
    try {
      await handle.writeFile(randomBytes(4096));
      await handle.sync();
    } finally {
      await handle.close();
      await fsPromises.rm(path, { force: true });
    }
  },
};

export interface StorageMonitorOptions {
  /** The agent's data dir: its database, screens and secrets. */
  dir: string;
  ops?: OpsEvents;
  logger?: Pick<Logger, 'warn' | 'info'>;
  /** Between checks of the free space (and, while full, of whether a write goes through again). */
  intervalMs?: number;
  /** Less free than this counts as full: SQLite needs room for its WAL and journals before a disk is at 0. */
  reserveBytes?: number;
  fs?: StorageProbeFs;
}

export const DEFAULT_STORAGE_CHECK_MS = 5000;
export const DEFAULT_STORAGE_RESERVE_BYTES = 16 * 1024 * 1024;

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/**
 * Whether the agent's data dir can be written. Checked every few seconds (statfs; less free than a small reserve
 * counts as full), and told at once by the parts whose writes fail (the usage recorder, the screen journals). While
 * full, each check tries a small write; once it goes through and space is back, it is no longer full, by itself.
 * Every change is an ops `storage` event (metrics, health and the storage_full alert read it).
 */
export class StorageMonitor {
  readonly #dir: string;
  readonly #ops: OpsEvents | null;
  readonly #logger: Pick<Logger, 'warn' | 'info'> | null;
  readonly #intervalMs: number;
  readonly #reserveBytes: number;
  readonly #fs: StorageProbeFs;
  readonly #listeners = new Set<(state: StorageState) => void>();
  #state: StorageState;
  #timer: NodeJS.Timeout | null = null;
  #checking: Promise<StorageState> | null = null;

  constructor(options: StorageMonitorOptions) {
    this.#dir = options.dir;
    this.#ops = options.ops ?? null;
    this.#logger = options.logger ?? null;
    this.#intervalMs = options.intervalMs ?? DEFAULT_STORAGE_CHECK_MS;
    this.#reserveBytes = options.reserveBytes ?? DEFAULT_STORAGE_RESERVE_BYTES;
    this.#fs = options.fs ?? realFs;
    this.#state = { full: false, path: this.#dir, freeBytes: null, totalBytes: null, error: null, since: null };
  }

  state(): StorageState {
    return { ...this.#state };
  }

  get full(): boolean {
    return this.#state.full;
  }

  /** Called with the new state on every change (the screen journals resume when it is no longer full). */
  onChange(listener: (state: StorageState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    if (this.#timer) return;
    void this.check();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#listeners.clear();
  }

  /**
   * A part's write failed. A storage error (full disk, quota, read-only) makes the data dir full at once and
   * returns true; any other error is not the monitor's business and returns false.
   */
  reportWriteFailure(error: unknown, source: string): boolean {
    if (!isStorageError(error)) return false;
    if (!this.#state.full) {
      const message = error instanceof Error ? error.message : String(error);
      this.#set({ ...this.#state, full: true, error: `${source}: ${message}`, since: Date.now() });
    }
    return true;
  }

  /** Checks now (what the timer does); concurrent calls share one check. */
  check(): Promise<StorageState> {
    this.#checking ??= this.#check().finally(() => (this.#checking = null));
    return this.#checking;
  }

  async #check(): Promise<StorageState> {
    let freeBytes: number | null = null;
    let totalBytes: number | null = null;
    try {
      const stats = await this.#fs.statfs(this.#dir);
      freeBytes = stats.bavail * stats.bsize;
      totalBytes = stats.blocks * stats.bsize;
    } catch (error) {
      this.#logger?.warn({ err: error, dir: this.#dir }, 'cannot read the free space of the data dir');
    }
    const lowSpace = freeBytes !== null && freeBytes < this.#reserveBytes;
    const free = freeBytes ?? 0;
    if (!this.#state.full) {
      if (lowSpace) {
        this.#set({
          full: true,
          path: this.#dir,
          freeBytes,
          totalBytes,
          error: `only ${mb(free)} free on the data dir's disk (at least ${mb(this.#reserveBytes)} needed)`,
          since: Date.now(),
        });
      } else {
        this.#state = { ...this.#state, freeBytes, totalBytes };
      }
      return this.state();
    }
    // Full: it is writable again only once space is back and a real write goes through (a quota or a read-only
    // mount shows no lack of space in statfs).
    if (lowSpace) {
      this.#state = { ...this.#state, freeBytes, totalBytes };
      return this.state();
    }
    try {
      await this.#fs.probeWrite(join(this.#dir, `.storage-probe-${process.pid}`));
    } catch (error) {
      this.#state = { ...this.#state, freeBytes, totalBytes };
      if (!isStorageError(error)) this.#logger?.warn({ err: error }, 'the data dir storage probe failed');
      return this.state();
    }
    this.#set({ full: false, path: this.#dir, freeBytes, totalBytes, error: null, since: null });
    return this.state();
  }

  #set(next: StorageState): void {
    const changed = next.full !== this.#state.full;
    this.#state = next;
    if (!changed) return;
    if (next.full) {
      this.#logger?.warn(
        { dir: this.#dir, freeBytes: next.freeBytes, reason: next.error },
        'the data dir is full: gateway requests are refused and screen journals paused until space is freed',
      );
    } else {
      this.#logger?.info({ dir: this.#dir, freeBytes: next.freeBytes }, 'the data dir can be written again');
    }
    this.#ops?.emit('storage', { full: next.full, path: this.#dir, error: next.error });
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.state());
      } catch (error) {
        this.#logger?.warn({ err: error }, 'a storage listener failed');
      }
    }
  }
}

/** What the admin API answers when something cannot be saved because the data dir is full. */
export const STORAGE_FULL_MESSAGE =
  "The agent's data dir is full, so this could not be saved. Free space on the host's disk (GET /api/v1/health/details shows how much is free), then try again; the agent recovers by itself.";

export const storageFullError = (): AppError => new AppError(AgentErrorCode.STORAGE_FULL, 507, STORAGE_FULL_MESSAGE);
