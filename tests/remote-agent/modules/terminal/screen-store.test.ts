import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xterm from '@xterm/headless';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ScreenStore,
  type ScreenSize,
  type ScreenSnapshot,
  type ScreenStoreOptions,
} from '../../../../remote-agent/src/modules/terminal/screen-store.js';

const { Terminal } = xterm;
type HeadlessTerminal = InstanceType<typeof Terminal>;

interface Screen {
  /** Every line of the buffer, scrollback first, without trailing blank lines. */
  lines: string[];
  /** The visible rows. */
  visible: string[];
  cursor: [number, number];
}

function read(term: HeadlessTerminal): Screen {
  const buffer = term.buffer.active;
  const all: string[] = [];
  for (let i = 0; i < buffer.length; i++) all.push(buffer.getLine(i)!.translateToString(true));
  const visible = all.slice(buffer.baseY, buffer.baseY + term.rows);
  while (all.length > 0 && all[all.length - 1] === '') all.pop();
  return { lines: all, visible, cursor: [buffer.cursorX, buffer.cursorY] };
}

/** What a client shows after writing the snapshot into a fresh terminal of the snapshot's size. */
async function render(snapshot: ScreenSnapshot): Promise<Screen> {
  const term = new Terminal({ ...snapshot.size, scrollback: 100_000, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(snapshot.data, resolve));
  const screen = read(term);
  term.dispose();
  return screen;
}

type Step = { output: string | Buffer } | { resize: ScreenSize };

/** What a terminal that saw the same output and resizes live shows: the reference a replay must match. */
async function live(initial: ScreenSize, steps: Step[], scrollback = 100_000): Promise<Screen> {
  const term = new Terminal({ ...initial, scrollback, allowProposedApi: true });
  for (const step of steps) {
    if ('resize' in step) term.resize(step.resize.cols, step.resize.rows);
    else await new Promise<void>((resolve) => term.write(step.output, resolve));
  }
  const screen = read(term);
  term.dispose();
  return screen;
}

function record(store: ScreenStore, steps: Step[]): void {
  for (const step of steps) {
    if ('resize' in step) store.appendResize(step.resize);
    else store.appendOutput(typeof step.output === 'string' ? Buffer.from(step.output) : step.output);
  }
}

let dir: string;
const stores: ScreenStore[] = [];

beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'sd-screen-')), 'screen');
});

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  rmSync(join(dir, '..'), { recursive: true, force: true });
});

function openStore(options: Partial<ScreenStoreOptions> = {}): ScreenStore {
  const store = ScreenStore.open({
    dir,
    scrollbackLines: 1000,
    compactBytes: 1 << 20,
    maxReplayBytes: 1 << 20,
    initialSize: { cols: 80, rows: 24 },
    ...options,
  });
  stores.push(store);
  return store;
}

const PROMPT = '\x1b[1;32muser@host\x1b[0m:\x1b[1;34m~\x1b[0m$ ';
const SESSION: Step[] = [
  { output: `${PROMPT}ls\r\n` },
  { output: 'file-a  file-b  \x1b[31mbroken-link\x1b[0m\r\n' },
  { output: `${PROMPT}echo héllo ✓ 🙂\r\nhéllo ✓ 🙂\r\n${PROMPT}` },
];

describe('ScreenStore snapshots', () => {
  it('rebuilds the screen from recorded output, colours and cursor included', async () => {
    const store = openStore();
    record(store, SESSION);
    const snapshot = await store.snapshot();
    expect(snapshot.size).toEqual({ cols: 80, rows: 24 });
    expect(snapshot.seq).toBe(store.seq);

    const screen = await render(snapshot);
    expect(screen.lines).toEqual([
      'user@host:~$ ls',
      'file-a  file-b  broken-link',
      'user@host:~$ echo héllo ✓ 🙂',
      'héllo ✓ 🙂',
      'user@host:~$ ',
    ]);
    expect(screen).toEqual(await live({ cols: 80, rows: 24 }, SESSION));

    const term = new Terminal({ ...snapshot.size, allowProposedApi: true });
    await new Promise<void>((resolve) => term.write(snapshot.data, resolve));
    const user = term.buffer.active.getLine(0)!.getCell(0)!;
    expect(user.isFgPalette() && user.getFgColor()).toBe(2);
    expect(user.isBold()).toBeTruthy();
    term.dispose();
  });

  it('joins a UTF-8 character that arrived split across two reads', async () => {
    const store = openStore();
    const text = Buffer.from('naïve ✓\r\n');
    store.appendOutput(text.subarray(0, 4));
    store.appendOutput(text.subarray(4, 8));
    store.appendOutput(text.subarray(8));
    expect((await render(await store.snapshot())).lines).toEqual(['naïve ✓']);
  });

  it('includes output recorded after an earlier snapshot', async () => {
    const store = openStore();
    store.appendOutput(Buffer.from('first\r\n'));
    await store.snapshot();
    store.appendOutput(Buffer.from('second\r\n'));
    expect((await render(await store.snapshot())).lines).toEqual(['first', 'second']);
  });

  it('applies size changes in order with the output: text after a resize wraps at the new width', async () => {
    const steps: Step[] = [
      { output: `${'a'.repeat(25)}\r\n` },
      { resize: { cols: 10, rows: 6 } },
      { output: `${'b'.repeat(15)}\r\n` },
      { resize: { cols: 30, rows: 6 } },
      { output: 'c'.repeat(25) },
    ];
    const store = openStore({ initialSize: { cols: 30, rows: 6 } });
    record(store, steps);
    expect(store.currentSize).toEqual({ cols: 30, rows: 6 });
    const snapshot = await store.snapshot();
    expect(snapshot.size).toEqual({ cols: 30, rows: 6 });
    const screen = await render(snapshot);
    expect(screen).toEqual(await live({ cols: 30, rows: 6 }, steps));
    // Written at 30 columns, the c's fit on one line.
    expect(screen.lines[screen.lines.length - 1]).toBe('c'.repeat(25));

    const narrow = openStore({ initialSize: { cols: 30, rows: 6 }, dir: join(dir, '..', 'narrow') });
    record(narrow, steps.slice(0, 3));
    expect((await render(await narrow.snapshot())).lines.slice(-2)).toEqual(['b'.repeat(10), 'b'.repeat(5)]);
  });

  it('keeps at most scrollbackLines of history, the newest lines included', async () => {
    const store = openStore({ scrollbackLines: 100, initialSize: { cols: 40, rows: 10 } });
    for (let i = 0; i < 500; i++) store.appendOutput(Buffer.from(`line ${i}\r\n`));
    const screen = await render(await store.snapshot());
    expect(screen.lines.length).toBeLessThanOrEqual(110);
    expect(screen.lines[screen.lines.length - 1]).toBe('line 499');
    expect(screen.lines).not.toContain('line 100');
  });
});

describe('ScreenStore across agent restarts', () => {
  it('replays the same screen from the files an earlier store left behind', async () => {
    const first = openStore();
    record(first, [...SESSION, { resize: { cols: 60, rows: 20 } }, { output: 'after resize\r\n' }]);
    const before = await render(await first.snapshot());
    const seq = first.seq;
    first.close();

    const second = openStore();
    expect(second.currentSize).toEqual({ cols: 60, rows: 20 });
    expect(second.seq).toBe(seq);
    const snapshot = await second.snapshot();
    expect(snapshot.size).toEqual({ cols: 60, rows: 20 });
    expect(await render(snapshot)).toEqual(before);

    // Recording goes on where it stopped.
    second.appendOutput(Buffer.from('next agent\r\n'));
    expect((await render(await second.snapshot())).lines.slice(-2)).toEqual([
      'user@host:~$ after resize',
      'next agent',
    ]);
  });

  it('says the screen had an earlier session only when something was printed on it (the mark of a new session)', async () => {
    const fresh = openStore();
    expect(fresh.openedWithHistory).toBe(false);
    fresh.close();
    // Opened and closed without output: its journal holds a size record only.
    const reopened = openStore();
    expect(reopened.openedWithHistory).toBe(false);
    reopened.appendOutput(Buffer.from('printed\r\n'));
    reopened.close();
    expect(openStore().openedWithHistory).toBe(true);
    // Also when what was printed is in the snapshot and the journal is empty.
    const compacted = stores.at(-1)!;
    await compacted.compact();
    compacted.close();
    expect(openStore().openedWithHistory).toBe(true);
  });

  it('drops a record cut short by a killed agent without losing the output before it', async () => {
    const first = openStore();
    record(first, SESSION);
    const before = await render(await first.snapshot());
    first.close();
    const journal = join(dir, 'screen.journal.0');
    const whole = statSync(journal).size;
    // The header promises 100 bytes of output; only 6 made it to disk.
    appendFileSync(journal, Buffer.from([0, 100, 0, 0, 0, ...Buffer.from('partia')]));

    const second = openStore();
    expect(statSync(journal).size).toBe(whole);
    expect(await render(await second.snapshot())).toEqual(before);
    second.appendOutput(Buffer.from('\r\nstill recording\r\n'));
    second.close();

    // What was recorded after the repair survives the next restart too.
    const third = openStore();
    const screen = await render(await third.snapshot());
    expect(screen.lines.slice(0, before.lines.length)).toEqual(before.lines);
    expect(screen.lines[screen.lines.length - 1]).toBe('still recording');
  });

  it('drops a torn record header', async () => {
    const first = openStore();
    first.appendOutput(Buffer.from('kept\r\n'));
    first.close();
    appendFileSync(join(dir, 'screen.journal.0'), Buffer.from([0, 1, 0]));
    const second = openStore();
    second.appendOutput(Buffer.from('appended\r\n'));
    expect((await render(await second.snapshot())).lines).toEqual(['kept', 'appended']);
  });

  it('folds the journal into screen.snapshot.json on compact() and reopens to the same screen', async () => {
    const first = openStore();
    record(first, [...SESSION, { resize: { cols: 70, rows: 20 } }, { output: 'x'.repeat(5000) }]);
    const before = await render(await first.snapshot());
    expect(first.journalBytes).toBeGreaterThan(5000);

    await first.compact();
    expect(existsSync(join(dir, 'screen.snapshot.json'))).toBe(true);
    expect(existsSync(join(dir, 'screen.journal.0'))).toBe(false);
    expect(statSync(join(dir, 'screen.journal.1')).size).toBe(0);
    expect(first.journalBytes).toBe(0);
    expect(await render(await first.snapshot())).toEqual(before);

    first.appendOutput(Buffer.from('\r\nafter compaction\r\n'));
    const afterCompaction = await render(await first.snapshot());
    first.close();

    const second = openStore();
    expect(second.currentSize).toEqual({ cols: 70, rows: 20 });
    expect(await render(await second.snapshot())).toEqual(afterCompaction);
    expect(readdirSync(dir).sort()).toEqual(['screen.journal.1', 'screen.snapshot.json']);
  });

  it('compacts by itself about a second after the journal passes compactBytes', async () => {
    const store = openStore({ compactBytes: 4096 });
    for (let i = 0; i < 100; i++) store.appendOutput(Buffer.from(`output line ${i} ${'-'.repeat(40)}\r\n`));
    const before = await render(await store.snapshot());
    expect(existsSync(join(dir, 'screen.snapshot.json'))).toBe(false);
    // Nothing else compacts it here: wait for the snapshot file to appear instead of a fixed span.
    await vi.waitFor(() => expect(existsSync(join(dir, 'screen.snapshot.json'))).toBe(true), { timeout: 10_000 });
    expect(store.journalBytes).toBeLessThan(4096);
    expect(await render(await store.snapshot())).toEqual(before);
  });

  it('compacts on a graceful close so the next agent starts from the snapshot', async () => {
    const first = openStore();
    record(first, SESSION);
    const before = await render(await first.snapshot());
    await first.closeGracefully();
    expect(existsSync(join(dir, 'screen.snapshot.json'))).toBe(true);
    expect(await render(await openStore().snapshot())).toEqual(before);
  });

  it('replays output written before a resize at the size it was written at, whatever size it is reopened with', async () => {
    // The agent reopens a slot's store with the slot's newest size (it saves every resize): the journal must say
    // at which size its first output was written.
    const steps: Step[] = [
      { output: 'top\r\n\x1b[3;100Hfar right' },
      { resize: { cols: 80, rows: 10 } },
      { output: '\r\nbottom' },
    ];
    const first = openStore({ initialSize: { cols: 120, rows: 10 } });
    record(first, steps);
    const before = await render(await first.snapshot());
    expect(before).toEqual(await live({ cols: 120, rows: 10 }, steps));
    first.close();

    const second = openStore({ initialSize: first.currentSize });
    expect(await render(await second.snapshot())).toEqual(before);
  });
});

describe('ScreenStore replay limit', () => {
  it('replays only the newest maxReplayBytes of a long burst, starting at a line boundary', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${String(i).padStart(4, '0')}\r\n`);
    const oneRecord = openStore({ maxReplayBytes: 2000, initialSize: { cols: 40, rows: 10 } });
    oneRecord.appendOutput(Buffer.from(lines.join('')));
    const many = openStore({ maxReplayBytes: 2000, initialSize: { cols: 40, rows: 10 }, dir: join(dir, '..', 'many') });
    record(
      many,
      lines.map((output) => ({ output })),
    );
    const reference = await live({ cols: 40, rows: 10 }, [{ output: lines.join('') }]);

    for (const store of [oneRecord, many]) {
      const screen = await render(await store.snapshot());
      expect(screen.visible).toEqual(reference.visible);
      expect(screen.cursor).toEqual(reference.cursor);
      expect(screen.lines[screen.lines.length - 1]).toBe('line 0999');
      expect(screen.lines).not.toContain('line 0000');
      expect(screen.lines.length).toBeLessThan(200);
      // Every line kept is whole: the cut happened at a newline.
      for (const line of screen.lines) expect(line).toMatch(/^line \d{4}$/);
    }
  });
});

describe('ScreenStore.recentText', () => {
  it('gives the last lines as plain text, saying a repeated line once', () => {
    const store = openStore();
    store.appendOutput(Buffer.from('\x1b]0;my title\x07starting\r\n\x1b[31merror: port in use\x1b[0m\r\n'));
    store.appendOutput(Buffer.from('error: port in use\r\nerror: port in use\r\n'));
    store.appendOutput(Buffer.from('\x1b[2m[slotdeck] new session started\x1b[0m\r\n\x1b[?25hgiving up\r\n'));
    expect(store.recentText()).toBe('starting | error: port in use | giving up');
    expect(store.recentText(2)).toBe('error: port in use | giving up');
  });

  it('keeps only recent output, so an old line does not come back after a flood', () => {
    const store = openStore();
    store.appendOutput(Buffer.from('ancient\r\n'));
    for (let i = 0; i < 1000; i++) store.appendOutput(Buffer.from(`line ${i}\r\n`));
    expect(store.recentText(1000)).not.toContain('ancient');
    expect(store.recentText(1)).toBe('line 999');
  });

  it('is empty before any output', () => {
    expect(openStore().recentText()).toBe('');
  });
});

describe('ScreenStore files', () => {
  it('keeps the screen private to the agent user and removes it all on destroy()', async () => {
    const store = openStore();
    record(store, SESSION);
    await store.compact();
    store.appendOutput(Buffer.from('more'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(dir)) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    store.destroy();
    expect(existsSync(dir)).toBe(false);
  });

  it('ignores output recorded after close()', async () => {
    const first = openStore();
    first.appendOutput(Buffer.from('before\r\n'));
    first.close();
    first.appendOutput(Buffer.from('after\r\n'));
    expect((await render(await openStore().snapshot())).lines).toEqual(['before']);
  });
});
