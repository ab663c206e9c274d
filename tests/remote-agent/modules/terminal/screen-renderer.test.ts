import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ScreenRenderer } from '../../../../remote-agent/src/modules/terminal/screen-renderer.js';
import { ScreenStore } from '../../../../remote-agent/src/modules/terminal/screen-store.js';
import { until } from '../../../integration/helpers/until.js';

// Compaction renders a screen from its files in a child process (off the agent's event loop), which ends when idle.
const work = mkdtempSync(join(tmpdir(), 'sd-renderer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const lines = (from: number, to: number): Buffer =>
  Buffer.from(Array.from({ length: to - from }, (_, i) => `line ${from + i}\r\n`).join(''));

function openStore(name: string, renderer: ScreenRenderer): ScreenStore {
  return ScreenStore.open({
    dir: join(work, name),
    scrollbackLines: 1000,
    compactBytes: 1 << 20,
    maxReplayBytes: 1 << 20,
    initialSize: { cols: 80, rows: 24 },
    renderer,
  });
}

describe('ScreenRenderer', () => {
  it('renders compactions in a process that ends once idle; the screen reopens whole from the files', async () => {
    const renderer = new ScreenRenderer({ idleMs: 200 });
    const store = openStore('compacted', renderer);
    store.appendOutput(lines(0, 300));
    await store.compact();
    expect(store.journalBytes).toBe(0);
    const pid = renderer.pid!;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('screen-render-process');
    // It carries nothing of the agent's environment: a PATH, and the channel Node sets up for it.
    const environment = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    expect(environment.map((entry) => entry.slice(0, entry.indexOf('='))).sort()).toEqual([
      'NODE_CHANNEL_FD',
      'NODE_CHANNEL_SERIALIZATION_MODE',
      'PATH',
    ]);
    store.appendOutput(lines(300, 600));
    await store.compact();
    store.close();
    await until(
      'the renderer process to end',
      () => existsSync(`/proc/${pid}`),
      (alive) => !alive,
    );
    expect(renderer.running).toBe(false);

    // A new agent opening the same files sees every line: the snapshot the renderer wrote, then the journal.
    const reopened = openStore('compacted', renderer);
    reopened.appendOutput(lines(600, 610));
    const screen = await reopened.snapshot();
    for (const line of ['line 0\r', 'line 299', 'line 300', 'line 609']) expect(screen.data).toContain(line);
    reopened.close();
    renderer.close();
  });

  it('renders here when its process cannot start, and keeps the screen', async () => {
    const renderer = new ScreenRenderer({ script: join(work, 'no-such-renderer.js') });
    const store = openStore('fallback', renderer);
    store.appendOutput(lines(0, 50));
    await store.compact();
    expect(store.journalBytes).toBe(0);
    const screen = await store.snapshot();
    expect(screen.data).toContain('line 49');
    store.close();
    renderer.close();
  });
});
