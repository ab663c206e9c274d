import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpsEvents, type OpsEventMap } from '../../../../remote-agent/src/ops/events.js';
import { StorageMonitor, isStorageError, type StorageProbeFs } from '../../../../remote-agent/src/ops/storage.js';

const MB = 1024 * 1024;

/** A file system whose free space and writability the test sets; statfs and the probe answer accordingly. */
function fakeDisk(): StorageProbeFs & { freeBytes: number; writable: boolean; probes: number } {
  const disk = {
    freeBytes: 1024 * MB,
    writable: true,
    probes: 0,
    statfs: () => Promise.resolve({ bavail: disk.freeBytes / 4096, blocks: (2048 * MB) / 4096, bsize: 4096 }),
    probeWrite: () => {
      disk.probes += 1;
      return disk.writable
        ? Promise.resolve()
        : Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    },
  };
  return disk;
}

let dir: string;
let ops: OpsEvents;
let events: Array<OpsEventMap['storage']>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-storage-'));
  ops = new OpsEvents();
  events = [];
  ops.on('storage', (event) => events.push(event));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('StorageMonitor', () => {
  it('counts less free space than the reserve as full, and recovers by itself once space is back and a write works', async () => {
    const disk = fakeDisk();
    const monitor = new StorageMonitor({ dir, ops, fs: disk, reserveBytes: 16 * MB });
    expect((await monitor.check()).full).toBe(false);
    expect(monitor.state().freeBytes).toBe(1024 * MB);

    disk.freeBytes = 4 * MB;
    disk.writable = false;
    const full = await monitor.check();
    expect(full).toMatchObject({ full: true, path: dir, freeBytes: 4 * MB });
    expect(full.error).toMatch(/only 4\.0 MB free/);
    expect(events).toEqual([{ full: true, path: dir, error: full.error }]);

    // Space back, but a write still fails (a quota, a read-only remount): still full.
    disk.freeBytes = 512 * MB;
    expect((await monitor.check()).full).toBe(true);
    disk.writable = true;
    expect((await monitor.check()).full).toBe(false);
    expect(events.map((event) => event.full)).toEqual([true, false]);
  });

  it('flips to full at once on a write failure a part reports, and ignores errors that are not about space', async () => {
    const disk = fakeDisk();
    const monitor = new StorageMonitor({ dir, ops, fs: disk });
    const changes: boolean[] = [];
    monitor.onChange((state) => changes.push(state.full));

    expect(monitor.reportWriteFailure(new Error('SQLITE_CONSTRAINT: UNIQUE constraint failed'), 'usage rows')).toBe(
      false,
    );
    expect(monitor.full).toBe(false);

    const sqliteFull = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    expect(monitor.reportWriteFailure(sqliteFull, 'usage rows')).toBe(true);
    expect(monitor.state()).toMatchObject({ full: true, error: 'usage rows: database or disk is full' });
    // A second failure while full changes nothing (one event, one change).
    monitor.reportWriteFailure(sqliteFull, 'usage rows');
    expect(events).toHaveLength(1);
    expect(changes).toEqual([true]);

    // statfs says there is room and the probe write goes through: writable again, without anyone's help.
    await monitor.check();
    expect(monitor.full).toBe(false);
    expect(disk.probes).toBe(1);
    expect(changes).toEqual([true, false]);
  });

  it('checks on its own timer once started', async () => {
    const disk = fakeDisk();
    disk.freeBytes = 0;
    const monitor = new StorageMonitor({ dir, ops, fs: disk, intervalMs: 20 });
    monitor.start();
    try {
      await expect.poll(() => monitor.full).toBe(true);
      disk.freeBytes = 100 * MB;
      await expect.poll(() => monitor.full).toBe(false);
    } finally {
      monitor.close();
    }
  });

  it('probes the real data dir with a real write', async () => {
    const monitor = new StorageMonitor({ dir, reserveBytes: 0 });
    monitor.reportWriteFailure(Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'test');
    expect((await monitor.check()).full).toBe(false);
    expect(monitor.state().totalBytes).toBeGreaterThan(0);
  });
});

describe('isStorageError', () => {
  it('knows the codes and messages of Node and SQLite for a disk that takes no writes', () => {
    for (const code of ['ENOSPC', 'EDQUOT', 'EROFS', 'SQLITE_FULL'])
      expect(isStorageError(Object.assign(new Error('x'), { code }))).toBe(true);
    // A message alone (which may quote a request) does not count: only the code that fs or SQLite set.
    expect(isStorageError(new Error('database or disk is full'))).toBe(false);
    expect(isStorageError(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isStorageError('ENOSPC')).toBe(false);
    expect(isStorageError(null)).toBe(false);
  });
});
