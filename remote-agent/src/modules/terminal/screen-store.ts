import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { SerializeAddon as SerializeAddonType } from '@xterm/addon-serialize';
import type { Terminal as TerminalType } from '@xterm/headless';

const require = createRequire(import.meta.url);
const { Terminal } = require('@xterm/headless') as { Terminal: typeof TerminalType };
const { SerializeAddon } = require('@xterm/addon-serialize') as { SerializeAddon: typeof SerializeAddonType };

/**
 * A slot's screen, kept on disk so that it outlives the agent: a snapshot (the serialized screen and scrollback at
 * some point) plus a journal of everything that happened since (output bytes and size changes). Nothing is parsed
 * while output flows; an @xterm/headless mirror is built from snapshot + journal only when someone needs the
 * screen (a client attaching, a compaction), and dropped again when idle.
 *
 * Journal records: [kind u8][length u32 LE][payload]; kind 0 = output bytes, 1 = resize (cols u16, rows u16).
 */
const RECORD_OUTPUT = 0;
const RECORD_RESIZE = 1;
const HEADER_SIZE = 5;
const READ_CHUNK = 1 << 20;
/** Bytes of recent output kept in memory for failure messages. */
const RECENT_OUTPUT_BYTES = 8192;
const MIRROR_IDLE_MS = 60_000;
/** CSI, OSC, DCS/PM/APC and two-byte escape sequences, and control characters other than tab and newline. */
/* eslint-disable no-control-regex */
const ESCAPES_AND_CONTROLS =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;
/* eslint-enable no-control-regex */

export interface ScreenSize {
  cols: number;
  rows: number;
}

export interface ScreenSnapshot {
  /** Bytes that rebuild the screen and scrollback in a fresh terminal of `size`. */
  data: string;
  size: ScreenSize;
  /** Sequence number of the last journal byte included. */
  seq: number;
}

export interface ScreenStoreOptions {
  dir: string;
  scrollbackLines: number;
  /** Journal size that triggers folding it into a new snapshot. */
  compactBytes: number;
  /** At most this much journal is parsed to rebuild a screen; older output of a longer burst is skipped. */
  maxReplayBytes: number;
  initialSize: ScreenSize;
}

interface SnapshotFile {
  version: 1;
  generation: number;
  cols: number;
  rows: number;
  data: string;
}

interface Mirror {
  term: TerminalType;
  serializer: SerializeAddonType;
  /** Sequence number up to which the mirror has consumed the journal. */
  seq: number;
}

export class ScreenStore {
  private generation = 0;
  private journalFd = -1;
  /** Sequence number (bytes appended during this process's life) at which the current journal file begins. */
  private journalBaseSeq = 0;
  private seqNow = 0;
  private size: ScreenSize;
  private mirror: Mirror | null = null;
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
    this.journalFd = openSync(this.journalPath(this.generation), 'a+', 0o600);
    const length = this.trimTornRecord();
    this.journalBaseSeq = 0;
    this.seqNow = length;
    // The newest size is the last resize in the journal, if any.
    this.forEachRecord(0, length, (kind, payload) => {
      if (kind === RECORD_RESIZE) this.size = { cols: payload.readUInt16LE(0), rows: payload.readUInt16LE(2) };
    });
    // A new journal starts by saying the size its output is written at, so that a replay never depends on the
    // size the store happens to be opened with later.
    if (length === 0) this.appendResize(this.size);
  }

  private readSnapshot(): SnapshotFile | null {
    if (!existsSync(this.snapshotPath)) return null;
    try {
      const parsed = JSON.parse(readFileSync(this.snapshotPath, 'utf8')) as SnapshotFile;
      if (parsed.version !== 1 || typeof parsed.data !== 'string') return null;
      return parsed;
    } catch {
      return null;
    }
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
      this.journalFd = openSync(this.journalPath(this.generation), 'a+', 0o600);
    }
    return offset;
  }

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
    const payload = Buffer.alloc(4);
    payload.writeUInt16LE(size.cols, 0);
    payload.writeUInt16LE(size.rows, 2);
    return this.appendRecord(RECORD_RESIZE, payload);
  }

  private appendRecord(kind: number, payload: Buffer): number {
    if (this.closed) return this.seqNow;
    const record = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
    record[0] = kind;
    record.writeUInt32LE(payload.length, 1);
    payload.copy(record, HEADER_SIZE);
    // One write per record: a killed agent leaves at most one torn record, which recovery drops.
    writeSync(this.journalFd, record);
    this.seqNow += record.length;
    if (this.journalBytes >= this.options.compactBytes) this.scheduleCompaction();
    return this.seqNow;
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
      const mirror = await this.catchUp(this.seqNow);
      return {
        data: mirror.serializer.serialize({ scrollback: this.options.scrollbackLines }),
        size: { cols: mirror.term.cols, rows: mirror.term.rows },
        seq: mirror.seq,
      };
    });
  }

  /** Folds the journal into a new snapshot, bounding the disk used and the work of the next rebuild. */
  compact(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed || this.journalBytes === 0) return;
      const mirror = await this.catchUp(this.seqNow);
      if (this.closed) return;
      const data = mirror.serializer.serialize({ scrollback: this.options.scrollbackLines });
      // Everything below runs without awaiting, so no output slips in between the snapshot and the new journal.
      const tail = this.readJournal(mirror.seq - this.journalBaseSeq, this.seqNow - this.journalBaseSeq);
      const next = this.generation + 1;
      const snapshot: SnapshotFile = {
        version: 1,
        generation: next,
        cols: mirror.term.cols,
        rows: mirror.term.rows,
        data,
      };
      writeFileSync(this.journalPath(next), tail, { mode: 0o600 });
      const temporary = `${this.snapshotPath}.tmp`;
      writeFileSync(temporary, JSON.stringify(snapshot), { mode: 0o600 });
      renameSync(temporary, this.snapshotPath);
      closeSync(this.journalFd);
      rmSync(this.journalPath(this.generation), { force: true });
      this.generation = next;
      this.journalFd = openSync(this.journalPath(next), 'a+', 0o600);
      this.journalBaseSeq = mirror.seq;
    });
  }

  private scheduleCompaction(): void {
    if (this.compactTimer || this.closed) return;
    // Let a burst settle for a moment; compaction parses output, which is work the burst does not need.
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      void this.compact().catch(() => undefined);
    }, 1000);
    this.compactTimer.unref();
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.work.then(task, task);
    this.work = run.catch(() => undefined);
    return run;
  }

  private async buildMirror(): Promise<Mirror> {
    const snapshot = this.readSnapshot();
    const size = snapshot ? { cols: snapshot.cols, rows: snapshot.rows } : this.options.initialSize;
    const term = new Terminal({
      cols: size.cols,
      rows: size.rows,
      scrollback: this.options.scrollbackLines,
      allowProposedApi: true,
    });
    const serializer = new SerializeAddon();
    term.loadAddon(serializer);
    if (snapshot) await new Promise<void>((resolve) => term.write(snapshot.data, resolve));
    return { term, serializer, seq: this.journalBaseSeq };
  }

  /** Brings the mirror (built when missing) up to `target`, replaying at most maxReplayBytes of output. */
  private async catchUp(target: number): Promise<Mirror> {
    const mirror = (this.mirror ??= await this.buildMirror());
    this.touchMirror();
    const from = mirror.seq - this.journalBaseSeq;
    const to = target - this.journalBaseSeq;
    const skipBefore = to - from > this.options.maxReplayBytes ? to - this.options.maxReplayBytes : from;
    let pendingWrites = false;
    const settle = async (): Promise<void> => {
      if (!pendingWrites) return;
      await new Promise<void>((resolve) => mirror.term.write('', resolve));
      pendingWrites = false;
    };
    const operations: Array<() => Promise<void> | void> = [];
    this.forEachRecord(from, to, (kind, payload, start) => {
      if (kind === RECORD_RESIZE) {
        const cols = payload.readUInt16LE(0);
        const rows = payload.readUInt16LE(2);
        operations.push(async () => {
          await settle();
          mirror.term.resize(cols, rows);
        });
        return;
      }
      const end = start + HEADER_SIZE + payload.length;
      if (end <= skipBefore) return;
      let bytes = payload;
      if (start < skipBefore) {
        // A burst longer than we replay: start from a line boundary inside the part we keep.
        const cut = skipBefore - (start + HEADER_SIZE);
        const newline = payload.indexOf(0x0a, Math.max(0, cut));
        if (newline < 0) return;
        bytes = payload.subarray(newline + 1);
      }
      operations.push(() => {
        pendingWrites = true;
        mirror.term.write(bytes);
      });
    });
    for (const operation of operations) await operation();
    await settle();
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
    this.mirror?.term.dispose();
    this.mirror = null;
  }

  private readJournal(from: number, to: number): Buffer {
    const out = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    while (done < out.length) {
      const read = readSync(this.journalFd, out, done, out.length - done, from + done);
      if (read <= 0) break;
      done += read;
    }
    return out.subarray(0, done);
  }

  /** Walks whole records between two journal offsets, reading the file in large chunks. */
  private forEachRecord(from: number, to: number, visit: (kind: number, payload: Buffer, start: number) => void): void {
    let offset = from;
    let carry: Buffer = Buffer.alloc(0);
    let carryStart = from;
    while (offset < to) {
      const chunk = this.readJournal(offset, Math.min(to, offset + READ_CHUNK));
      if (chunk.length === 0) break;
      offset += chunk.length;
      const buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let position = 0;
      while (position + HEADER_SIZE <= buffer.length) {
        const length = buffer.readUInt32LE(position + 1);
        if (position + HEADER_SIZE + length > buffer.length) break;
        visit(
          buffer[position]!,
          buffer.subarray(position + HEADER_SIZE, position + HEADER_SIZE + length),
          carryStart + position,
        );
        position += HEADER_SIZE + length;
      }
      carry = buffer.subarray(position);
      carryStart += position;
    }
  }

  /** Stops recording; pending compaction is skipped and the mirror freed. Files stay for the next agent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.compactTimer) clearTimeout(this.compactTimer);
    if (this.mirrorIdleTimer) clearTimeout(this.mirrorIdleTimer);
    this.disposeMirror();
    closeSync(this.journalFd);
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
