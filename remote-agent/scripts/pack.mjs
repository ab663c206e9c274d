// Packs the agent for a host: the build, its scripts (resources/, with the deploy's host.sh), the vendored sources
// (vendor/: dtach, built on hosts without a package for it) and the lockfile. On the host, inside the unpacked folder:
//   npm ci --omit=dev && node bin/slotdeck-agent.js serve
// Writes slotdeck-agent-<version>.tgz here (or to --out <dir>) and prints its path.
// --version X packs the same build as version X (package.json's version replaced): tests and benchmarks need "a
// newer build" to upgrade to.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const option = (name) => {
  const index = process.argv.indexOf(name);
  return index > 0 ? process.argv[index + 1] : undefined;
};
const outDir = option('--out') ? resolve(option('--out')) : root;
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = option('--version') ?? manifest.version;
// The same rule as ReleaseVersion (src/contract/release.ts): the version names a folder on the host.
if (!/^\d{1,4}\.\d{1,4}\.\d{1,6}(-[0-9A-Za-z.-]{1,40})?$/.test(version)) {
  console.error(`pack: --version must be a version like 1.2.3, not ${JSON.stringify(version)}`);
  process.exit(2);
}

const stage = mkdtempSync(join(tmpdir(), 'slotdeck-agent-pack-'));
const folder = join(stage, 'slotdeck-agent');
try {
  // Compiled straight into the package folder: a fresh build, and the working tree's dist/ is left alone.
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(folder, 'dist')],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  for (const entry of ['bin', 'resources', 'vendor', 'package.json', 'package-lock.json', 'README.md']) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(folder, entry), { recursive: true });
  }
  if (version !== manifest.version) {
    // Only package.json: the lockfile stays byte-identical, so the host can reuse the installed dependencies.
    writeFileSync(join(folder, 'package.json'), `${JSON.stringify({ ...manifest, version }, null, 2)}\n`);
  }
  mkdirSync(outDir, { recursive: true });
  const tarball = join(outDir, `slotdeck-agent-${version}.tgz`);
  execFileSync('tar', ['-czf', tarball, '--owner=0', '--group=0', '-C', stage, 'slotdeck-agent']);
  console.log(`${tarball} (${Math.round(statSync(tarball).size / 1024)} KiB)`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
