import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/build-if-changed.sh');

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
      "require('fs').mkdirSync('out/main',{recursive:true});require('fs').mkdirSync('out/renderer',{recursive:true});" +
      "for (const f of ['out/main/browser.js','out/main/index.js','out/renderer/index.html']) require('fs').writeFileSync(f,'');";
    write(
      'package.json',
      JSON.stringify({
        name: 'x',
        private: true,
        scripts: {
          'build:agent': `node -e "require('fs').mkdirSync('remote-agent/dist',{recursive:true});require('fs').writeFileSync('remote-agent/dist/cli.js','');require('fs').appendFileSync('builds.log','agent\\n')"`,
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
});
