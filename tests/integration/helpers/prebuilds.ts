import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_DIR } from './agent.js';

/**
 * better-sqlite3's install downloads its prebuilt binary from GitHub, which this machine cannot reach; npm then
 * compiles SQLite from source (over 10 minutes on a loaded 2-core machine). The stand-in: the binary this checkout
 * already built, packed into `dir` where prebuild-install looks before GitHub
 * (`npm_config_better_sqlite3_local_prebuilds=<dir>`). Returns `dir`.
 */
export function sqlitePrebuildStandIn(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const sqlite = join(AGENT_DIR, 'node_modules/better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(sqlite, 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  execFileSync('tar', ['-czf', join(dir, name), '-C', sqlite, 'build/Release/better_sqlite3.node']);
  return dir;
}
