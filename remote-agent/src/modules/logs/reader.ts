import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { AgentErrorCode, type LogLevel, type LogLine, type LogPage } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { lineMatches, lineTime, parseLine, type LineFilter, type LogStream } from './lines.js';

/** How the reader reaches files: injected so a test can count the bytes a page reads. */
export interface FileAccess {
  /** The file's size, or null when it does not exist. */
  size(path: string): number | null;
  /** Up to `length` bytes from `position`. */
  read(path: string, position: number, length: number): Buffer;
}

export const fsAccess: FileAccess = {
  size(path) {
    try {
      const stat = statSync(path);
      return stat.isFile() ? stat.size : null;
    } catch {
      return null;
    }
  },
  read(path, position, length) {
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(length);
      const read = readSync(fd, buffer, 0, length, position);
      return buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  },
};

/** The most rotated files a chain is looked at for (rotation keeps far fewer). */
const MAX_CHAIN = 100;
/** The bytes of a file's start its fingerprint covers: a rename or a copy keeps them, new content does not. */
const FINGERPRINT_BYTES = 256;
const NEWLINE = 0x0a;

/** The files of a rotated log, oldest first: `<base>.N` … `<base>.1`, then `<base>` (the live one). */
export function logChain(base: string, access: FileAccess = fsAccess): Array<{ path: string; size: number }> {
  const rotated: Array<{ path: string; size: number }> = [];
  for (let k = 1; k <= MAX_CHAIN; k += 1) {
    const size = access.size(`${base}.${k}`);
    if (size === null) break;
    rotated.unshift({ path: `${base}.${k}`, size });
  }
  return [...rotated, { path: base, size: access.size(base) ?? 0 }];
}

interface ChainFile {
  path: string;
  size: number;
}
interface Position {
  file: number;
  offset: number;
}

export interface ReaderOptions {
  access?: FileAccess;
  /** Bytes read at a time. */
  chunkBytes?: number;
  /** A page stops after reading this much, however few lines matched (the client continues from its cursor). */
  scanBudgetBytes?: number;
  /** A longer line is cut into pieces of this size (a program that never writes a newline cannot stall a page). */
  maxLineBytes?: number;
}

export interface PageRequest {
  before?: string | undefined;
  after?: string | undefined;
  at?: string | undefined;
  limit: number;
  level?: LogLevel | undefined;
  q?: string | undefined;
}

interface Collected {
  raw: string;
  start: Position;
}

const CURSOR = /^([0-9a-f]{16})\.(\d{1,3})\.(\d{1,15})$/;

/**
 * Pages of one log's lines, read from the end, before or after a cursor, or from a time, never loading a whole file:
 * each page reads chunks until it has its lines or its scan budget is spent.
 */
export class LogReader {
  private readonly access: FileAccess;
  private readonly chunk: number;
  private readonly budget: number;
  private readonly maxLine: number;
  private files: ChainFile[] = [];
  private readonly fingerprints = new Map<string, string>();
  private scanned = 0;

  constructor(
    private readonly base: string,
    private readonly stream: LogStream,
    options: ReaderOptions = {},
  ) {
    this.access = options.access ?? fsAccess;
    this.chunk = options.chunkBytes ?? 64 * 1024;
    this.budget = options.scanBudgetBytes ?? 4 * 1024 * 1024;
    this.maxLine = options.maxLineBytes ?? 256 * 1024;
  }

  page(source: LogPage['source'], request: PageRequest): LogPage {
    this.files = logChain(this.base, this.access);
    this.fingerprints.clear();
    this.scanned = 0;
    const filter: LineFilter = { level: request.level, text: request.q?.toLowerCase() };
    const end = this.liveEnd();
    if (request.after !== undefined || request.at !== undefined) {
      const from = request.after !== undefined ? this.decode(request.after) : this.seekTime(Date.parse(request.at!));
      const result = this.forward(from, end, request.limit, filter);
      return {
        source,
        lines: result.lines.map((line) => this.toLine(line)),
        before: this.encode(from),
        after: this.encode(result.stop),
        atEnd: result.atEnd,
        scannedBytes: this.scanned,
      };
    }
    const until = request.before !== undefined ? this.decode(request.before) : end;
    const result = this.backward(until, request.limit, filter);
    return {
      source,
      lines: result.lines.reverse().map((line) => this.toLine(line)),
      before: result.reachedStart ? null : this.encode(result.stop),
      after: this.encode(until),
      atEnd: request.before === undefined,
      scannedBytes: this.scanned,
    };
  }

  private toLine(line: Collected): LogLine {
    const parsed = parseLine(line.raw, this.stream);
    return {
      cursor: this.encode(line.start),
      time: parsed.time === null ? null : new Date(parsed.time).toISOString(),
      level: parsed.level,
      text: parsed.text,
    };
  }

  private read(file: number, position: number, length: number): Buffer {
    const bytes = this.access.read(this.files[file]!.path, position, length);
    this.scanned += bytes.length;
    return bytes;
  }

  /** The live file's end after its last complete line: a line still being written is not served yet. */
  private liveEnd(): Position {
    const last = this.files.length - 1;
    const size = this.files[last]!.size;
    let frontier = size;
    while (frontier > 0) {
      const from = Math.max(0, frontier - this.chunk);
      const bytes = this.read(last, from, frontier - from);
      const newline = bytes.lastIndexOf(NEWLINE);
      if (newline >= 0) return { file: last, offset: from + newline + 1 };
      if (size - from > this.maxLine) return { file: last, offset: size };
      frontier = from;
    }
    return { file: last, offset: 0 };
  }

  private fingerprint(file: number, length: number): string {
    const key = `${file}:${length}`;
    let print = this.fingerprints.get(key);
    if (print === undefined) {
      const head = length > 0 ? this.read(file, 0, length) : Buffer.alloc(0);
      print = createHash('sha256').update(head).digest('hex').slice(0, 16);
      this.fingerprints.set(key, print);
    }
    return print;
  }

  private encode(position: Position): string {
    const length = Math.min(this.files[position.file]!.size, FINGERPRINT_BYTES);
    return `${this.fingerprint(position.file, length)}.${length}.${position.offset}`;
  }

  private decode(cursor: string): Position {
    const match = CURSOR.exec(cursor);
    const length = match ? Number(match[2]) : NaN;
    const offset = match ? Number(match[3]) : NaN;
    if (!match || length > FINGERPRINT_BYTES || !Number.isSafeInteger(offset)) {
      throw new AppError(
        AgentErrorCode.LOG_CURSOR_INVALID,
        400,
        'That log position is not one this agent gave out. Load the newest lines again (leave out before/after).',
      );
    }
    // A fingerprint of no bytes names the live file while it was empty: its lines (if any) start at 0.
    if (length === 0) {
      if (offset === 0) return { file: this.files.length - 1, offset: 0 };
    } else {
      for (let file = 0; file < this.files.length; file += 1) {
        const { size } = this.files[file]!;
        if (size >= length && offset <= size && this.fingerprint(file, length) === match[1]) return { file, offset };
      }
    }
    throw new AppError(
      AgentErrorCode.LOG_CURSOR_INVALID,
      410,
      'Those lines are no longer kept (the log was rotated past them). Load the newest lines again, or jump to a time.',
    );
  }

  /** Lines ending at or before `until`, newest first, until `limit` matched or the budget is spent. */
  private backward(
    until: Position,
    limit: number,
    filter: LineFilter,
  ): { lines: Collected[]; stop: Position; reachedStart: boolean } {
    const lines: Collected[] = [];
    let file = until.file;
    let frontier = until.offset;
    // Bytes [frontier, frontier + pending.length) not yet split into lines; they end where the last line began.
    let pending: Buffer = Buffer.alloc(0);
    let stop: Position = { ...until };
    // The region read first in each file ends where a line ends (a cursor, or the file's end): its newline is not a line.
    let fresh = true;
    const take = (raw: Buffer, start: number): boolean => {
      stop = { file, offset: start };
      if (raw.length === 0) return false;
      const text = raw.toString('utf8');
      if (!lineMatches(text, this.stream, filter)) return false;
      lines.push({ raw: text, start: { file, offset: start } });
      return lines.length >= limit;
    };
    for (;;) {
      if (frontier === 0) {
        if (take(pending, 0)) return { lines, stop, reachedStart: false };
        pending = Buffer.alloc(0);
        if (file === 0) return { lines, stop, reachedStart: true };
        file -= 1;
        frontier = this.files[file]!.size;
        stop = { file, offset: frontier };
        fresh = true;
        if (this.scanned >= this.budget) return { lines, stop, reachedStart: false };
        continue;
      }
      if (this.scanned >= this.budget) return { lines, stop, reachedStart: false };
      const from = Math.max(0, frontier - this.chunk);
      const buffer = Buffer.concat([this.read(file, from, frontier - from), pending]);
      let lineEnd = buffer.length;
      if (fresh && buffer[lineEnd - 1] === NEWLINE) lineEnd -= 1;
      fresh = false;
      for (let i = lineEnd > 0 ? buffer.lastIndexOf(NEWLINE, lineEnd - 1) : -1; i >= 0;) {
        if (take(buffer.subarray(i + 1, lineEnd), from + i + 1)) return { lines, stop, reachedStart: false };
        lineEnd = i;
        i = i > 0 ? buffer.lastIndexOf(NEWLINE, i - 1) : -1;
      }
      pending = buffer.subarray(0, lineEnd);
      frontier = from;
      if (pending.length > this.maxLine) {
        if (take(pending, from)) return { lines, stop, reachedStart: false };
        pending = Buffer.alloc(0);
      }
    }
  }

  /** Lines starting at or after `from`, oldest first, up to the live end. */
  private forward(
    from: Position,
    end: Position,
    limit: number,
    filter: LineFilter,
  ): { lines: Collected[]; stop: Position; atEnd: boolean } {
    const lines: Collected[] = [];
    let file = from.file;
    let lineStart = from.offset;
    for (;;) {
      const last = file === this.files.length - 1;
      const limitOffset = last ? end.offset : this.files[file]!.size;
      let carry: Buffer = Buffer.alloc(0);
      let position = lineStart;
      while (position < limitOffset) {
        if (this.scanned >= this.budget) return { lines, stop: { file, offset: lineStart }, atEnd: false };
        const length = Math.min(this.chunk, limitOffset - position);
        const bytes = this.read(file, position, length);
        if (bytes.length === 0) break;
        const buffer = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes;
        const base = position - carry.length;
        let start = 0;
        for (let i = buffer.indexOf(NEWLINE); i >= 0; i = buffer.indexOf(NEWLINE, start)) {
          const raw = buffer.subarray(start, i);
          start = i + 1;
          lineStart = base + start;
          if (raw.length === 0) continue;
          const text = raw.toString('utf8');
          if (!lineMatches(text, this.stream, filter)) continue;
          lines.push({ raw: text, start: { file, offset: base + (i - raw.length) } });
          if (lines.length >= limit) return { lines, stop: { file, offset: lineStart }, atEnd: false };
        }
        carry = buffer.subarray(start);
        position += bytes.length;
        if (carry.length > this.maxLine) {
          const text = carry.toString('utf8');
          if (lineMatches(text, this.stream, filter)) lines.push({ raw: text, start: { file, offset: lineStart } });
          lineStart = position;
          carry = Buffer.alloc(0);
          if (lines.length >= limit) return { lines, stop: { file, offset: lineStart }, atEnd: false };
        }
      }
      if (last) return { lines, stop: { file, offset: lineStart }, atEnd: true };
      // A rotated file's last line may lack its newline: it is complete all the same.
      if (carry.length > 0) {
        const text = carry.toString('utf8');
        if (lineMatches(text, this.stream, filter)) {
          lines.push({ raw: text, start: { file, offset: lineStart } });
          if (lines.length >= limit) return { lines, stop: { file: file + 1, offset: 0 }, atEnd: false };
        }
      }
      file += 1;
      lineStart = 0;
    }
  }

  /** The first line with a time at or after `offset` in `file` (reading a few chunks at most), or null. */
  private timeAfter(file: number, offset: number): { time: number; start: number } | null {
    const size = this.files[file]!.size;
    let position = offset;
    let carry: Buffer = Buffer.alloc(0);
    let skipping = offset > 0; // mid-file: the first piece is the rest of a line that began earlier
    for (let reads = 0; reads < 4 && position < size; reads += 1) {
      const bytes = this.read(file, position, Math.min(this.chunk, size - position));
      const buffer = Buffer.concat([carry, bytes]);
      const base = position - carry.length;
      let start = 0;
      for (let i = buffer.indexOf(NEWLINE); i >= 0; i = buffer.indexOf(NEWLINE, start)) {
        const raw = buffer.subarray(start, i).toString('utf8');
        const lineStart = base + start;
        start = i + 1;
        if (skipping) {
          skipping = false;
          continue;
        }
        const time = lineTime(raw, this.stream);
        if (time !== null) return { time, start: lineStart };
      }
      carry = buffer.subarray(start);
      position += bytes.length;
    }
    return null;
  }

  /** Where the first line at or after `time` starts: the file by its first line, then a binary search in it. */
  private seekTime(time: number): Position {
    let file = 0;
    for (let candidate = this.files.length - 1; candidate >= 0; candidate -= 1) {
      const first = this.timeAfter(candidate, 0);
      if (first && first.time <= time) {
        file = candidate;
        break;
      }
    }
    // The smallest offset whose next timed line is at or after `time` (or has none after it): the answer is near.
    let low = 0;
    let high = this.files[file]!.size;
    while (high - low > this.chunk) {
      const middle = Math.floor((low + high) / 2);
      const next = this.timeAfter(file, middle);
      if (next === null || next.time >= time) high = middle;
      else low = middle;
    }
    // Then line by line from there (a chunk or two).
    const size = this.files[file]!.size;
    let carry: Buffer = Buffer.alloc(0);
    let skipping = low > 0;
    for (let position = low; position < size;) {
      const bytes = this.read(file, position, Math.min(this.chunk, size - position));
      const buffer = Buffer.concat([carry, bytes]);
      const base = position - carry.length;
      let start = 0;
      for (let i = buffer.indexOf(NEWLINE); i >= 0; i = buffer.indexOf(NEWLINE, start)) {
        const lineStart = base + start;
        const raw = buffer.subarray(start, i).toString('utf8');
        start = i + 1;
        if (skipping) {
          skipping = false;
          continue;
        }
        const lineAt = lineTime(raw, this.stream);
        if (lineAt !== null && lineAt >= time) return { file, offset: lineStart };
      }
      carry = buffer.subarray(start);
      position += bytes.length;
      if (carry.length > this.maxLine) carry = Buffer.alloc(0);
    }
    return file === this.files.length - 1 ? this.liveEnd() : { file: file + 1, offset: 0 };
  }
}
