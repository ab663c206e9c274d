import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { RELEASE_ROOT_NAME, RELEASES_KEPT, ReleaseVersion } from '../contract/release.js';

/** ~/.slotdeck-agent of the account the agent runs as; SLOTDECK_ROOT overrides (tests, and the host.sh wrapper). */
export function releaseRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.SLOTDECK_ROOT && env.SLOTDECK_ROOT.startsWith('/')
    ? env.SLOTDECK_ROOT
    : join(homedir(), RELEASE_ROOT_NAME);
}

/** Removes a folder tree: rm -rf where there is one (a release's node_modules is thousands of files, and Node's
 * own recursive removal is several times slower), else Node's. */
export function removeTree(path: string): void {
  const removed = spawnSync('rm', ['-rf', '--', path], { stdio: 'ignore' });
  if (removed.status !== 0 || existsSync(path)) rmSync(path, { recursive: true, force: true });
}

/** One activation: which version, when, and the database copy taken just before (what Rollback restores). */
export const HistoryEntry = z.object({
  version: ReleaseVersion,
  activatedAt: z.string(),
  from: ReleaseVersion.nullable().default(null),
  backup: z.string().nullable().default(null),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;
const HistoryFile = z.object({ activated: z.array(HistoryEntry) });

export class ReleaseLayout {
  constructor(readonly root: string) {}

  get releasesDir(): string {
    return join(this.root, 'releases');
  }
  get currentLink(): string {
    return join(this.root, 'current');
  }
  get historyFile(): string {
    return join(this.root, 'history.json');
  }
  get backupsDir(): string {
    return join(this.root, 'backups');
  }
  get logsDir(): string {
    return join(this.root, 'logs');
  }
  /** The CLI wrapper host.sh writes: the right node and the current release. */
  get wrapper(): string {
    return join(this.root, 'bin', 'slotdeck-agent');
  }
  releaseDir(version: string): string {
    return join(this.releasesDir, version);
  }
  releaseCli(version: string): string {
    return join(this.releaseDir(version), 'bin', 'slotdeck-agent.js');
  }
  /** The node host.sh unpacked the release with (releases/<v>/.node; its native modules match it), else this one. */
  releaseNode(version: string): string {
    try {
      const recorded = readFileSync(join(this.releaseDir(version), '.node'), 'utf8').trim();
      if (recorded.startsWith('/') && existsSync(recorded)) return recorded;
    } catch {
      // unpacked by an older host.sh: the node running this command
    }
    return process.execPath;
  }

  /** The version `current` points at, or null. */
  current(): string | null {
    try {
      const version = basename(readlinkSync(this.currentLink));
      return ReleaseVersion.safeParse(version).success ? version : null;
    } catch {
      return null;
    }
  }

  /** Points `current` at a release (or removes it) in one rename, so nothing ever sees it missing. */
  switchCurrent(version: string | null): void {
    if (version === null) {
      rmSync(this.currentLink, { force: true });
      return;
    }
    const temporary = `${this.currentLink}.new-${process.pid}`;
    rmSync(temporary, { force: true });
    symlinkSync(join('releases', version), temporary);
    renameSync(temporary, this.currentLink);
  }

  /** Releases unpacked completely (host.sh unpack renames a release into place only once it runs). */
  installed(): Array<{ version: string; installedAt: string }> {
    let names: string[];
    try {
      names = readdirSync(this.releasesDir);
    } catch {
      return [];
    }
    return names
      .filter((name) => ReleaseVersion.safeParse(name).success && existsSync(this.releaseCli(name)))
      .map((version) => {
        let installedAt: string;
        try {
          installedAt = readFileSync(join(this.releaseDir(version), '.installed-at'), 'utf8').trim();
        } catch {
          installedAt = statSync(this.releaseDir(version)).mtime.toISOString();
        }
        return { version, installedAt };
      })
      .sort((a, b) => a.installedAt.localeCompare(b.installedAt) || a.version.localeCompare(b.version));
  }

  history(): HistoryEntry[] {
    try {
      const parsed = HistoryFile.safeParse(JSON.parse(readFileSync(this.historyFile, 'utf8')));
      return parsed.success ? parsed.data.activated : [];
    } catch {
      return [];
    }
  }

  writeHistory(entries: HistoryEntry[]): void {
    mkdirSync(this.root, { recursive: true });
    const temporary = `${this.historyFile}.tmp-${process.pid}`;
    // The last 50 activations are plenty to roll back through.
    writeFileSync(temporary, `${JSON.stringify({ activated: entries.slice(-50) }, null, 2)}\n`);
    renameSync(temporary, this.historyFile);
  }

  /** The release Rollback goes back to: the activation before the current one, still on disk. */
  previous(): string | null {
    const current = this.current();
    const entries = this.history();
    let index = entries.length - 1;
    if (index >= 0 && entries[index]!.version === current) index -= 1;
    for (; index >= 0; index--) {
      const version = entries[index]!.version;
      if (version !== current && existsSync(this.releaseCli(version))) return version;
    }
    return null;
  }

  /**
   * Removes releases beyond RELEASES_KEPT: never the current or the previous one, nor `alsoKeep` (the release the
   * running PM2 daemon was started from: it loads PM2's files from there), and the newest installed first to stay.
   * Returns the versions removed.
   */
  prune(keep = RELEASES_KEPT, alsoKeep: Array<string | null> = []): string[] {
    const pinned = [this.current(), this.previous(), ...alsoKeep];
    const protectedVersions = new Set(pinned.filter((v): v is string => v !== null));
    const newestFirst = this.installed().reverse();
    const kept = new Set(protectedVersions);
    for (const release of newestFirst) if (kept.size < keep) kept.add(release.version);
    const removed: string[] = [];
    for (const release of newestFirst) {
      if (kept.has(release.version)) continue;
      removeTree(this.releaseDir(release.version));
      removed.push(release.version);
    }
    return removed;
  }
}
