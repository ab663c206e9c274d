import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_DIR } from '../helpers/agent.js';
import { sqlitePrebuildStandIn } from '../helpers/prebuilds.js';

const work = mkdtempSync(join(tmpdir(), 'sd-pack-'));

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the agent tarball', () => {
  it('installs on a clean folder with npm ci --omit=dev and runs from there (stand-in for GitHub: a local prebuilt SQLite binary)', () => {
    const printed = execFileSync(process.execPath, [join(AGENT_DIR, 'scripts/pack.mjs'), '--out', work], {
      encoding: 'utf8',
    });
    const { version } = JSON.parse(readFileSync(join(AGENT_DIR, 'package.json'), 'utf8')) as { version: string };
    const tarball = join(work, `slotdeck-agent-${version}.tgz`);
    expect(printed).toContain(tarball);
    // Small enough to push over SSH in a moment: the build and scripts, not node_modules or sources.
    expect(statSync(tarball).size).toBeLessThan(1024 * 1024);
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const file of [
      'bin/slotdeck-agent.js',
      'dist/cli.js',
      'resources/slot-holder.sh',
      'resources/slot-launch.sh',
      'package-lock.json',
    ]) {
      expect(listing).toContain(`slotdeck-agent/${file}`);
    }
    expect(listing.some((file) => file.includes('node_modules') || file.includes('/src/'))).toBe(false);

    execFileSync('tar', ['-xzf', tarball, '-C', work]);
    const installed = join(work, 'slotdeck-agent');
    const install = spawnSync(
      'npm',
      ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'],
      {
        cwd: installed,
        encoding: 'utf8',
        env: {
          ...process.env,
          npm_config_better_sqlite3_local_prebuilds: sqlitePrebuildStandIn(join(work, 'prebuilds')),
        },
      },
    );
    expect(install.status, install.stderr).toBe(0);
    // Installed from the stand-in, not compiled here (a compile leaves its object files under build/).
    expect(existsSync(join(installed, 'node_modules/better-sqlite3/build/Release/obj.target'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules/typescript'))).toBe(false);

    const cli = join(installed, 'bin/slotdeck-agent.js');
    expect(execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' }).trim()).toBe(version);
    const dataDir = join(work, 'data');
    const token = execFileSync(process.execPath, [cli, 'token', '--data-dir', dataDir], { encoding: 'utf8' }).trim();
    expect(token).toMatch(/^sdk_admin_[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(dataDir, 'secrets/admin-token')).mode & 0o777).toBe(0o600);
    const migrate = execFileSync(process.execPath, [cli, 'migrate', 'status', '--data-dir', dataDir], {
      encoding: 'utf8',
    });
    expect(migrate).toMatch(/schema version 0 of \d+/);
  }, 600_000);
});
