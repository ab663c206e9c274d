import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, statfsSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { HealthDetails } from '../../contract/index.js';
import { LATEST_SCHEMA_VERSION } from '../../db/migrations.js';
import { schemaVersion, type Db } from '../../db/database.js';
import type { OpsEvents } from '../../ops/events.js';
import type { ProcessSupervisor } from '../../supervisor/supervisor.js';
import type { Slot } from '../../contract/index.js';

type Problem = HealthDetails['problems'][number];

/** What the storage monitor (ops/storage.ts) says; only `full` is read here. */
export interface StorageState {
  state(): { full: boolean; error?: string | null };
}

export interface BackupStatus {
  lastSuccessAt: string | null;
  lastError: string | null;
}

export interface HealthDetailsDeps {
  db: Db;
  supervisor: ProcessSupervisor;
  slots: { list(): Promise<Slot[]> };
  dataDir: string;
  version: string;
  startedAt: number;
  supervisorProblem: () => string | null;
  ops: OpsEvents;
  backupStatus: () => BackupStatus;
  tlsCertFile: string | null;
  storage?: StorageState | undefined;
  logger?: Pick<Logger, 'warn'>;
  now?: () => number;
  /** How often the WAL is checkpointed (PASSIVE: never waits for readers or writers). */
  checkpointIntervalMs?: number;
  /** How often `PRAGMA quick_check` runs. */
  integrityIntervalMs?: number;
  /** /proc/meminfo (tests point it elsewhere). */
  meminfoPath?: string;
}

/** Thresholds an operator would call a problem; the alerts module has its own editable rules. */
const DISK_LOW_PERCENT = 10;
const DISK_LOW_BYTES = 2 * 1024 ** 3;
const MEMORY_HIGH_PERCENT = 90;
const UPSTREAM_ERRORS_HIGH = 0.05;
const BACKUP_OLD_S = 26 * 3600;
const CERT_EXPIRING_DAYS = 14;
/** PM2 is asked for the slots with this bound: a dead daemon must not make the health page wait 20 s. */
const SLOT_LIST_TIMEOUT_MS = 3000;
const UPSTREAM_WINDOW_MS = 5 * 60_000;

/** Requests per 10-second bucket over the last 5 minutes, for the upstream's error rate. */
class UpstreamWindow {
  private readonly buckets = new Map<number, { total: number; failed: number }>();

  add(at: number, failed: boolean): void {
    const key = Math.floor(at / 10_000);
    const bucket = this.buckets.get(key) ?? { total: 0, failed: 0 };
    bucket.total++;
    if (failed) bucket.failed++;
    this.buckets.set(key, bucket);
    this.prune(at);
  }

  rate(now: number): number | null {
    this.prune(now);
    let total = 0;
    let failed = 0;
    for (const bucket of this.buckets.values()) {
      total += bucket.total;
      failed += bucket.failed;
    }
    return total === 0 ? null : failed / total;
  }

  private prune(now: number): void {
    const oldest = Math.floor((now - UPSTREAM_WINDOW_MS) / 10_000);
    for (const key of this.buckets.keys()) if (key < oldest) this.buckets.delete(key);
  }
}

/** Available memory as the kernel estimates it (MemAvailable), which counts reclaimable cache as free. */
export function readMemory(meminfoPath = '/proc/meminfo'): HealthDetails['memory'] {
  let total = totalmem();
  let available = freemem();
  try {
    const text = readFileSync(meminfoPath, 'utf8');
    const field = (name: string): number | null => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      return match ? Number(match[1]) * 1024 : null;
    };
    total = field('MemTotal') ?? total;
    available = field('MemAvailable') ?? available;
  } catch {
    // Not Linux: os.freemem() is the nearest.
  }
  return { totalBytes: total, availableBytes: available, usedPercent: round1(100 * (1 - available / total)) };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * GET /api/v1/health/details: reads every part on demand (cheap: stat, statfs, /proc, one PM2 list) and keeps what
 * only time shows: the last WAL checkpoint and integrity check it ran, and the upstream's answers.
 */
export class HealthDetailsService {
  private readonly now: () => number;
  private lastCheckpointAt: number | null = null;
  private integrity: HealthDetails['database']['integrity'] = { ok: null, checkedAt: null, detail: null };
  private lastWriteError: string | null = null;
  private upstreamLast: { status: number | null; at: number; error: string | null } | null = null;
  private readonly upstreamWindow = new UpstreamWindow();
  private readonly loopDelay: IntervalHistogram;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly deps: HealthDetailsDeps) {
    this.now = deps.now ?? Date.now;
    this.loopDelay = monitorEventLoopDelay({ resolution: 20 });
    this.unsubscribe.push(
      // The error rate is over requests forwarded to the upstream only: the gateway's own answers (/v1/me/*,
      // /v1/models, refusals, its own 500s) would otherwise dilute it.
      deps.ops.on('upstream.answer', (answer) => {
        this.upstreamLast = { status: answer.status, at: answer.at, error: answer.error };
        this.upstreamWindow.add(this.now(), isUpstreamError(answer.status));
      }),
      deps.ops.on('storage', (event) => {
        this.lastWriteError = event.full ? event.error : null;
      }),
    );
  }

  start(): void {
    this.loopDelay.enable();
    const every = (ms: number, task: () => void): void => {
      const timer = setInterval(task, ms);
      timer.unref();
      this.timers.push(timer);
    };
    // Resets the loop-delay histogram each minute, so its p99 is of the last minute.
    every(60_000, () => this.loopDelay.reset());
    every(this.deps.checkpointIntervalMs ?? 5 * 60_000, () => this.checkpoint());
    every(this.deps.integrityIntervalMs ?? 24 * 3_600_000, () => this.checkIntegrity());
    // A first integrity check soon after start, off the start path.
    const first = setTimeout(() => this.checkIntegrity(), 30_000);
    first.unref();
    this.timers.push(first);
  }

  close(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
    for (const off of this.unsubscribe.splice(0)) off();
    this.loopDelay.disable();
  }

  /** PASSIVE checkpoint: copies what it can of the WAL into the database without blocking anyone. */
  checkpoint(): void {
    try {
      this.deps.db.pragma('wal_checkpoint(PASSIVE)');
      this.lastCheckpointAt = this.now();
    } catch (error) {
      this.deps.logger?.warn({ err: error }, 'WAL checkpoint failed');
    }
  }

  /** `PRAGMA quick_check` (O(N), no index cross-checks); a backup's full integrity_check reports through note(). */
  checkIntegrity(): void {
    try {
      const rows = this.deps.db.pragma('quick_check') as Array<{ quick_check: string }>;
      const detail = rows.map((row) => row.quick_check).join('; ');
      this.noteIntegrity(detail === 'ok', detail);
    } catch (error) {
      this.noteIntegrity(false, (error as Error).message);
    }
  }

  /** The backups module tells the result of the integrity_check it ran. */
  noteIntegrity(ok: boolean, detail: string): void {
    this.integrity = { ok, checkedAt: new Date(this.now()).toISOString(), detail: detail.slice(0, 500) };
  }

  /** The last upstream answer and the 5-minute error rate (also for the metrics series). */
  upstream(): HealthDetails['upstream'] {
    const last = this.upstreamLast;
    const rate = this.upstreamWindow.rate(this.now());
    return {
      lastStatus: last?.status ?? null,
      lastAt: last ? new Date(last.at).toISOString() : null,
      lastError: last?.error ?? null,
      errorRate5m: rate === null ? null : Math.round(rate * 10_000) / 10_000,
    };
  }

  async details(): Promise<HealthDetails> {
    const problems: Problem[] = [];
    const now = this.now();
    const database = this.database(problems);
    const supervisor = this.supervisor(problems);
    const slots = await this.slots(problems);
    const disk = this.disk(problems);
    const memory = readMemory(this.deps.meminfoPath);
    if (memory.usedPercent > MEMORY_HIGH_PERCENT)
      problems.push({
        code: 'MEMORY_HIGH',
        message: `Memory is ${memory.usedPercent}% used. Stop idle slots or give the host more memory.`,
      });
    const [one, five, fifteen] = loadavg() as [number, number, number];
    const upstream = this.upstream();
    if (upstream.errorRate5m !== null && upstream.errorRate5m > UPSTREAM_ERRORS_HIGH)
      problems.push({
        code: 'UPSTREAM_ERRORS',
        message: `${Math.round(upstream.errorRate5m * 100)}% of forwarded gateway requests failed upstream in the last 5 minutes. Check the upstream key and its status page.`,
      });
    const backup = this.backup(now, problems);
    const tls = this.tls(now, problems);
    const memoryUsage = process.memoryUsage();
    const p99 = this.loopDelay.count > 0 ? this.loopDelay.percentile(99) / 1e6 : null;
    // Degraded when the agent cannot do its job: storage, database or PM2. The rest are warnings in `problems`.
    const degraded =
      !database.ok ||
      !database.writable ||
      !supervisor.ok ||
      slots === null ||
      (this.deps.storage?.state().full ?? false);
    return {
      status: degraded ? 'degraded' : 'ok',
      checkedAt: new Date(now).toISOString(),
      problems,
      version: this.deps.version,
      uptimeS: Math.round((now - this.deps.startedAt) / 1000),
      agent: {
        pid: process.pid,
        startedAt: new Date(this.deps.startedAt).toISOString(),
        rssBytes: memoryUsage.rss,
        heapUsedBytes: memoryUsage.heapUsed,
        eventLoopDelayP99Ms: p99 === null ? null : Math.round(p99 * 100) / 100,
      },
      database,
      supervisor,
      slots: slots ?? [],
      disk,
      memory,
      load: { one: round2(one), five: round2(five), fifteen: round2(fifteen), cpus: cpus().length },
      upstream,
      backup,
      tls,
    };
  }

  private database(problems: Problem[]): HealthDetails['database'] {
    const file = this.deps.db.name;
    let ok = true;
    let version = -1;
    try {
      this.deps.db.prepare('SELECT 1').get();
      version = schemaVersion(this.deps.db);
      if (version !== LATEST_SCHEMA_VERSION) {
        ok = false;
        problems.push({
          code: 'DB_SCHEMA',
          message: `The database has schema ${version}, this agent expects ${LATEST_SCHEMA_VERSION}. Run: slotdeck-agent migrate`,
        });
      }
    } catch (error) {
      ok = false;
      problems.push({ code: 'DB_UNREADABLE', message: `The database cannot be read: ${(error as Error).message}` });
    }
    const storage = this.deps.storage?.state();
    const writable = !(storage?.full ?? false) && this.lastWriteError === null;
    if (!writable)
      problems.push({
        code: 'DB_NOT_WRITABLE',
        message: `The database cannot be written (${storage?.error ?? this.lastWriteError ?? 'the disk is full'}). Free space on the data dir's disk; the gateway refuses requests until then.`,
      });
    if (this.integrity.ok === false)
      problems.push({
        code: 'DB_INTEGRITY',
        message: `The last integrity check failed (${this.integrity.detail}). Restore the latest good backup.`,
      });
    return {
      ok,
      schemaVersion: version,
      sizeBytes: fileSize(file),
      walBytes: fileSize(`${file}-wal`),
      lastCheckpointAt: this.lastCheckpointAt === null ? null : new Date(this.lastCheckpointAt).toISOString(),
      integrity: this.integrity,
      writable,
      lastWriteError: storage?.full ? (storage.error ?? 'the disk is full') : this.lastWriteError,
    };
  }

  private supervisor(problems: Problem[]): HealthDetails['supervisor'] {
    const daemonPid = this.deps.supervisor.daemonPid();
    const error = this.deps.supervisorProblem() ?? (daemonPid === null ? 'the PM2 daemon is not running' : null);
    if (error) problems.push({ code: 'PM2_DOWN', message: `PM2: ${error}. Slots cannot be started or stopped.` });
    return { ok: error === null, daemonPid, error };
  }

  private async slots(problems: Problem[]): Promise<HealthDetails['slots'] | null> {
    try {
      const slots = await withTimeout(this.deps.slots.list(), SLOT_LIST_TIMEOUT_MS, 'PM2');
      for (const slot of slots.filter((s) => s.state === 'failed'))
        problems.push({
          code: 'SLOT_FAILED',
          message: `Slot "${slot.name}" failed${slot.failure ? `: ${slot.failure.reason}` : ''}. Look at its log, then start it again.`,
        });
      return slots.map((slot) => ({
        id: slot.id,
        name: slot.name,
        state: slot.state,
        pid: slot.pid,
        restarts: slot.restarts,
        memoryBytes: slot.memoryBytes,
        cpuPercent: slot.cpuPercent,
        viewers: slot.viewers.writable + slot.viewers.readOnly,
      }));
    } catch (error) {
      problems.push({ code: 'SLOTS_UNKNOWN', message: `The slots' state cannot be read: ${(error as Error).message}` });
      return null;
    }
  }

  private disk(problems: Problem[]): HealthDetails['disk'] {
    try {
      const stats = statfsSync(this.deps.dataDir);
      const total = stats.blocks * stats.bsize;
      // bavail: what an unprivileged writer (the agent) may still use.
      const free = stats.bavail * stats.bsize;
      const freePercent = total > 0 ? round1((100 * free) / total) : 0;
      if (freePercent < DISK_LOW_PERCENT || free < DISK_LOW_BYTES)
        problems.push({
          code: 'DISK_LOW',
          message: `${formatBytes(free)} (${freePercent}%) free on the data dir's disk. Free space (old logs, backups, slot files) or grow the volume.`,
        });
      return { path: this.deps.dataDir, freeBytes: free, totalBytes: total, freePercent };
    } catch (error) {
      problems.push({
        code: 'DISK_UNKNOWN',
        message: `The data dir's disk cannot be read: ${(error as Error).message}`,
      });
      return null;
    }
  }

  private backup(now: number, problems: Problem[]): HealthDetails['backup'] {
    const status = this.deps.backupStatus();
    const at = status.lastSuccessAt === null ? null : Date.parse(status.lastSuccessAt);
    const ageS = at === null || Number.isNaN(at) ? null : Math.max(0, Math.round((now - at) / 1000));
    if (status.lastError)
      problems.push({ code: 'BACKUP_FAILED', message: `The last backup failed: ${status.lastError}` });
    else if (ageS !== null && ageS > BACKUP_OLD_S)
      problems.push({
        code: 'BACKUP_OLD',
        message: `The last backup is ${Math.round(ageS / 3600)} h old. Check the backup schedule.`,
      });
    return { lastSuccessAt: status.lastSuccessAt, ageS, lastError: status.lastError };
  }

  private tls(now: number, problems: Problem[]): HealthDetails['tls'] {
    const file = this.deps.tlsCertFile;
    if (file === null) return { configured: false, notAfter: null, daysLeft: null };
    try {
      const cert = new X509Certificate(readFileSync(file));
      const notAfter = new Date(cert.validTo);
      const daysLeft = Math.floor(((notAfter.getTime() - now) / 86_400_000) * 10) / 10;
      if (daysLeft < CERT_EXPIRING_DAYS)
        problems.push({
          code: daysLeft < 0 ? 'CERT_EXPIRED' : 'CERT_EXPIRING',
          message: `The gateway's TLS certificate ${daysLeft < 0 ? 'expired' : `expires in ${Math.max(0, Math.floor(daysLeft))} days`} (${notAfter.toISOString()}). Renew it and restart the agent.`,
        });
      return { configured: true, notAfter: notAfter.toISOString(), daysLeft };
    } catch (error) {
      problems.push({
        code: 'CERT_UNREADABLE',
        message: `The TLS certificate cannot be read: ${(error as Error).message}`,
      });
      return { configured: true, notAfter: null, daysLeft: null };
    }
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** An upstream failure: no answer at all, a 5xx, or its 429 (it is overloaded or our key is throttled). */
export function isUpstreamError(status: number | null): boolean {
  return status === null || status >= 500 || status === 429;
}
