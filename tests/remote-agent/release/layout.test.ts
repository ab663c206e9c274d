import { existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReleaseLayout, releaseRoot } from '../../../remote-agent/src/release/layout.js';

let root: string;
let layout: ReleaseLayout;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sd-layout-'));
  layout = new ReleaseLayout(root);
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A release as host.sh unpack leaves it: its CLI and when it was installed. */
function install(version: string, installedAt: string): void {
  mkdirSync(join(root, 'releases', version, 'bin'), { recursive: true });
  writeFileSync(join(root, 'releases', version, 'bin', 'slotdeck-agent.js'), '');
  writeFileSync(join(root, 'releases', version, '.installed-at'), installedAt);
}

const activated = (...versions: string[]): void =>
  layout.writeHistory(
    versions.map((version, i) => ({ version, activatedAt: `2026-12-0${i + 1}`, from: null, backup: null })),
  );

describe('the release layout on a host', () => {
  it('lives in ~/.slotdeck-agent unless SLOTDECK_ROOT names an absolute folder', () => {
    expect(releaseRoot({})).toBe(join(homedir(), '.slotdeck-agent'));
    expect(releaseRoot({ SLOTDECK_ROOT: '/srv/agent' })).toBe('/srv/agent');
    expect(releaseRoot({ SLOTDECK_ROOT: 'relative' })).toBe(join(homedir(), '.slotdeck-agent'));
  });

  it('switches current by replacing the link, and reads no version from a link that is not one', () => {
    install('1.0.0', '2026-12-01T00:00:00Z');
    install('1.1.0', '2026-12-02T00:00:00Z');
    expect(layout.current()).toBeNull();
    layout.switchCurrent('1.0.0');
    expect(readlinkSync(join(root, 'current'))).toBe('releases/1.0.0');
    layout.switchCurrent('1.1.0');
    expect(layout.current()).toBe('1.1.0');
    expect(lstatSync(join(root, 'current')).isSymbolicLink()).toBe(true);
    layout.switchCurrent(null);
    expect(existsSync(join(root, 'current'))).toBe(false);
  });

  it('lists complete releases only, oldest installed first', () => {
    install('1.1.0', '2026-12-02T00:00:00Z');
    install('1.0.0', '2026-12-01T00:00:00Z');
    mkdirSync(join(root, 'releases', '1.2.0.partial', 'bin'), { recursive: true });
    mkdirSync(join(root, 'releases', '1.3.0'));
    expect(layout.installed()).toEqual([
      { version: '1.0.0', installedAt: '2026-12-01T00:00:00Z' },
      { version: '1.1.0', installedAt: '2026-12-02T00:00:00Z' },
    ]);
  });

  it('rolls back to the activation before the current one that is still on disk', () => {
    install('1.0.0', '2026-12-01T00:00:00Z');
    install('1.2.0', '2026-12-03T00:00:00Z');
    activated('1.0.0', '1.1.0', '1.2.0');
    layout.switchCurrent('1.2.0');
    // 1.1.0 was removed from disk: Rollback skips to 1.0.0.
    expect(layout.previous()).toBe('1.0.0');
    activated('1.0.0');
    layout.switchCurrent('1.0.0');
    expect(layout.previous()).toBeNull();
  });

  it('reads a damaged history as empty instead of failing the command', () => {
    writeFileSync(join(root, 'history.json'), '{"activated": [{"version": "../../etc"}]}');
    expect(layout.history()).toEqual([]);
    writeFileSync(join(root, 'history.json'), 'not json');
    expect(layout.history()).toEqual([]);
  });

  it('keeps three releases, never removing the current or the previous one', () => {
    for (const [i, version] of ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0'].entries())
      install(version, `2026-12-0${i + 1}T00:00:00Z`);
    // Rolled back to 1.0.0 from 1.1.0 once; the newest installs were never activated.
    activated('0.9.0', '1.0.0');
    layout.switchCurrent('1.0.0');
    install('0.9.0', '2026-11-30T00:00:00Z');
    const removed = layout.prune();
    expect(
      layout
        .installed()
        .map((r) => r.version)
        .sort(),
    ).toEqual(['0.9.0', '1.0.0', '1.4.0']);
    expect(removed.sort()).toEqual(['1.1.0', '1.2.0', '1.3.0']);
  });
});
