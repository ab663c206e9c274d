import {
  closeSync,
  createWriteStream,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import { lineTime, type LogStream } from './lines.js';

/** How logs are rotated (config `log.*`): by size and by age, keeping `maxFiles` files (the live one included). */
export interface RotationLimits {
  maxBytes: number;
  maxFiles: number;
  maxAgeDays: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** `<base>.1` … `<base>.(maxFiles-1)`: moves each one along and drops what falls off the end. */
function shiftRotated(base: string, maxFiles: number): void {
  for (let k = 100; k >= maxFiles - 1; k -= 1) rmSync(`${base}.${k}`, { force: true });
  for (let k = maxFiles - 2; k >= 1; k -= 1) {
    if (existsSync(`${base}.${k}`)) renameSync(`${base}.${k}`, `${base}.${k + 1}`);
  }
}

/** Removes rotated files whose newest line (their mtime) is older than the age limit. */
export function pruneByAge(base: string, maxAgeDays: number, now = Date.now()): void {
  for (let k = 1; k <= 100; k += 1) {
    const file = `${base}.${k}`;
    let mtime: number;
    try {
      mtime = statSync(file).mtimeMs;
    } catch {
      break;
    }
    if (now - mtime > maxAgeDays * DAY_MS) rmSync(file, { force: true });
  }
}

/** The time of the first line of a file (its first 4 KiB), when it has one. */
export function firstLineTime(file: string, stream: LogStream): number | null {
  try {
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(4096);
      const read = readSync(fd, buffer, 0, buffer.length, 0);
      const text = buffer.subarray(0, read).toString('utf8');
      const newline = text.indexOf('\n');
      return lineTime(newline >= 0 ? text.slice(0, newline) : text, stream);
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/** Whether a live file is due: as big as the limit, or its first line older than the age limit. */
export function rotationDue(file: string, stream: LogStream, limits: RotationLimits, now = Date.now()): boolean {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return false;
  }
  if (size === 0) return false;
  if (size >= limits.maxBytes) return true;
  const first = firstLineTime(file, stream);
  return first !== null && now - first > limits.maxAgeDays * DAY_MS;
}

/** How much of a log a rotation reads at a time: the only buffer it holds, whatever the file's size. */
const COPY_CHUNK = 64 * 1024;
/** Passes that copy what PM2 appended during the previous one, before the file is truncated. */
const CATCH_UP_PASSES = 3;

/** The first line of a capped copy, in PM2's format so the viewer shows it with a time. */
function droppedNote(dropped: number, maxBytes: number, now: number): string {
  const d = new Date(now);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${stamp}: [slotdeck-agent] ${dropped} bytes of older output were dropped by log rotation: the log grew past log.maxBytes (${maxBytes}) between two checks, and only its last ${maxBytes} bytes are kept.\n`;
}

/**
 * Rotates a file another process holds open, PM2's out/err logs of a slot (or of the agent under the release's
 * PM2): copy it to `<file>.1`, then truncate it. PM2 opened it with O_APPEND, so its next write lands at the new end
 * (offset 0) rather than at its old offset, which would leave a hole of zeros the size of the old file. Renaming
 * would not work: PM2 would keep writing to the renamed file through its open descriptor.
 *
 * A slot account can write its holder's stdout (/proc/<pid>/fd/1) as fast as the disk takes it, so the copy is
 * asynchronous, 64 KiB at a time (the event loop keeps serving the gateway and terminals), and keeps at most the
 * last `maxBytes` of the file, from a line start, under a first line saying how many bytes were dropped. What PM2
 * appends during the copy is copied in up to three catch-up passes; lines written between the last one and the
 * truncate (microseconds) are lost. PM2's own reloadLogs would avoid that, but it reopens every process's logs at
 * once and needs the daemon, which may be the very thing that is down.
 */
export async function copyTruncate(
  file: string,
  limits: Pick<RotationLimits, 'maxBytes' | 'maxFiles'>,
  now = Date.now(),
): Promise<void> {
  shiftRotated(file, limits.maxFiles);
  if (limits.maxFiles < 2) {
    await truncate(file, 0);
    return;
  }
  const source = await open(file, 'r');
  const target = createWriteStream(`${file}.1`, { flags: 'w', mode: 0o600, highWaterMark: COPY_CHUNK });
  const buffer = Buffer.alloc(COPY_CHUNK);
  const write = async (bytes: Buffer): Promise<void> => {
    if (!target.write(bytes)) await new Promise<void>((resolve) => target.once('drain', resolve));
  };
  try {
    let position = 0;
    let copied = 0;
    for (let pass = 0; pass <= CATCH_UP_PASSES; pass += 1) {
      const end = (await source.stat()).size;
      if (end <= position) break;
      if (end - position + copied > limits.maxBytes) {
        // Over the cap: skip to the last maxBytes (less what is already copied), then to the next line start.
        let start = Math.max(position, end - Math.max(limits.maxBytes - copied, 0));
        const { bytesRead } = await source.read(buffer, 0, Math.min(COPY_CHUNK, end - start), start);
        const newline = buffer.subarray(0, bytesRead).indexOf(10);
        if (newline >= 0 && start > position) start += newline + 1;
        if (pass === 0) await write(Buffer.from(droppedNote(start - position, limits.maxBytes, now)));
        position = start;
      }
      while (position < end) {
        const { bytesRead } = await source.read(buffer, 0, Math.min(COPY_CHUNK, end - position), position);
        if (bytesRead === 0) break;
        await write(Buffer.from(buffer.subarray(0, bytesRead)));
        position += bytesRead;
        copied += bytesRead;
      }
    }
    await truncate(file, 0);
  } finally {
    await source.close();
    target.end();
    await finished(target);
  }
}

/**
 * The agent's own log file, a pino destination: lines are appended with one write each (a line is never split
 * across files), and the file is renamed to `.1` and a new one opened when it is full or its first line is too old.
 * The agent is the only writer, so a rename is safe here. A failed write (a full disk) drops the line rather than
 * the agent: logging must never be what stops it.
 */
export class RotatingFile {
  private fd: number | null = null;
  private ageTimer: NodeJS.Timeout | null = null;
  private size = 0;
  private startedAt = 0;
  /** Lines lost to write errors since the last one that worked (said in the next line that is written). */
  dropped = 0;

  constructor(
    readonly path: string,
    private readonly limits: RotationLimits,
    private readonly now: () => number = Date.now,
  ) {}

  write(line: string): void {
    try {
      if (this.fd === null) this.open();
      const bytes = Buffer.byteLength(line);
      if (this.size > 0 && (this.size + bytes > this.limits.maxBytes || this.tooOld())) this.rotate();
      if (this.dropped > 0) {
        const note = `${JSON.stringify({ level: 40, time: this.now(), msg: `${this.dropped} log lines were lost (the log could not be written)` })}\n`;
        writeSync(this.fd!, note);
        this.size += Buffer.byteLength(note);
        this.dropped = 0;
      }
      writeSync(this.fd!, line);
      this.size += bytes;
    } catch {
      this.dropped += 1;
      // Opened again at the next line: the file may have been removed, or the disk freed.
      this.close();
    }
  }

  /** Rotates now when due by age (a quiet agent writes seldom; the rotator's timer calls this). */
  rotateIfDue(): void {
    try {
      if (this.fd !== null && this.size > 0 && this.tooOld()) this.rotate();
      pruneByAge(this.path, this.limits.maxAgeDays, this.now());
    } catch {
      // tried again at the next check
    }
  }

  close(): void {
    if (this.ageTimer) clearInterval(this.ageTimer);
    this.ageTimer = null;
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
    }
    this.fd = null;
  }

  private tooOld(): boolean {
    return this.now() - this.startedAt > this.limits.maxAgeDays * DAY_MS;
  }

  private open(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
    this.startedAt = this.size > 0 ? (firstLineTime(this.path, 'json') ?? this.now()) : this.now();
    // A quiet agent writes seldom: age is also checked hourly, not only when a line comes.
    this.ageTimer ??= setInterval(() => this.rotateIfDue(), 60 * 60 * 1000);
    this.ageTimer.unref();
  }

  private rotate(): void {
    this.close();
    shiftRotated(this.path, this.limits.maxFiles);
    if (this.limits.maxFiles >= 2) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    pruneByAge(this.path, this.limits.maxAgeDays, this.now());
    this.open();
  }
}

export interface RotatorDeps {
  limits: RotationLimits;
  /** Folder of the slots' PM2 logs (`slot-<id>.out.log`, `slot-<id>.err.log`). */
  logDir: string;
  /** Whether a slot id is still in the registry: rotated logs of deleted slots are removed. */
  slotExists: (id: string) => boolean;
  /** Other files PM2 holds open: the agent's own stdout/stderr when the release's PM2 captures them. */
  extraFiles?: () => Array<{ path: string; stream: LogStream }>;
  onError?: (file: string, error: unknown) => void;
  now?: () => number;
}

const SLOT_LOG = /^slot-([a-z0-9]{10})\.(out|err)\.log(?:\.(\d+))?$/;

/**
 * Checks every `intervalMs` the logs PM2 writes and rotates them by copy-and-truncate when due. A check runs in the
 * background (asynchronous copies); a tick that comes while one is still running is skipped.
 */
export class LogRotator {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: RotatorDeps) {}

  start(intervalMs: number): void {
    if (this.timer) return;
    this.stopped = false;
    void this.check();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer; a copy under way finishes, and no other file is started. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass over the files (the running one when a pass is under way); never rejects. */
  check(): Promise<void> {
    this.running ??= this.checkAll()
      .catch((error: unknown) => this.deps.onError?.(this.deps.logDir, error))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async checkAll(): Promise<void> {
    const { limits, logDir } = this.deps;
    const now = this.deps.now?.() ?? Date.now();
    const files: Array<{ path: string; stream: LogStream }> = [];
    let names: string[] = [];
    try {
      names = readdirSync(logDir);
    } catch {
      // no slot has started yet
    }
    for (const name of names) {
      const match = SLOT_LOG.exec(name);
      if (!match) continue;
      if (!this.deps.slotExists(match[1]!)) {
        // The slot was deleted (its live logs with it): its rotated ones go too.
        if (match[3] !== undefined) rmSync(join(logDir, name), { force: true });
        continue;
      }
      if (match[3] === undefined) files.push({ path: join(logDir, name), stream: match[2] as 'out' | 'err' });
    }
    const seen = new Set(files.map((f) => f.path));
    for (const extra of this.deps.extraFiles?.() ?? []) {
      if (!seen.has(extra.path)) files.push(extra);
      seen.add(extra.path);
    }
    for (const { path, stream } of files) {
      if (this.stopped) break;
      try {
        if (rotationDue(path, stream, limits, now)) await copyTruncate(path, limits, now);
        pruneByAge(path, limits.maxAgeDays, now);
      } catch (error) {
        this.deps.onError?.(path, error);
      }
    }
  }
}

/**
 * The files the release's PM2 writes the agent's own stdout and stderr to (PM2 tells its children in
 * `pm_out_log_path` / `pm_err_log_path`); nothing when the agent runs otherwise.
 */
export function pm2CapturedOutput(env: NodeJS.ProcessEnv = process.env): Array<{ path: string; stream: LogStream }> {
  const files: Array<{ path: string; stream: LogStream }> = [];
  for (const [key, stream] of [
    ['pm_out_log_path', 'out'],
    ['pm_err_log_path', 'err'],
  ] as const) {
    const path = env[key];
    if (path && path.startsWith('/') && path !== '/dev/null') files.push({ path, stream });
  }
  return files;
}
