import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SerializeAddon as SerializeAddonType } from '@xterm/addon-serialize';
import type { Terminal as TerminalType } from '@xterm/headless';

const require = createRequire(import.meta.url);
const { Terminal } = require('@xterm/headless') as { Terminal: typeof TerminalType };
const { SerializeAddon } = require('@xterm/addon-serialize') as { SerializeAddon: typeof SerializeAddonType };

/**
 * A slot screen's files, as both the agent's event loop and the screen renderer's process read them: a
 * snapshot (the serialized screen and scrollback at some point) and a journal of what happened since.
 *
 * Journal records: [kind u8][length u32 LE][payload]; kind 0 = output bytes, 1 = resize (cols u16, rows u16).
 */
export const RECORD_OUTPUT = 0;
export const RECORD_RESIZE = 1;
export const HEADER_SIZE = 5;
const READ_CHUNK = 1 << 20;

export interface ScreenSize {
  cols: number;
  rows: number;
}

export interface SnapshotFile {
  version: 1;
  generation: number;
  cols: number;
  rows: number;
  data: string;
}

export function readSnapshotFile(path: string): SnapshotFile | null {
  if (!existsSync(path)) return null;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as SnapshotFile;
    if (parsed.version !== 1 || typeof parsed.data !== 'string') return null;
    return parsed;
  } catch {
    return null;
  }
}

/** Reads `[from, to)` of a journal (fewer bytes at its end). */
export type JournalReader = (from: number, to: number) => Buffer;

export function journalReader(fd: number): JournalReader {
  return (from, to) => {
    const out = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    while (done < out.length) {
      const read = readSync(fd, out, done, out.length - done, from + done);
      if (read <= 0) break;
      done += read;
    }
    return out.subarray(0, done);
  };
}

/** Walks whole records between two journal offsets, reading the file in large chunks. */
export function forEachRecord(
  read: JournalReader,
  from: number,
  to: number,
  visit: (kind: number, payload: Buffer, start: number) => void,
): void {
  let offset = from;
  let carry: Buffer = Buffer.alloc(0);
  let carryStart = from;
  while (offset < to) {
    const chunk = read(offset, Math.min(to, offset + READ_CHUNK));
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

/** A headless terminal mirroring a screen, and its serializer. */
export interface Mirror {
  term: TerminalType;
  serializer: SerializeAddonType;
}

/** A mirror of `size` holding what `snapshot` holds (an empty screen without one). */
export async function buildMirror(
  snapshot: SnapshotFile | null,
  size: ScreenSize,
  scrollbackLines: number,
): Promise<Mirror> {
  const term = new Terminal({
    cols: snapshot?.cols ?? size.cols,
    rows: snapshot?.rows ?? size.rows,
    scrollback: scrollbackLines,
    allowProposedApi: true,
  });
  const serializer = new SerializeAddon();
  term.loadAddon(serializer);
  if (snapshot) await new Promise<void>((resolve) => term.write(snapshot.data, resolve));
  return { term, serializer };
}

/**
 * Plays journal records `[from, to)` into a mirror: resizes in order, and at most `maxReplayBytes` of the newest
 * output (a longer burst is entered at a line boundary inside the part kept).
 */
export async function replayJournal(
  term: TerminalType,
  read: JournalReader,
  from: number,
  to: number,
  maxReplayBytes: number,
): Promise<void> {
  const skipBefore = to - from > maxReplayBytes ? to - maxReplayBytes : from;
  let pendingWrites = false;
  const settle = async (): Promise<void> => {
    if (!pendingWrites) return;
    await new Promise<void>((resolve) => term.write('', resolve));
    pendingWrites = false;
  };
  const operations: Array<() => Promise<void> | void> = [];
  forEachRecord(read, from, to, (kind, payload, start) => {
    if (kind === RECORD_RESIZE) {
      const cols = payload.readUInt16LE(0);
      const rows = payload.readUInt16LE(2);
      operations.push(async () => {
        await settle();
        term.resize(cols, rows);
      });
      return;
    }
    const end = start + HEADER_SIZE + payload.length;
    if (end <= skipBefore) return;
    let bytes = payload;
    if (start < skipBefore) {
      const cut = skipBefore - (start + HEADER_SIZE);
      const newline = payload.indexOf(0x0a, Math.max(0, cut));
      if (newline < 0) return;
      bytes = payload.subarray(newline + 1);
    }
    operations.push(() => {
      pendingWrites = true;
      term.write(bytes);
    });
  });
  for (const operation of operations) await operation();
  await settle();
}

/** What the renderer is asked for: the screen a snapshot file plus part of a journal file make. */
export interface RenderJob {
  snapshotPath: string;
  journalPath: string;
  /** Journal offsets to replay (the start of a record, and the end of one). */
  from: number;
  to: number;
  /** The size of an empty screen (no snapshot yet). */
  initialSize: ScreenSize;
  scrollbackLines: number;
  maxReplayBytes: number;
}

export interface RenderedScreen {
  data: string;
  cols: number;
  rows: number;
}

/** Builds the screen a job names and serializes it with its scrollback. Blocks its thread while it parses. */
export async function renderScreen(job: RenderJob): Promise<RenderedScreen> {
  const mirror = await buildMirror(readSnapshotFile(job.snapshotPath), job.initialSize, job.scrollbackLines);
  const fd = openSync(job.journalPath, 'r');
  try {
    await replayJournal(mirror.term, journalReader(fd), job.from, job.to, job.maxReplayBytes);
    return {
      data: mirror.serializer.serialize({ scrollback: job.scrollbackLines }),
      cols: mirror.term.cols,
      rows: mirror.term.rows,
    };
  } finally {
    closeSync(fd);
    mirror.term.dispose();
  }
}
