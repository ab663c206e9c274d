// Packs the agent for a host: the build, its scripts (resources/, with the deploy's host.sh), the vendored sources
// (vendor/: dtach, built on hosts without a package for it) and the lockfile. On the host, inside the unpacked folder:
//   npm ci --omit=dev && node bin/slotdeck-agent.js serve
// Writes slotdeck-agent-<version>.tgz here (or to --out <dir>) and prints its path.
// --version X packs the same build as version X (package.json's version replaced): tests and benchmarks need "a
// newer build" to upgrade to.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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

// The end users' web bundle (portal-dist/, built from ../src/portal by vite.portal.config.ts). Packed as built when it
// is newer than its sources; when it is missing or stale and the sources are here (a source checkout), it is built
// straight into the package folder, leaving the working tree's copy alone (tests may pack in parallel).
const repoRoot = dirname(root);
const PORTAL_SOURCES = [
  'src/portal',
  'src/renderer/src/features/terminal/controller.ts',
  'src/renderer/src/features/terminal/clipboard.ts',
  'vite.portal.config.ts',
  'package-lock.json',
];
const newestMtime = (path) => {
  if (!existsSync(path)) return 0;
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
};
function packPortal(target) {
  const built = join(root, 'portal-dist');
  const builtAt = existsSync(join(built, 'index.html')) ? statSync(join(built, 'index.html')).mtimeMs : 0;
  const sourcesHere = existsSync(join(repoRoot, 'vite.portal.config.ts'));
  const sourcesAt = sourcesHere ? Math.max(...PORTAL_SOURCES.map((path) => newestMtime(join(repoRoot, path)))) : 0;
  if (builtAt > 0 && builtAt >= sourcesAt) {
    cpSync(built, target, { recursive: true });
    return;
  }
  if (!sourcesHere) {
    console.error(
      'pack: portal-dist/ is missing and there are no portal sources to build it from (npm run build:portal)',
    );
    process.exit(2);
  }
  execFileSync(
    process.execPath,
    [join(repoRoot, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'vite.portal.config.ts', '--outDir', target],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

const stage = mkdtempSync(join(tmpdir(), 'slotdeck-agent-pack-'));
const folder = join(stage, 'slotdeck-agent');
try {
  // Compiled straight into the package folder: a fresh build, and the working tree's dist/ is left alone.
  execFileSync(
    process.execPath,
    // Hosts run the code: no type declarations (a tenth of the tarball); source maps stay, for stack traces.
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      ...['-p', 'tsconfig.build.json', '--outDir', join(folder, 'dist')],
      ...['--declaration', 'false', '--declarationMap', 'false'],
    ],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  packPortal(join(folder, 'portal-dist'));
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
