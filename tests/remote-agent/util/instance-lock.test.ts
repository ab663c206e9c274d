import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireInstanceLock, InstanceLockedError } from '../../../remote-agent/src/util/instance-lock.js';

const LOCK_MODULE = resolve(import.meta.dirname, '../../../remote-agent/src/util/instance-lock.ts');

let dir: string;
let lockPath: string;
let holder: ChildProcess | null = null;
const releases: Array<() => void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-lock-'));
  lockPath = join(dir, 'agent.lock');
});

afterEach(async () => {
  for (const release of releases.splice(0)) release();
  if (holder && holder.exitCode === null && holder.signalCode === null) {
    const exited = new Promise((done) => holder!.once('exit', done));
    holder.kill('SIGKILL');
    await exited;
  }
  holder = null;
  rmSync(dir, { recursive: true, force: true });
});

async function acquire(path = lockPath): Promise<{ release(): void }> {
  const lock = await acquireInstanceLock(path);
  releases.push(() => lock.release());
  return lock;
}

/** Another agent process holding the lock on `path`; resolves once it holds it. */
function startHolder(path: string): Promise<ChildProcess> {
  const script = `import(${JSON.stringify(LOCK_MODULE)}).then(async (m) => {
    await m.acquireInstanceLock(${JSON.stringify(path)});
    process.stdout.write('locked\\n');
    setInterval(() => undefined, 1000);
  });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: resolve(import.meta.dirname, '../../..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  holder = child;
  return new Promise((done, fail) => {
    child.stdout.on('data', (data: Buffer) => {
      if (data.toString().includes('locked')) done(child);
    });
    child.once('exit', (code) => fail(new Error(`lock holder exited with ${code}`)));
  });
}

describe('acquireInstanceLock', () => {
  it('refuses a second lock on the same path while the first is held, and grants it after release', async () => {
    const first = await acquire();
    await expect(acquireInstanceLock(lockPath)).rejects.toBeInstanceOf(InstanceLockedError);
    first.release();
    await new Promise((done) => setImmediate(done));
    const second = await acquire();
    await expect(acquireInstanceLock(lockPath)).rejects.toBeInstanceOf(InstanceLockedError);
    second.release();
  });

  it('locks each path on its own', async () => {
    await acquire(join(dir, 'one.lock'));
    await expect(acquire(join(dir, 'two.lock'))).resolves.toBeDefined();
  });

  it('refuses while another process holds the lock, and takes over the socket file it leaves when killed', async () => {
    const child = await startHolder(lockPath);
    await expect(acquireInstanceLock(lockPath)).rejects.toBeInstanceOf(InstanceLockedError);

    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
    // kill -9 leaves the socket file behind, with nobody listening on it.
    expect(existsSync(lockPath)).toBe(true);

    await acquire();
    await expect(acquireInstanceLock(lockPath)).rejects.toBeInstanceOf(InstanceLockedError);
  });
});
