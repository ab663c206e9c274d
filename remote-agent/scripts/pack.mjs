// Packs the agent for a host: the build, its scripts and the lockfile. On the host, inside the unpacked folder:
//   npm ci --omit=dev && node bin/slotdeck-agent.js serve
// Writes slotdeck-agent-<version>.tgz here (or to --out <dir>) and prints its path.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outIndex = process.argv.indexOf('--out');
const outDir = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : root;
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

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
  for (const entry of ['bin', 'resources', 'package.json', 'package-lock.json', 'README.md']) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(folder, entry), { recursive: true });
  }
  mkdirSync(outDir, { recursive: true });
  const tarball = join(outDir, `slotdeck-agent-${version}.tgz`);
  execFileSync('tar', ['-czf', tarball, '--owner=0', '--group=0', '-C', stage, 'slotdeck-agent']);
  console.log(`${tarball} (${Math.round(statSync(tarball).size / 1024)} KiB)`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
