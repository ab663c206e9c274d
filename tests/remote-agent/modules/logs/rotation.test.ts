/** Log rotation: the agent's own file (rename) and the files PM2 holds open (copy and truncate), by size and age. */
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogRotator, pm2CapturedOutput, RotatingFile } from '../../../../remote-agent/src/modules/logs/rotation.js';

const DAY = 24 * 60 * 60 * 1000;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-log-rotation-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const jsonLine = (n: number, time: number): string => `${JSON.stringify({ level: 30, time, msg: `line ${n}` })}\n`;
const numbers = (text: string): number[] => [...text.matchAll(/line (\d+)/g)].map((m) => Number(m[1]));

describe("the agent's own log", () => {
  it('keeps at most maxFiles files of at most maxBytes each, the newest lines whole and in order', () => {
    const path = join(dir, 'logs', 'agent.log');
    const file = new RotatingFile(path, { maxBytes: 4096, maxFiles: 3, maxAgeDays: 30 });
    for (let n = 0; n < 1000; n += 1) file.write(jsonLine(n, Date.now()));
    file.close();
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual(['agent.log', 'agent.log.1', 'agent.log.2']);
    const kept = ['agent.log.2', 'agent.log.1', 'agent.log'].map((name) =>
      readFileSync(join(dir, 'logs', name), 'utf8'),
    );
    for (const text of kept) expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4096);
    const all = numbers(kept.join(''));
    expect(all.at(-1)).toBe(999);
    expect(all).toEqual(all.map((_, i) => all[0]! + i));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('starts a new file once its first line is older than maxAgeDays, and deletes rotated files that old', () => {
    let now = Date.parse('2026-11-01T00:00:00Z');
    const path = join(dir, 'agent.log');
    const file = new RotatingFile(path, { maxBytes: 1024 * 1024, maxFiles: 5, maxAgeDays: 7 }, () => now);
    file.write(jsonLine(1, now));
    now += 8 * DAY;
    file.rotateIfDue();
    file.write(jsonLine(2, now));
    expect(numbers(readFileSync(`${path}.1`, 'utf8'))).toEqual([1]);
    expect(numbers(readFileSync(path, 'utf8'))).toEqual([2]);
    utimesSync(`${path}.1`, new Date(now - 8 * DAY), new Date(now - 8 * DAY));
    file.rotateIfDue();
    expect(existsSync(`${path}.1`)).toBe(false);
    file.close();
  });

  it('drops lines it cannot write instead of failing, and says how many once it can write again', () => {
    const blocker = join(dir, 'logs');
    writeFileSync(blocker, 'a file where the folder should be');
    const file = new RotatingFile(join(blocker, 'agent.log'), { maxBytes: 65536, maxFiles: 2, maxAgeDays: 30 });
    expect(() => {
      file.write(jsonLine(1, Date.now()));
      file.write(jsonLine(2, Date.now()));
    }).not.toThrow();
    rmSync(blocker);
    file.write(jsonLine(3, Date.now()));
    file.close();
    const text = readFileSync(join(blocker, 'agent.log'), 'utf8');
    expect(text).toContain('2 log lines were lost');
    expect(numbers(text)).toEqual([3]);
  });
});

describe('the files PM2 writes', () => {
  it("rotates a live slot's log by copy and truncate, and removes rotated logs of deleted slots", async () => {
    const live = join(dir, 'slot-aaaaaaaaaa.out.log');
    const body = '2026-12-01T10:00:00: some output\n'.repeat(100);
    writeFileSync(live, body);
    writeFileSync(join(dir, 'slot-bbbbbbbbbb.err.log.1'), 'of a deleted slot\n');
    const captured = join(dir, 'agent-under-pm2.log');
    writeFileSync(captured, '2026-12-01T10:00:00: {"level":30}\n'.repeat(300));
    const rotator = new LogRotator({
      limits: { maxBytes: 3300, maxFiles: 3, maxAgeDays: 30 },
      logDir: dir,
      slotExists: (id) => id === 'aaaaaaaaaa',
      extraFiles: () => [{ path: captured, stream: 'out' }],
    });
    await rotator.check();
    expect(readFileSync(`${live}.1`, 'utf8')).toBe(body);
    expect(statSync(live).size).toBe(0);
    expect(existsSync(join(dir, 'slot-bbbbbbbbbb.err.log.1'))).toBe(false);
    expect(statSync(captured).size).toBe(0);
    expect(statSync(`${captured}.1`).size).toBeGreaterThan(3000);
    // A small file is left as it is.
    writeFileSync(live, 'small\n');
    await rotator.check();
    expect(readFileSync(live, 'utf8')).toBe('small\n');
  });

  it('keeps only the last maxBytes of an oversized log, from a line start, and says how much it dropped', async () => {
    const live = join(dir, 'slot-aaaaaaaaaa.out.log');
    const lines = Array.from({ length: 40_000 }, (_, n) => `2026-12-01T10:00:00: line ${n}\n`).join('');
    writeFileSync(live, lines);
    const maxBytes = 64 * 1024;
    const rotator = new LogRotator({
      limits: { maxBytes, maxFiles: 3, maxAgeDays: 30 },
      logDir: dir,
      slotExists: () => true,
    });
    await rotator.check();
    const copy = readFileSync(`${live}.1`, 'utf8');
    const [note, ...kept] = copy.split('\n').filter(Boolean);
    const dropped = Number(/ (\d+) bytes of older output were dropped/.exec(note!)?.[1]);
    expect(note).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}: \[slotdeck-agent\]/);
    expect(dropped + Buffer.byteLength(kept.join('\n')) + 1).toBe(Buffer.byteLength(lines));
    expect(Buffer.byteLength(copy)).toBeLessThanOrEqual(maxBytes + Buffer.byteLength(note!) + 1);
    expect(kept[0]).toMatch(/^2026-12-01T10:00:00: line \d+$/);
    expect(kept.at(-1)).toBe('2026-12-01T10:00:00: line 39999');
    expect(statSync(live).size).toBe(0);
  });

  it('rotates a large log without holding up the event loop', async () => {
    const live = join(dir, 'slot-aaaaaaaaaa.err.log');
    const block = '2026-12-01T10:00:00: burst\n'.repeat(40_000);
    writeFileSync(live, block.repeat(8));
    const rotator = new LogRotator({
      limits: { maxBytes: 4 * 1024 * 1024, maxFiles: 2, maxAgeDays: 30 },
      logDir: dir,
      slotExists: () => true,
    });
    // Timers that come due while the rotation runs: none at all when it copies synchronously.
    let ticks = 0;
    let done = false;
    const tick = (): void => {
      ticks += 1;
      if (!done) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    const before = ticks;
    await rotator.check();
    done = true;
    expect(ticks - before).toBeGreaterThanOrEqual(5);
    expect(statSync(`${live}.1`).size).toBeLessThanOrEqual(4 * 1024 * 1024 + 512);
  });

  it("finds the agent's own stdout and stderr files when the release's PM2 runs it", () => {
    expect(
      pm2CapturedOutput({ pm_out_log_path: '/srv/slotdeck/logs/agent.log', pm_err_log_path: '/dev/null' }),
    ).toEqual([{ path: '/srv/slotdeck/logs/agent.log', stream: 'out' }]);
    expect(pm2CapturedOutput({})).toEqual([]);
  });
});
