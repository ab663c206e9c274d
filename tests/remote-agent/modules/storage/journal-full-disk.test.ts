/**
 * A slot's screen journal on a disk that fills up: writes fail with ENOSPC (an injected failing write; the rest of
 * the files are real). Output must keep flowing without an exception, the monitor is told, and recording resumes
 * from a fresh snapshot once there is room again.
 */
import { mkdtempSync, rmSync, write } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xterm from '@xterm/headless';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_PENDING_JOURNAL_BYTES,
  ScreenStore,
  type JournalFs,
  type ScreenSnapshot,
} from '../../../../remote-agent/src/modules/terminal/screen-store.js';
import { StorageMonitor } from '../../../../remote-agent/src/ops/storage.js';

const { Terminal } = xterm;

async function screenText(snapshot: ScreenSnapshot): Promise<string[]> {
  const term = new Terminal({ ...snapshot.size, scrollback: 1000, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(snapshot.data, resolve));
  const lines: string[] = [];
  for (let i = 0; i < term.buffer.active.length; i++)
    lines.push(term.buffer.active.getLine(i)!.translateToString(true));
  term.dispose();
  return lines.filter((line) => line !== '');
}

let dir: string;
const stores: ScreenStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-journal-'));
});

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(fs: JournalFs, storage?: StorageMonitor): ScreenStore {
  const store = ScreenStore.open({
    dir: join(dir, 'screen'),
    scrollbackLines: 1000,
    compactBytes: 1 << 20,
    maxReplayBytes: 1 << 20,
    initialSize: { cols: 80, rows: 24 },
    label: 'slot1',
    fs,
    ...(storage ? { storage } : {}),
  });
  stores.push(store);
  return store;
}

/** Real writes, or ENOSPC while `full` is set. */
function fillableFs(): JournalFs & { full: boolean } {
  const fs = {
    full: false,
    write(fd: number, buffer: Buffer, position: number, done: (error: Error | null, written: number) => void): void {
      if (fs.full) {
        setImmediate(() =>
          done(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 0),
        );
        return;
      }
      write(fd, buffer, 0, buffer.length, position, (error, written) => done(error, written ?? 0));
    },
  };
  return fs;
}

describe('the screen journal on a full disk', () => {
  it('keeps taking output without throwing, tells the monitor, and resumes from a fresh snapshot once there is room', async () => {
    const fs = fillableFs();
    let probeWorks = false;
    const storage = new StorageMonitor({
      dir,
      reserveBytes: 0,
      fs: {
        statfs: () => Promise.resolve({ bavail: 1000, blocks: 2000, bsize: 4096 }),
        probeWrite: () =>
          probeWorks ? Promise.resolve() : Promise.reject(Object.assign(new Error('x'), { code: 'ENOSPC' })),
      },
    });
    const store = open(fs, storage);
    let restarted = 0;
    store.onJournalRestarted = () => (restarted += 1);

    store.appendOutput(Buffer.from('before\r\n'));
    expect(await screenText(await store.snapshot())).toEqual(['before']);

    fs.full = true;
    expect(() => store.appendOutput(Buffer.from('unrecorded\r\n'))).not.toThrow();
    await expect.poll(() => store.journaling).toBe(false);
    expect(storage.state()).toMatchObject({ full: true });
    expect(storage.state().error).toMatch(/screen journal of slot slot1: ENOSPC/);
    // Output goes on arriving (viewers get it); nothing throws, and the screen can still be read.
    for (let i = 0; i < 100; i++) expect(() => store.appendOutput(Buffer.from(`more ${i}\r\n`))).not.toThrow();
    expect(await screenText(await store.snapshot())).toEqual(['before']);

    // Room again: the monitor notices and the journal starts afresh.
    fs.full = false;
    probeWorks = true;
    await storage.check();
    expect(storage.full).toBe(false);
    await expect.poll(() => store.journaling).toBe(true);
    expect(restarted).toBe(1);
    store.appendOutput(Buffer.from('after\r\n'));
    const resumed = await screenText(await store.snapshot());
    expect(resumed).toEqual(['[slotdeck] output was not recorded for a while (the disk was full)', 'after']);

    // What is recorded after the pause survives the agent: a new store on the same files shows it.
    store.close();
    const next = open(fillableFs());
    expect(await screenText(await next.snapshot())).toEqual(resumed);
  });

  it('drops what a stalled disk holds back past its bound instead of growing, and records again afterwards', async () => {
    let release: (() => void) | null = null;
    const stalled: JournalFs = {
      write(fd, buffer, position, done) {
        // The first write never finishes until released: a disk that stopped answering.
        release = () => write(fd, buffer, 0, buffer.length, position, (error, written) => done(error, written ?? 0));
      },
    };
    const store = open(stalled);
    store.appendOutput(Buffer.from('first\r\n'));
    await expect.poll(() => release !== null).toBe(true);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i <= MAX_PENDING_JOURNAL_BYTES / chunk.length; i++) store.appendOutput(chunk);
    expect(store.journaling).toBe(false);

    // The disk answers again: the write under way finishes, later ones go through at once.
    const finish = release!;
    stalled.write = (fd, buffer, position, done) =>
      write(fd, buffer, 0, buffer.length, position, (error, written) => done(error, written ?? 0));
    finish();
    await expect.poll(() => store.journaling).toBe(true);
    store.appendOutput(Buffer.from('\r\nrecorded again\r\n'));
    const lines = await screenText(await store.snapshot());
    expect(lines.at(-1)).toBe('recorded again');
  });
});
