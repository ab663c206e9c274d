import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  promises as fsPromises,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  write as fsWrite,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import {
  buildMirror,
  forEachRecord,
  HEADER_SIZE,
  journalReader,
  readSnapshotFile,
  RECORD_OUTPUT,
  RECORD_RESIZE,
  replayJournal,
  type Mirror as TerminalMirror,
  type RenderJob,
  type RenderedScreen,
  type ScreenSize,
  type SnapshotFile,
} from './journal.js';
import { sharedScreenRenderer } from './screen-renderer.js';

export type { ScreenSize } from './journal.js';

/**
 * A slot's screen, kept on disk so that it outlives the agent: a snapshot (the serialized screen and scrollback at
 * some point) plus a journal of everything that happened since (output bytes and size changes; the format is in
 * journal.ts). Nothing is parsed while output flows. A client attaching to a small screen gets it from an
 * @xterm/headless mirror built from snapshot + journal and dropped again when idle; a larger screen, and every
 * compaction's new snapshot, is rendered by the screen renderer's process, off the event loop.
 */
/** Bytes of recent output kept in memory for failure messages. */
const RECENT_OUTPUT_BYTES = 8192;
const MIRROR_IDLE_MS = 60_000;
/**
 * A screen whose files hold more than this is rendered for a viewer by the renderer's process. xterm's parser yields
 * every few milliseconds, its serializer does not: for 10,000 styled lines (2.2 MB of output) the agent's thread was
 * blocked up to 220 ms at a time, a stall of every gateway request and console each time a viewer opened that
 * screen. The renderer took 1.3 s for it (0.7 s here), its start included, with no stall over 30 ms. Below this size
 * the in-thread mirror answers in tens of milliseconds, sooner than a renderer could start (about 0.5 s).
 */
const IN_THREAD_SCREEN_BYTES = 256 << 10;
/** Output after the last rendering up to this much is appended to it for the next viewer, rather than rendered. */
const APPENDED_OUTPUT_BYTES = 256 << 10;
/** After a screen failed to render twice, its viewers get the notice without a try for this long. */
const RENDER_REFUSED_MS = 30_000;
/**
 * Journal bytes waiting for the disk, per slot and for all slots together. Writes are asynchronous and coalesced
 * (one write per turn of the event loop at most), so output waits only while the previous write is under way; a disk
 * that falls that far behind loses the journal's continuity: what waits is dropped and the journal starts afresh.
 */
export const MAX_PENDING_JOURNAL_BYTES = 16 << 20;
export const MAX_PENDING_JOURNAL_BYTES_TOTAL = 64 << 20;
/** After a journal write failed for another reason than a full disk, recording is tried again this much later. */
const RETRY_JOURNAL_MS = 10_000;
const JOURNAL_FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT;
/** Output quiet for this long before a journal past its threshold is compacted... */
const COMPACT_QUIET_MS = 1000;
/** ...unless it grew to this many times the threshold. */
const COMPACT_ANYWAY_FACTOR = 4;
/** CSI, OSC, DCS/PM/APC and two-byte escape sequences, and control characters other than tab and newline. */
/* eslint-disable no-control-regex */
const ESCAPES_AND_CONTROLS =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;
/* eslint-enable no-control-regex */

/** A resize record's payload: cols u16, rows u16. */
function sizePayload(size: ScreenSize): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt16LE(size.cols, 0);
  payload.writeUInt16LE(size.rows, 2);
  return payload;
}

export interface ScreenSnapshot {
  /** Bytes that rebuild the screen and scrollback in a fresh terminal of `size`. */
  data: string;
  size: ScreenSize;
  /** Sequence number of the last journal byte included. */
  seq: number;
}

/** The storage monitor (ops/storage.ts), as the journal uses it. */
export interface JournalStorage {
  readonly full: boolean;
  reportWriteFailure(error: unknown, source: string): boolean;
  onChange(listener: (state: { full: boolean }) => void): () => void;
}

/** The file operations the journal writer uses; tests pass a failing one. */
export interface JournalFs {
  write(fd: number, buffer: Buffer, position: number, done: (error: Error | null, written: number) => void): void;
}

const realJournalFs: JournalFs = {
  write: (fd, buffer, position, done) =>
    fsWrite(fd, buffer, 0, buffer.length, position, (error, written) => done(error, written ?? 0)),
};

export interface ScreenStoreOptions {
  dir: string;
  /** Names the screen in log lines (the slot's id). */
  label?: string;
  logger?: Pick<Logger, 'warn' | 'info'>;
  /** Told when a journal write fails for want of space; says when space is back. */
  storage?: JournalStorage;
  fs?: JournalFs;
  scrollbackLines: number;
  /** Journal size that triggers folding it into a new snapshot. */
  compactBytes: number;
  /** At most this much journal is parsed to rebuild a screen; older output of a longer burst is skipped. */
  maxReplayBytes: number;
  initialSize: ScreenSize;
  /** Renders compactions' snapshots and large screens; the agent's renderer process unless a test passes another. */
  renderer?: { render(job: RenderJob): Promise<RenderedScreen> };
  /** Screens whose files hold more are rendered by `renderer` for viewers (IN_THREAD_SCREEN_BYTES by default). */
  inThreadScreenBytes?: number;
}

interface Mirror extends TerminalMirror {
  /** Sequence number up to which the mirror has consumed the journal. */
  seq: number;
}

export class ScreenStore {
  /** Journal bytes waiting for the disk in every store of the process (bounded by MAX_PENDING_JOURNAL_BYTES_TOTAL). */
  private static pendingTotal = 0;
  private generation = 0;
  private journalFd = -1;
  /** Sequence number (bytes appended during this process's life) at which the current journal file begins. */
  private journalBaseSeq = 0;
  private seqNow = 0;
  /** Sequence number up to which the journal is on disk (always the end of a whole record). */
  private writtenSeq = 0;
  /** Whole records waiting for the next write, and the write under way. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing: Buffer | null = null;
  private writeScheduled = false;
  /** Compaction swaps journal files: writes wait meanwhile. */
  private writesHeld = 0;
  private closeAfterWrite = false;
  private readonly writtenWaiters: Array<{ seq: number; resolve: () => void }> = [];
  private readonly idleWaiters: Array<() => void> = [];
  /** Why the journal is not recorded at the moment (a full disk, a disk too slow); null while it is. */
  private pausedBecause: string | null = null;
  private stopWatchingStorage: (() => void) | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Told when the journal starts afresh after a pause: the program is asked to repaint. */
  onJournalRestarted: (() => void) | null = null;
  private size: ScreenSize;
  private mirror: Mirror | null = null;
  /** The last screen the renderer made for a viewer: the next viewer gets it, plus the output recorded since. */
  private rendered: ScreenSnapshot | null = null;
  /** Until when a screen that failed to render is not tried again (Date.now() ms). */
  private renderRefusedUntil = 0;
  private mirrorIdleTimer: NodeJS.Timeout | null = null;
  private compactTimer: NodeJS.Timeout | null = null;
  private work: Promise<unknown> = Promise.resolve();
  private recent: Buffer = Buffer.alloc(0);
  private closed = false;

  private constructor(private readonly options: ScreenStoreOptions) {
    this.size = { ...options.initialSize };
  }

  /** Opens the store in `dir`, recovering what an earlier agent left there. */
  static open(options: ScreenStoreOptions): ScreenStore {
    const store = new ScreenStore(options);
    store.recover();
    return store;
  }

  private get snapshotPath(): string {
    return join(this.options.dir, 'screen.snapshot.json');
  }

  private journalPath(generation: number): string {
    return join(this.options.dir, `screen.journal.${generation}`);
  }

  private recover(): void {
    mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    const snapshot = this.readSnapshot();
    if (snapshot) {
      this.generation = snapshot.generation;
      this.size = { cols: snapshot.cols, rows: snapshot.rows };
    }
    for (const name of readdirSync(this.options.dir)) {
      const match = /^screen\.journal\.(\d+)$/.exec(name);
      if (match && Number(match[1]) !== this.generation) unlinkSync(join(this.options.dir, name));
    }
    this.journalFd = openSync(this.journalPath(this.generation), JOURNAL_FLAGS, 0o600);
    const length = this.trimTornRecord();
    this.journalBaseSeq = 0;
    this.seqNow = length;
    this.writtenSeq = length;
    // The newest size is the last resize in the journal, if any.
    let output = false;
    forEachRecord(journalReader(this.journalFd), 0, length, (kind, payload) => {
      if (kind === RECORD_RESIZE) this.size = { cols: payload.readUInt16LE(0), rows: payload.readUInt16LE(2) };
      else if (payload.length > 0) output = true;
    });
    // Only output counts: every journal starts with a resize record, written even when nothing was ever printed.
    this.openedWithHistory = (snapshot !== null && snapshot.data.length > 0) || output;
    // A new journal starts by saying the size its output is written at, so that a replay never depends on the
    // size the store happens to be opened with later.
    if (length === 0) this.appendResize(this.size);
  }

  private readSnapshot(): SnapshotFile | null {
    return readSnapshotFile(this.snapshotPath);
  }

  /** A record cut short by a killed process is dropped; returns the journal's usable length. */
  private trimTornRecord(): number {
    const length = fstatSync(this.journalFd).size;
    let offset = 0;
    const header = Buffer.alloc(HEADER_SIZE);
    while (offset + HEADER_SIZE <= length) {
      readSync(this.journalFd, header, 0, HEADER_SIZE, offset);
      const next = offset + HEADER_SIZE + header.readUInt32LE(1);
      if (next > length) break;
      offset = next;
    }
    if (offset < length) {
      closeSync(this.journalFd);
      const whole = readFileSync(this.journalPath(this.generation)).subarray(0, offset);
      writeFileSync(this.journalPath(this.generation), whole, { mode: 0o600 });
      this.journalFd = openSync(this.journalPath(this.generation), JOURNAL_FLAGS, 0o600);
    }
    return offset;
  }

  /** Whether the screen had something (a snapshot or a journal) when it was opened: an earlier session's. */
  openedWithHistory = false;

  /** Sequence number of the newest byte recorded. */
  get seq(): number {
    return this.seqNow;
  }

  get currentSize(): ScreenSize {
    return { ...this.size };
  }

  get journalBytes(): number {
    return this.seqNow - this.journalBaseSeq;
  }

  /** Whether output is being recorded (false while the disk is full, until it has room again). */
  get journaling(): boolean {
    return this.pausedBecause === null;
  }

  /** The sequence number a record of `length` output bytes will end at when appended next. */
  nextOutputSeq(length: number): number {
    return this.seqNow + HEADER_SIZE + length;
  }

  /** Records program output; returns its sequence number (the end of the record). */
  appendOutput(data: Buffer): number {
    this.keepRecent(data);
    return this.appendRecord(RECORD_OUTPUT, data);
  }

  appendResize(size: ScreenSize): number {
    this.size = { ...size };
    return this.appendRecord(RECORD_RESIZE, sizePayload(size));
  }

  private appendRecord(kind: number, payload: Buffer): number {
    if (this.closed) return this.seqNow;
    this.seqNow += HEADER_SIZE + payload.length;
    // Paused (full disk): the output still reaches viewers, it is only not recorded.
    if (this.pausedBecause !== null) return this.seqNow;
    const header = Buffer.allocUnsafe(HEADER_SIZE);
    header[0] = kind;
    header.writeUInt32LE(payload.length, 1);
    // Output chunks are fresh buffers from the socket: kept as they are until written, not copied.
    this.pending.push(header, payload);
    this.pendingBytes += HEADER_SIZE + payload.length;
    ScreenStore.pendingTotal += HEADER_SIZE + payload.length;
    if (this.pendingBytes > MAX_PENDING_JOURNAL_BYTES || ScreenStore.pendingTotal > MAX_PENDING_JOURNAL_BYTES_TOTAL) {
      this.pause('the disk did not keep up with the output', null);
      return this.seqNow;
    }
    this.scheduleWrite();
    if (this.journalBytes >= this.options.compactBytes) this.scheduleCompaction();
    return this.seqNow;
  }

  /** Journal writes are coalesced: whatever a turn of the event loop appended goes out in one write. */
  private scheduleWrite(): void {
    if (this.writeScheduled || this.writing || this.writesHeld > 0 || this.closed) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      this.writeNext();
    });
  }

  private takePending(): Buffer {
    const batch = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    ScreenStore.pendingTotal -= this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    return batch;
  }

  private writeNext(): void {
    if (this.writing || this.writesHeld > 0 || this.closed || this.pendingBytes === 0) return;
    const batch = this.takePending();
    this.writing = batch;
    const fd = this.journalFd;
    const start = this.writtenSeq - this.journalBaseSeq;
    const fs = this.options.fs ?? realJournalFs;
    let done = 0;
    const next = (): void => {
      fs.write(fd, done === 0 ? batch : batch.subarray(done), start + done, (error, written) => {
        if (!error && done + written < batch.length && written > 0) {
          done += written;
          next();
          return;
        }
        this.writing = null;
        if (this.closeAfterWrite) {
          // close() already wrote everything synchronously; only the descriptor was left to close.
          closeSync(fd);
          this.closeAfterWrite = false;
          this.settleIdle();
          return;
        }
        if (error || done + written < batch.length) {
          this.onWriteFailed(error ?? new Error('the journal write wrote nothing'), start);
        } else {
          this.writtenSeq += batch.length;
          this.settleWritten();
        }
        this.settleIdle();
        if (this.pendingBytes > 0) this.scheduleWrite();
      });
    };
    next();
  }

  /** What did not reach the disk is lost from the journal; the file is cut back to its last whole record. */
  private onWriteFailed(error: Error, wholeLength: number): void {
    try {
      ftruncateSync(this.journalFd, wholeLength);
    } catch {
      // The next journal starts afresh anyway.
    }
    this.pause(error.message, error);
  }

  /**
   * Stops recording (what waits is dropped); the screen's viewers go on receiving output. Recording resumes, from a
   * fresh empty snapshot, once the storage monitor says the disk has room again, or a little later for other causes.
   */
  private pause(reason: string, error: Error | null): void {
    if (this.pausedBecause !== null || this.closed) return;
    this.pausedBecause = reason;
    ScreenStore.pendingTotal -= this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const storage = this.options.storage;
    const full =
      error !== null && (storage?.reportWriteFailure(error, `screen journal of slot ${this.label}`) ?? false);
    this.options.logger?.warn(
      { slotId: this.options.label, reason },
      full
        ? 'screen journal paused: the disk is full; output still reaches viewers, recording resumes once there is room'
        : 'screen journal paused; output still reaches viewers, recording resumes shortly',
    );
    this.settleWritten();
    if (full && storage) {
      const resumeWhenWritable = (state: { full: boolean }): void => {
        if (state.full) return;
        this.stopWatchingStorage?.();
        this.stopWatchingStorage = null;
        void this.resume();
      };
      this.stopWatchingStorage = storage.onChange(resumeWhenWritable);
      // It may have recovered between the failure and now.
      if (!storage.full) resumeWhenWritable({ full: false });
      return;
    }
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        void this.resume();
      },
      error === null ? 0 : RETRY_JOURNAL_MS,
    );
    this.retryTimer.unref();
  }

  /**
   * Starts a new journal generation after a pause: an empty snapshot and a journal that begins with the size and a
   * line saying output was missed. The program is asked to repaint, so a full-screen program shows itself whole.
   */
  private resume(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed || this.pausedBecause === null) return;
      await this.writerIdle();
      if (this.closed) return;
      const next = this.generation + 1;
      const start = this.seqNow;
      const note = Buffer.from(
        '\r\n\x1b[2m[slotdeck] output was not recorded for a while (the disk was full)\x1b[0m\r\n',
      );
      const records = Buffer.concat([
        this.record(RECORD_RESIZE, sizePayload(this.size)),
        this.record(RECORD_OUTPUT, note),
      ]);
      const snapshot: SnapshotFile = {
        version: 1,
        generation: next,
        cols: this.size.cols,
        rows: this.size.rows,
        data: '',
      };
      const temporary = `${this.snapshotPath}.tmp`;
      let fd: number;
      try {
        writeFileSync(this.journalPath(next), records, { mode: 0o600 });
        writeFileSync(temporary, JSON.stringify(snapshot), { mode: 0o600 });
        renameSync(temporary, this.snapshotPath);
        fd = openSync(this.journalPath(next), JOURNAL_FLAGS, 0o600);
      } catch (error) {
        rmSync(this.journalPath(next), { force: true });
        rmSync(temporary, { force: true });
        // Still no room: wait for the monitor again.
        this.pausedBecause = null;
        this.pause((error as Error).message, error as Error);
        return;
      }
      closeSync(this.journalFd);
      rmSync(this.journalPath(this.generation), { force: true });
      this.journalFd = fd;
      this.generation = next;
      this.journalBaseSeq = start;
      this.seqNow = start + records.length;
      this.writtenSeq = this.seqNow;
      this.disposeMirror();
      this.pausedBecause = null;
      this.options.logger?.info({ slotId: this.options.label }, 'screen journal recording again');
      this.onJournalRestarted?.();
    });
  }

  private record(kind: number, payload: Buffer): Buffer {
    const record = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
    record[0] = kind;
    record.writeUInt32LE(payload.length, 1);
    payload.copy(record, HEADER_SIZE);
    return record;
  }

  private get label(): string {
    return this.options.label ?? this.options.dir;
  }

  /** Resolves once the journal is on disk up to `seq` (at once while recording is paused or closed). */
  private waitWritten(seq: number): Promise<void> {
    if (this.writtenSeq >= seq || this.pausedBecause !== null || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.writtenWaiters.push({ seq, resolve });
      this.scheduleWrite();
    });
  }

  private settleWritten(): void {
    for (let i = this.writtenWaiters.length - 1; i >= 0; i--) {
      const waiter = this.writtenWaiters[i]!;
      if (this.writtenSeq >= waiter.seq || this.pausedBecause !== null || this.closed) {
        this.writtenWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  private writerIdle(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settleIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private keepRecent(data: Buffer): void {
    const combined =
      data.length >= RECENT_OUTPUT_BYTES
        ? data.subarray(data.length - RECENT_OUTPUT_BYTES)
        : Buffer.concat([this.recent, data]);
    this.recent =
      combined.length > RECENT_OUTPUT_BYTES ? combined.subarray(combined.length - RECENT_OUTPUT_BYTES) : combined;
  }

  /** The last lines of output as plain text (escape sequences removed), for messages about why a slot ended. */
  recentText(maxLines = 3): string {
    const lines = this.recent
      .toString('utf8')
      .replace(ESCAPES_AND_CONTROLS, '')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0 && !line.startsWith('[slotdeck]'))
      // A program that crashes in a loop prints the same thing each time: say it once.
      .filter((line, index, all) => line !== all[index - 1]);
    return lines.slice(-maxLines).join(' | ');
  }

  /** Serializes the screen as of now. Runs after any snapshot or compaction already under way. */
  snapshot(): Promise<ScreenSnapshot> {
    return this.exclusive(async () => {
      await this.waitWritten(this.seqNow);
      // While recording is paused the journal ends where it stopped: the screen is rebuilt up to there.
      const target = Math.min(this.seqNow, this.writtenSeq);
      if (this.screenBytes(target) > (this.options.inThreadScreenBytes ?? IN_THREAD_SCREEN_BYTES)) {
        return this.renderedSnapshot(target);
      }
      // A rendering of the screen when it was larger (before a compaction) is of no more use.
      this.rendered = null;
      const mirror = await this.catchUp(target);
      this.touchMirror();
      return {
        data: mirror.serializer.serialize({ scrollback: this.options.scrollbackLines }),
        size: { cols: mirror.term.cols, rows: mirror.term.rows },
        seq: mirror.seq,
      };
    });
  }

  /**
   * Folds the journal into a new snapshot, bounding the disk used and the work of the next rebuild. The screen is
   * rendered from the files by the renderer's process; output goes on being appended meanwhile (past the part
   * rendered), and nothing but the swap of files happens on the event loop.
   */
  compact(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed || this.pausedBecause !== null || this.journalBytes === 0) return;
      await this.waitWritten(this.seqNow);
      if (this.closed || this.pausedBecause !== null) return;
      const target = this.writtenSeq;
      const screen = await this.renderFiles(target);
      await this.replaceFiles(screen, target);
      // A viewer's mirror behind the new snapshot could no longer catch up from the journal: the next viewer
      // builds a fresh one.
      if (this.mirror && this.mirror.seq < this.journalBaseSeq) this.disposeMirror();
    });
  }

  /** What rebuilding the screen up to `target` parses: the snapshot file and the journal's replayed part. */
  private screenBytes(target: number): number {
    let snapshotBytes = 0;
    try {
      snapshotBytes = statSync(this.snapshotPath).size;
    } catch {
      // no snapshot yet
    }
    return snapshotBytes + Math.min(target - this.journalBaseSeq, this.options.maxReplayBytes);
  }

  /**
   * The screen up to `target` for a viewer of a large screen. The last rendering answers while only output followed
   * it (that output appended, as a viewer attached then would have received it); otherwise the renderer's process
   * renders the files. A renderer that dies ends every job it held, other screens' included, so a failure is tried
   * once more on a fresh one; a second failure tells the viewer the earlier output cannot be shown, and for
   * RENDER_REFUSED_MS viewers get that at once: the same output is not parsed again on the agent's thread, where it
   * could stall every slot, nor fed to renderer after renderer.
   */
  private async renderedSnapshot(target: number): Promise<ScreenSnapshot> {
    const since = this.rendered ? this.outputSince(this.rendered.seq, target) : null;
    if (this.rendered && since !== null) {
      this.touchMirror();
      return { data: this.rendered.data + since, size: this.rendered.size, seq: target };
    }
    this.disposeMirror();
    const notice: ScreenSnapshot = {
      data: '\r\n[slotdeck] the earlier output of this console could not be shown; new output follows\r\n',
      size: { ...this.size },
      seq: target,
    };
    if (Date.now() < this.renderRefusedUntil) return notice;
    for (let attempt = 1; ; attempt++) {
      try {
        const screen = await this.renderFiles(target);
        const snapshot = { data: screen.data, size: { cols: screen.cols, rows: screen.rows }, seq: target };
        if (this.closed) return snapshot;
        this.rendered = snapshot;
        this.touchMirror();
        return snapshot;
      } catch (error) {
        if (this.closed) throw error;
        if (attempt < 2) continue;
        this.renderRefusedUntil = Date.now() + RENDER_REFUSED_MS;
        this.options.logger?.warn(
          { slotId: this.options.label, error: (error as Error).message },
          'could not render the screen for a viewer; it starts from a blank screen',
        );
        return notice;
      }
    }
  }

  /**
   * The output recorded from `from` to `to` as text, when it is a short run of output records only (a resize in it
   * reflows the screen: that takes a rendering), and ends on a whole character.
   */
  private outputSince(from: number, to: number): string | null {
    if (from < this.journalBaseSeq || to - from > APPENDED_OUTPUT_BYTES) return null;
    const pieces: Buffer[] = [];
    let resized = false;
    forEachRecord(
      journalReader(this.journalFd),
      from - this.journalBaseSeq,
      to - this.journalBaseSeq,
      (kind, payload) => {
        if (kind === RECORD_RESIZE) resized = true;
        else pieces.push(payload);
      },
    );
    if (resized) return null;
    const decoder = new StringDecoder('utf8');
    const text = decoder.write(Buffer.concat(pieces));
    return decoder.end() === '' ? text : null;
  }

  /** The screen up to `target` (on disk), rendered from the snapshot and journal files by the renderer's process. */
  private renderFiles(target: number): Promise<RenderedScreen> {
    return (this.options.renderer ?? sharedScreenRenderer).render({
      snapshotPath: this.snapshotPath,
      journalPath: this.journalPath(this.generation),
      from: 0,
      to: target - this.journalBaseSeq,
      initialSize: this.options.initialSize,
      scrollbackLines: this.options.scrollbackLines,
      maxReplayBytes: this.options.maxReplayBytes,
    });
  }

  /** Whether a headless terminal mirror of the screen is in memory now (tests check it is freed). */
  get holdsMirror(): boolean {
    return this.mirror !== null;
  }

  /** Makes `screen` (the journal rendered up to `target`) the snapshot, and the rest of the journal a new one. */
  private async replaceFiles(screen: RenderedScreen, target: number): Promise<void> {
    if (this.closed || this.pausedBecause !== null) return;
    const next = this.generation + 1;
    const snapshot: SnapshotFile = {
      version: 1,
      generation: next,
      cols: screen.cols,
      rows: screen.rows,
      data: screen.data,
    };
    const temporary = `${this.snapshotPath}.tmp`;
    // Output goes on arriving while the new files are written (asynchronously, off the event loop): it waits in
    // memory and is written to the new journal once it is in place, after the part of the old one it continues.
    this.writesHeld += 1;
    try {
      await this.writerIdle();
      if (this.closed || this.pausedBecause !== null) return;
      const tail = await this.readJournalAsync(target - this.journalBaseSeq, this.writtenSeq - this.journalBaseSeq);
      await fsPromises.writeFile(this.journalPath(next), tail, { mode: 0o600 });
      await fsPromises.writeFile(temporary, JSON.stringify(snapshot), { mode: 0o600 });
      if (this.closed || this.pausedBecause !== null) throw new Error('closed while compacting');
      // From here on nothing awaits: the new snapshot and journal replace the old ones at once.
      renameSync(temporary, this.snapshotPath);
      closeSync(this.journalFd);
      rmSync(this.journalPath(this.generation), { force: true });
      this.generation = next;
      this.journalFd = openSync(this.journalPath(next), JOURNAL_FLAGS, 0o600);
      this.journalBaseSeq = target;
    } catch (error) {
      rmSync(this.journalPath(next), { force: true });
      rmSync(temporary, { force: true });
      if (!this.closed) this.options.storage?.reportWriteFailure(error, `screen snapshot of slot ${this.label}`);
      throw error;
    } finally {
      this.writesHeld -= 1;
      if (this.pendingBytes > 0) this.scheduleWrite();
    }
  }

  private async readJournalAsync(from: number, to: number): Promise<Buffer> {
    const out = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    const handle = await fsPromises.open(this.journalPath(this.generation), 'r');
    try {
      while (done < out.length) {
        const { bytesRead } = await handle.read(out, done, out.length - done, from + done);
        if (bytesRead <= 0) break;
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
    return out.subarray(0, done);
  }

  /**
   * Compaction waits until the output has been quiet for a second, so that a burst is rendered once rather than
   * again and again while it lasts (each rendering parses up to maxReplayBytes in the renderer's process), unless
   * the journal grew to COMPACT_ANYWAY_FACTOR times the threshold (the disk used stays bounded).
   */
  private scheduleCompaction(): void {
    if (this.closed) return;
    if (this.compactTimer) {
      if (this.journalBytes < this.options.compactBytes * COMPACT_ANYWAY_FACTOR) this.compactTimer.refresh();
      return;
    }
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      void this.compact().catch(() => undefined);
    }, COMPACT_QUIET_MS);
    this.compactTimer.unref();
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.work.then(task, task);
    this.work = run.catch(() => undefined);
    return run;
  }

  /** Brings the mirror (built when missing) up to `target` (written), replaying at most maxReplayBytes of output. */
  private async catchUp(target: number): Promise<Mirror> {
    const mirror = (this.mirror ??= {
      ...(await buildMirror(this.readSnapshot(), this.options.initialSize, this.options.scrollbackLines)),
      seq: this.journalBaseSeq,
    });
    await replayJournal(
      mirror.term,
      journalReader(this.journalFd),
      mirror.seq - this.journalBaseSeq,
      target - this.journalBaseSeq,
      this.options.maxReplayBytes,
    );
    mirror.seq = target;
    return mirror;
  }

  private touchMirror(): void {
    if (this.mirrorIdleTimer) clearTimeout(this.mirrorIdleTimer);
    this.mirrorIdleTimer = setTimeout(() => {
      this.mirrorIdleTimer = null;
      void this.exclusive(() => Promise.resolve(this.disposeMirror()));
    }, MIRROR_IDLE_MS);
    this.mirrorIdleTimer.unref();
  }

  private disposeMirror(): void {
    if (this.mirrorIdleTimer) clearTimeout(this.mirrorIdleTimer);
    this.mirrorIdleTimer = null;
    this.rendered = null;
    this.mirror?.term.dispose();
    this.mirror = null;
  }

  /** Stops recording; pending compaction is skipped and the mirror freed. Files stay for the next agent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.compactTimer) clearTimeout(this.compactTimer);
    if (this.mirrorIdleTimer) clearTimeout(this.mirrorIdleTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopWatchingStorage?.();
    this.disposeMirror();
    // What has not reached the disk is written now (the write under way too, at its place: rewriting the same
    // bytes is harmless), so the next store to open these files finds the journal whole.
    const unwritten = this.pausedBecause === null ? [...(this.writing ? [this.writing] : []), ...this.pending] : [];
    ScreenStore.pendingTotal -= this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (unwritten.length > 0) {
      try {
        const bytes = Buffer.concat(unwritten);
        writeSync(this.journalFd, bytes, 0, bytes.length, this.writtenSeq - this.journalBaseSeq);
      } catch (error) {
        this.options.storage?.reportWriteFailure(error, `screen journal of slot ${this.label}`);
      }
    }
    this.settleWritten();
    if (this.writing) this.closeAfterWrite = true;
    else closeSync(this.journalFd);
  }

  /** Folds the journal into a snapshot (so the next agent starts fast), then closes. */
  async closeGracefully(): Promise<void> {
    if (this.closed) return;
    await this.compact().catch(() => undefined);
    this.close();
  }

  /** Closes and deletes the files (the slot is gone). */
  destroy(): void {
    this.close();
    rmSync(this.options.dir, { recursive: true, force: true });
  }
}
