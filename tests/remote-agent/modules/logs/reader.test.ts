/**
 * The log viewer's reader on a large rotated log (30 MB in three files): pages come from the end, from a cursor or
 * from a time while reading a small part of the files (counted through the reader's file access), and cursors keep
 * working across both kinds of rotation.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsAccess, LogReader, type FileAccess } from '../../../../remote-agent/src/modules/logs/reader.js';
import { copyTruncate, RotatingFile } from '../../../../remote-agent/src/modules/logs/rotation.js';

const START = Date.parse('2026-11-30T00:00:00Z');
const FILE_BYTES = 10 * 1024 * 1024;
let dir: string;
let base: string;
let lines = 0;
let counted = 0;
const counting: FileAccess = {
  size: (path) => fsAccess.size(path),
  read(path, position, length) {
    const bytes = fsAccess.read(path, position, length);
    counted += bytes.length;
    return bytes;
  },
};

/** Line n of the agent's log: one per 100 ms, every 50th a warning, every 1000th an error naming "needle-<n>". */
function line(n: number): string {
  const level = n % 1000 === 0 ? 50 : n % 50 === 0 ? 40 : 30;
  const msg = n % 1000 === 0 ? `needle-${n} upstream failed` : `request served n=${n}`;
  return `${JSON.stringify({ level, time: START + n * 100, service: 'slotdeck-agent', msg, seq: n, pad: 'x'.repeat(40) })}\n`;
}

function writeFileOf(path: string): void {
  const parts: string[] = [];
  let size = 0;
  while (size < FILE_BYTES) {
    const text = line(lines++);
    parts.push(text);
    size += text.length;
  }
  writeFileSync(path, parts.join(''));
}

const seq = (text: string): number => Number(/"seq":(\d+)/.exec(text)![1]);
const reader = (): LogReader => new LogReader(base, 'json', { access: counting });
function page(request: Parameters<LogReader['page']>[1]) {
  counted = 0;
  const result = reader().page('agent', request);
  return { ...result, read: counted };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-log-reader-'));
  base = join(dir, 'agent.log');
  writeFileOf(`${base}.2`);
  writeFileOf(`${base}.1`);
  writeFileOf(base);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a 30 MB log in three files', () => {
  it('serves the newest 200 lines reading well under 1 % of the log', () => {
    const newest = page({ limit: 200 });
    expect(newest.lines).toHaveLength(200);
    expect(newest.lines.map((l) => Number(/n=(\d+)|needle-(\d+)/.exec(l.text)!.slice(1).find(Boolean))).at(-1)).toBe(
      lines - 1,
    );
    expect(newest.lines[0]!.time).toBe(new Date(START + (lines - 200) * 100).toISOString());
    expect(newest.atEnd).toBe(true);
    expect(newest.read).toBeLessThan(300 * 1024);
  });

  it('pages backwards from a cursor without a gap or a repeat, across the rotated files', () => {
    const seen: number[] = [];
    // 3 pages of 1000 back from about where the live file starts: they cross into agent.log.1
    const liveStart = lines - Math.round(lines / 3);
    const jump = page({ at: new Date(START + liveStart * 100).toISOString(), limit: 1 });
    let cursor = jump.lines[0]!.cursor;
    for (let i = 0; i < 3; i += 1) {
      const older = page({ before: cursor, limit: 1000 });
      expect(older.read).toBeLessThan(1024 * 1024);
      seen.unshift(...older.lines.map((l) => seq(l.text)));
      cursor = older.before!;
    }
    const first = seen[0]!;
    expect(seen).toEqual(Array.from({ length: 3000 }, (_, i) => first + i));
    expect(seen.at(-1)).toBe(liveStart - 1);
  });

  it('jumps to a time by searching timestamps: the first line at or after it, reading little', () => {
    const target = 123_456; // in agent.log.2 or .1, far from any end
    const at = new Date(START + target * 100 - 50).toISOString();
    const found = page({ at, limit: 5 });
    expect(found.lines.map((l) => seq(l.text))).toEqual([target, target + 1, target + 2, target + 3, target + 4]);
    expect(found.read).toBeLessThan(2 * 1024 * 1024);
    const previous = page({ before: found.before!, limit: 1 });
    expect(seq(previous.lines[0]!.text)).toBe(target - 1);
  });

  it('filters by level and text, and a filter that matches little stops at its scan budget with a cursor', () => {
    const errors = page({ level: 'error', limit: 3 });
    expect(errors.lines.every((l) => l.level === 'error' && l.text.includes('needle-'))).toBe(true);
    expect(errors.lines).toHaveLength(3);
    const warnings = page({ level: 'warn', limit: 10 });
    expect(warnings.lines.every((l) => l.level === 'warn' || l.level === 'error')).toBe(true);
    const needle = page({ q: 'NEEDLE-0 ', limit: 10 });
    // needle-0 is the log's first line, 30 MB back: one page reads at most its budget and says where it stopped
    expect(needle.lines).toHaveLength(0);
    expect(needle.read).toBeLessThan(4 * 1024 * 1024 + 200 * 1024);
    expect(needle.before).not.toBeNull();
  });

  it('refuses a malformed cursor (400) and one whose file was rotated away (410)', () => {
    expect(() => page({ before: 'nonsense', limit: 1 })).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => page({ before: `${'0'.repeat(16)}.256.10`, limit: 1 })).toThrow(
      expect.objectContaining({ code: 'LOG_CURSOR_INVALID', status: 410 }),
    );
  });
});

describe('following a log across rotations', () => {
  it('serves only complete new lines after a cursor, through a rename and a copy-and-truncate', async () => {
    const followDir = mkdtempSync(join(tmpdir(), 'sd-log-follow-'));
    const live = join(followDir, 'agent.log');
    const limits = { maxBytes: 64 * 1024, maxFiles: 3, maxAgeDays: 30 };
    const file = new RotatingFile(live, limits);
    for (let n = 0; n < 100; n += 1) file.write(line(n));
    let cursor = new LogReader(live, 'json').page('agent', { limit: 10 }).after;
    const followed: number[] = [];
    const follow = (): void => {
      const next = new LogReader(live, 'json').page('agent', { after: cursor, limit: 1000 });
      followed.push(...next.lines.map((l) => seq(l.text)));
      cursor = next.after;
    };
    // the agent's own file: renamed when full (64 KiB is ~ 500 lines)
    for (let n = 100; n < 700; n += 1) {
      file.write(line(n));
      if (n % 97 === 0) follow();
    }
    follow();
    file.close();
    expect(readFileSync(`${live}.1`, 'utf8').length).toBeGreaterThan(0);
    // PM2's kind: copied and truncated under a writer with O_APPEND
    await copyTruncate(live, limits);
    appendFileSync(live, line(700) + line(701));
    appendFileSync(live, line(702).slice(0, 20)); // a line still being written
    follow();
    expect(followed).toEqual(Array.from({ length: 602 }, (_, i) => 100 + i));
    appendFileSync(live, line(702).slice(20));
    follow();
    expect(followed.at(-1)).toBe(702);
    rmSync(followDir, { recursive: true, force: true });
  });
});
