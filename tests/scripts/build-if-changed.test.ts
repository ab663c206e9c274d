import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/build-if-changed.sh');
/** The project's own hooks that run before a build by hand. */
const PROJECT_SCRIPTS = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

/**
 * `npm start` builds only when something it is built from changed. The real script runs in a copy of the project's
 * layout whose two build scripts are stand-ins: they write the outputs and count how often they ran.
 */
describe('build-if-changed.sh (stand-in builds)', () => {
  let root: string;
  const builds = (): number => readFileSync(join(root, 'builds.log'), 'utf8').split('\n').filter(Boolean).length;
  const start = (): string => execFileSync('bash', [join(root, 'scripts/build-if-changed.sh')], { encoding: 'utf8' });
  const write = (path: string, text: string): void => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'sd-build-'));
    mkdirSync(join(root, 'scripts'));
    copyFileSync(SCRIPT, join(root, 'scripts/build-if-changed.sh'));
    const outputs =
      "for (const d of ['out/main','out/renderer','out/preload']) require('fs').mkdirSync(d,{recursive:true});" +
      "for (const f of ['out/main/browser.js','out/main/index.js','out/preload/index.cjs','out/renderer/index.html']) require('fs').writeFileSync(f,'');";
    write(
      'package.json',
      JSON.stringify({
        name: 'x',
        private: true,
        scripts: {
          'prebuild:agent': PROJECT_SCRIPTS['prebuild:agent'],
          'prebuild:desktop': PROJECT_SCRIPTS['prebuild:desktop'],
          'build:agent': `node -e "const fs=require('fs');fs.mkdirSync('remote-agent/dist',{recursive:true});fs.writeFileSync('remote-agent/dist/cli.js','');fs.mkdirSync('remote-agent/portal-dist',{recursive:true});fs.writeFileSync('remote-agent/portal-dist/index.html','');fs.appendFileSync('builds.log','agent\\n')"`,
          'build:desktop': `node -e "${outputs}"`,
        },
      }),
    );
    write('builds.log', '');
    write('package-lock.json', '{}');
    write('src/main/index.ts', 'export {};\n');
    write('remote-agent/src/cli.ts', 'export {};\n');
    write('remote-agent/package-lock.json', '{}');
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it(
    'builds the first time, not again when nothing changed, and again after any source change',
    { timeout: 60_000 },
    () => {
      expect(start()).toContain('building');
      expect(builds()).toBe(1);

      expect(start()).toContain('up to date');
      expect(builds()).toBe(1);

      write('src/main/index.ts', 'export const changed = true;\n');
      expect(start()).toContain('building');
      expect(builds()).toBe(2);

      write('remote-agent/src/new-module.ts', 'export {};\n');
      start();
      expect(builds()).toBe(3);

      write('remote-agent/package-lock.json', '{"lockfileVersion":3}');
      start();
      expect(builds()).toBe(4);
      expect(start()).toContain('up to date');
      expect(builds()).toBe(4);
    },
  );

  it('builds again when an output is missing, whatever the stamp says', { timeout: 60_000 }, () => {
    start();
    rmSync(join(root, 'remote-agent/dist/cli.js'));
    expect(start()).toContain('building');
    expect(builds()).toBe(2);
  });

  it(
    'builds again after a build by hand, even when the sources are back to what the stamp names',
    { timeout: 60_000 },
    () => {
      start();
      write('src/main/index.ts', 'export const experiment = true;\n');
      execFileSync('npm', ['run', '--silent', 'build:desktop'], { cwd: root });
      write('src/main/index.ts', 'export {};\n');
      // out/ holds the experiment's build now: the stamp must not vouch for it.
      expect(start()).toContain('building');
    },
  );
});
