import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RenderJob } from '../../../../remote-agent/src/modules/terminal/journal.js';
import { ScreenRenderer } from '../../../../remote-agent/src/modules/terminal/screen-renderer.js';
import { ScreenStore } from '../../../../remote-agent/src/modules/terminal/screen-store.js';
import { until } from '../../../integration/helpers/until.js';

// Compaction renders a screen from its files in a child process (off the agent's event loop), which ends when idle.
const work = mkdtempSync(join(tmpdir(), 'sd-renderer-'));
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const step of cleanup.splice(0)) step();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const lines = (from: number, to: number): Buffer =>
  Buffer.from(Array.from({ length: to - from }, (_, i) => `line ${from + i}\r\n`).join(''));

function openStore(
  name: string,
  renderer: Pick<ScreenRenderer, 'render'>,
  inThreadScreenBytes: number = 1 << 20,
): ScreenStore {
  const store = ScreenStore.open({
    dir: join(work, name),
    scrollbackLines: 1000,
    compactBytes: 1 << 20,
    maxReplayBytes: 1 << 20,
    initialSize: { cols: 80, rows: 24 },
    renderer,
    inThreadScreenBytes,
  });
  cleanup.push(() => store.close());
  return store;
}

function newRenderer(options: ConstructorParameters<typeof ScreenRenderer>[0] = {}): ScreenRenderer {
  const renderer = new ScreenRenderer(options);
  cleanup.push(() => renderer.close());
  return renderer;
}

const signal = (pid: number, name: NodeJS.Signals): void => {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
};

/** A renderer that counts the jobs it is given. */
function counting(renderer: ScreenRenderer): Pick<ScreenRenderer, 'render'> & { jobs: number } {
  const counted = {
    jobs: 0,
    render: (job: RenderJob) => {
      counted.jobs++;
      return renderer.render(job);
    },
  };
  return counted;
}

/** Kills a stopped renderer once a job has reached it: the job dies with it. */
async function killOnceSentAJob(renderer: ScreenRenderer, pid: number): Promise<void> {
  await until(
    'the job to be sent',
    () => renderer.pendingJobs,
    (jobs) => jobs === 1,
  );
  signal(pid, 'SIGKILL');
}

describe('ScreenRenderer', () => {
  it('renders compactions in a process that ends once idle; the screen reopens whole from the files', async () => {
    const renderer = newRenderer({ idleMs: 1000 });
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
      'the renderer to end when idle',
      () => renderer.running,
      (running) => !running,
    );
    await until(
      'its process to be gone',
      () => existsSync(`/proc/${pid}`),
      (alive) => !alive,
    );

    // A new agent opening the same files sees every line: the snapshot the renderer wrote, then the journal.
    const reopened = openStore('compacted', renderer);
    reopened.appendOutput(lines(600, 610));
    const screen = await reopened.snapshot();
    for (const line of ['line 0\r', 'line 299', 'line 300', 'line 609']) expect(screen.data).toContain(line);
  });

  it('renders here when its process cannot start, and keeps the screen', async () => {
    const renderer = newRenderer({ script: join(work, 'no-such-renderer.js') });
    const store = openStore('fallback', renderer);
    store.appendOutput(lines(0, 50));
    await store.compact();
    expect(store.journalBytes).toBe(0);
    const screen = await store.snapshot();
    expect(screen.data).toContain('line 49');
  });

  it('kills a renderer that stops answering, keeps the journal, and compacts it later with a fresh one', async () => {
    const renderer = newRenderer({ jobTimeoutMs: 1500 });
    const first = openStore('before-stuck', renderer);
    first.appendOutput(lines(0, 10));
    await first.compact();
    const stuck = renderer.pid!;
    signal(stuck, 'SIGSTOP');
    cleanup.push(() => signal(stuck, 'SIGKILL'));

    const store = openStore('stuck', renderer);
    store.appendOutput(lines(0, 100));
    const journal = store.journalBytes;
    await expect(store.compact()).rejects.toThrow(/did not answer/);
    // Nothing was lost: the journal is whole, the screen answers, and the next compaction runs in a new process.
    expect(store.journalBytes).toBe(journal);
    expect((await store.snapshot()).data).toContain('line 99');
    await until(
      'the stuck renderer to be killed',
      () => existsSync(`/proc/${stuck}`),
      (alive) => !alive,
    );
    await store.compact();
    expect(store.journalBytes).toBe(0);
    expect(renderer.pid).not.toBe(stuck);
  });

  it('fails the jobs of a renderer that dies, rather than parsing them again on the agent’s thread', async () => {
    const renderer = newRenderer();
    const first = openStore('before-death', renderer);
    first.appendOutput(lines(0, 10));
    await first.compact();
    const dying = renderer.pid!;
    signal(dying, 'SIGSTOP');
    const store = openStore('death', renderer);
    store.appendOutput(lines(0, 100));
    const compaction = store.compact();
    await killOnceSentAJob(renderer, dying);
    await expect(compaction).rejects.toThrow(/ended \(SIGKILL\)/);
    expect(store.journalBytes).toBeGreaterThan(0);
    expect((await store.snapshot()).data).toContain('line 99');
  });

  it('renders a large screen for a viewer in its process; later viewers get it with the output since', async () => {
    const renderer = newRenderer();
    const counted = counting(renderer);
    const store = openStore('large-viewed', counted, 2000);
    store.appendOutput(lines(0, 400));
    const first = await store.snapshot();
    expect(first.data).toContain('line 399');
    expect(first.size).toEqual({ cols: 80, rows: 24 });
    expect(first.seq).toBe(store.seq);
    expect(counted.jobs).toBe(1);
    expect(renderer.running).toBe(true);
    // No terminal of this screen in the agent's memory: its serializer would block the event loop.
    expect(store.holdsMirror).toBe(false);
    expect(await store.snapshot()).toEqual(first);
    expect(counted.jobs).toBe(1);

    // Output since: the rendering plus that output, as a viewer attached before it would have received it.
    store.appendOutput(lines(400, 410));
    const next = await store.snapshot();
    expect(next.data).toBe(first.data + lines(400, 410).toString());
    expect(next.seq).toBe(store.seq);
    expect(counted.jobs).toBe(1);

    // A resize reflows the screen: a new rendering, at the new size.
    store.appendResize({ cols: 100, rows: 30 });
    const resized = await store.snapshot();
    expect(resized.size).toEqual({ cols: 100, rows: 30 });
    expect(resized.data).toContain('line 409');
    expect(counted.jobs).toBe(2);

    // So does more output than is worth appending (256 KB).
    store.appendOutput(lines(410, 30_000));
    const long = await store.snapshot();
    expect(long.data).toContain('line 29999');
    expect(long.data.length).toBeLessThan(lines(0, 30_000).length);
    expect(counted.jobs).toBe(3);
  });

  it('answers a viewer of a small screen from its own mirror, without the renderer', async () => {
    let jobs = 0;
    const store = openStore('small-viewed', { render: () => Promise.reject(new Error(`job ${++jobs}`)) }, 1 << 20);
    store.appendOutput(lines(0, 20));
    expect((await store.snapshot()).data).toContain('line 19');
    expect(store.holdsMirror).toBe(true);
    expect(jobs).toBe(0);
  });

  it('tries a fresh renderer when the one rendering a viewer’s screen dies, and shows the whole screen', async () => {
    const renderer = newRenderer();
    const store = openStore('large-death', renderer, 2000);
    store.appendOutput(lines(0, 10));
    await store.compact();
    const dying = renderer.pid!;
    signal(dying, 'SIGSTOP');
    store.appendOutput(lines(10, 400));
    const viewer = store.snapshot();
    await killOnceSentAJob(renderer, dying);
    const screen = await viewer;
    expect(screen.data).toContain('line 399');
    expect(screen.data).not.toContain('could not be shown');
    expect(renderer.pid).not.toBe(dying);
  });

  it('tells viewers the earlier output cannot be shown when rendering fails twice (stand-in renderer that crashes), without trying again at once', async () => {
    // A stand-in renderer process that starts, says it is ready, and exits at its first job: as one would on a screen
    // whose output crashes it.
    const script = join(work, 'crashing-renderer.mjs');
    writeFileSync(script, 'process.on("message", () => process.exit(70));\nprocess.send({ ready: true });\n');
    const renderer = newRenderer({ script });
    const counted = counting(renderer);
    const store = openStore('large-failing', counted, 2000);
    store.appendOutput(lines(0, 400));
    const screen = await store.snapshot();
    expect(screen.data).toContain('the earlier output of this console could not be shown; new output follows');
    expect(screen.data).not.toContain('line 399');
    // The viewer's live output starts right after what the screen stands for: nothing repeated, nothing skipped.
    expect(screen.seq).toBe(store.seq);
    expect(counted.jobs).toBe(2);
    expect(store.holdsMirror).toBe(false);
    store.appendOutput(lines(400, 401));
    const again = await store.snapshot();
    expect(again.data).toContain('could not be shown');
    expect(again.seq).toBe(store.seq);
    expect(counted.jobs).toBe(2);
    // The files are whole: an agent opening them again renders every line.
    store.close();
    const reopened = openStore('large-failing', newRenderer(), 2000);
    expect((await reopened.snapshot()).data).toContain('line 400');
  });
});
