import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ScreenStore } from '../../../../remote-agent/src/modules/terminal/screen-store.js';

// A headless xterm mirror at its scrollback cap costs ~18 MB (120 columns × 10,000 lines): R7's agent kept one per
// console that printed bursts, compacted by nobody's request, for a minute after each compaction.
const work = mkdtempSync(join(tmpdir(), 'sd-screen-memory-'));
const stores: ScreenStore[] = [];

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

function openStore(name: string): ScreenStore {
  const store = ScreenStore.open({
    dir: join(work, name),
    scrollbackLines: 1000,
    compactBytes: 1 << 20,
    maxReplayBytes: 1 << 20,
    initialSize: { cols: 120, rows: 40 },
  });
  stores.push(store);
  return store;
}

const burst = (n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => `burst line ${i} ${'x'.repeat(60)}\r\n`).join(''));

describe('ScreenStore mirrors', () => {
  it('holds no screen mirror after compacting a console that nobody opened, however many compactions', async () => {
    const consoles = Array.from({ length: 8 }, (_, i) => openStore(`console-${i}`));
    for (let round = 0; round < 3; round++) {
      for (const store of consoles) store.appendOutput(burst(2000));
      await Promise.all(consoles.map((store) => store.compact()));
      expect(consoles.filter((store) => store.holdsMirror)).toHaveLength(0);
      for (const store of consoles) expect(store.journalBytes).toBe(0);
    }
    // The screen is still there, rebuilt from the snapshot when someone opens it.
    const snapshot = await consoles[0]!.snapshot();
    expect(snapshot.data).toContain('burst line 1999');
  });

  it('keeps the mirror a viewer just asked for while it can catch up, and drops it once a compaction overtook it', async () => {
    const store = openStore('viewed');
    store.appendOutput(burst(500));
    await store.snapshot();
    expect(store.holdsMirror).toBe(true);
    // The next viewer opens from the same mirror, caught up with what came since.
    store.appendOutput(Buffer.from('after the first viewer\r\n'));
    expect((await store.snapshot()).data).toContain('after the first viewer');
    expect(store.holdsMirror).toBe(true);

    // The compaction renders in the renderer's process; the mirror it overtook is of no more use and is freed.
    store.appendOutput(burst(500));
    await store.compact();
    expect(store.holdsMirror).toBe(false);
    expect(store.journalBytes).toBe(0);
    const next = await store.snapshot();
    expect(next.data).toContain('after the first viewer');
    expect(next.data).toContain('burst line 499');
    store.close();
    expect(store.holdsMirror).toBe(false);
  });
});

afterAll(() => rmSync(work, { recursive: true, force: true }));
