import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BundleLocator } from '../../../../src/main/services/deploy/bundle';
import { IpcError } from '../../../../src/main/ipc/errors';

let dir: string;
let agentDir: string;

/** A tarball as pack.mjs makes it: slotdeck-agent/package.json with the version. */
function tarball(where: string, version: string): string {
  const stage = mkdtempSync(join(dir, 'stage-'));
  mkdirSync(join(stage, 'slotdeck-agent'));
  writeFileSync(join(stage, 'slotdeck-agent/package.json'), JSON.stringify({ name: 'slotdeck-agent', version }));
  mkdirSync(where, { recursive: true });
  const file = join(where, `slotdeck-agent-${version}.tgz`);
  execFileSync('tar', ['-czf', file, '-C', stage, 'slotdeck-agent']);
  return file;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-bundle-'));
  agentDir = join(dir, 'remote-agent');
  mkdirSync(join(agentDir, 'resources/deploy'), { recursive: true });
  mkdirSync(join(agentDir, 'scripts'));
  mkdirSync(join(agentDir, 'src'));
  writeFileSync(join(agentDir, 'package.json'), JSON.stringify({ version: '1.2.3' }));
  writeFileSync(join(agentDir, 'resources/deploy/host.sh'), '#!/bin/sh\n');
  writeFileSync(join(agentDir, 'src/cli.ts'), 'export {};\n');
  // A packer that logs each run, so the test sees whether the tarball was packed again.
  writeFileSync(
    join(agentDir, 'scripts/pack.mjs'),
    `import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const out = process.argv[process.argv.indexOf('--out') + 1];
appendFileSync(${JSON.stringify(join(dir, 'packs.log'))}, 'packed\\n');
writeFileSync(join(out, '..', 'env-seen.json'), JSON.stringify(process.env));
const stage = join(out, 'stage');
mkdirSync(join(stage, 'slotdeck-agent'), { recursive: true });
writeFileSync(join(stage, 'slotdeck-agent/package.json'), JSON.stringify({ version: '1.2.3' }));
execFileSync('tar', ['-czf', join(out, 'slotdeck-agent-1.2.3.tgz'), '-C', stage, 'slotdeck-agent']);
`,
  );
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const packs = (): number => readFileSync(join(dir, 'packs.log'), 'utf8').split('\n').filter(Boolean).length;

describe('the agent tarball a deploy uploads', () => {
  it('is the given one when a tarball is named, with its version read from inside it', async () => {
    const given = tarball(join(dir, 'given'), '2.0.0');
    const locator = new BundleLocator({
      agentDir,
      cacheDir: join(dir, 'cache'),
      nodePath: process.execPath,
      tarball: given,
    });
    expect(await locator.locate()).toMatchObject({ tarball: given, version: '2.0.0' });
    expect(locator.bundledVersion()).toBe('2.0.0');
  });

  it('is the packaged app one when there is one', async () => {
    const packaged = tarball(join(dir, 'resources/agent'), '1.2.3');
    const locator = new BundleLocator({
      agentDir,
      packagedDir: join(dir, 'resources/agent'),
      cacheDir: join(dir, 'cache'),
      nodePath: process.execPath,
    });
    expect((await locator.locate()).tarball).toBe(packaged);
  });

  it('is packed from the sources once and reused until a source changes', async () => {
    const locator = new BundleLocator({ agentDir, cacheDir: join(dir, 'cache'), nodePath: process.execPath });
    const [first, concurrent] = await Promise.all([locator.locate(), locator.locate()]);
    expect(first.version).toBe('1.2.3');
    expect(concurrent.tarball).toBe(first.tarball);
    expect(
      (await new BundleLocator({ agentDir, cacheDir: join(dir, 'cache'), nodePath: process.execPath }).locate())
        .tarball,
    ).toBe(first.tarball);
    expect(packs()).toBe(1);
    appendFileSync(join(agentDir, 'src/cli.ts'), '// changed\n');
    const again = await locator.locate();
    expect(again.tarball).not.toBe(first.tarball);
    expect(packs()).toBe(2);
  });

  it('says what to do when there is nothing to deploy', async () => {
    const locator = new BundleLocator({
      agentDir,
      cacheDir: join(dir, 'cache'),
      nodePath: process.execPath,
      tarball: join(dir, 'missing.tgz'),
    });
    const error = await locator.locate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpcError);
    expect((error as IpcError).code).toBe('DEPLOY_BUNDLE_MISSING');
    expect((error as IpcError).message).toMatch(/pack the agent again|Reinstall/);
  });

  it('is packed once when two deploys ask at the same time, by a packer that sees none of the panel secrets', async () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    process.env.AWS_SECRET_ACCESS_KEY = secret;
    process.env.SLOTDECK_TEST_ADMIN_TOKEN = 'not-for-the-packer';
    try {
      const options = { agentDir, cacheDir: join(dir, 'cache'), nodePath: process.execPath };
      const [first, second] = await Promise.all([
        new BundleLocator(options).locate(),
        new BundleLocator(options).locate(),
      ]);
      expect(second.tarball).toBe(first.tarball);
      expect(readFileSync(first.tarball).length).toBeGreaterThan(0);
      expect(packs()).toBe(1);
      const seen = readFileSync(join(dir, 'cache', 'env-seen.json'), 'utf8');
      expect(seen).not.toContain(secret);
      expect(seen).not.toContain('not-for-the-packer');
      expect(JSON.parse(seen)).toHaveProperty('PATH');
    } finally {
      delete process.env.AWS_SECRET_ACCESS_KEY;
      delete process.env.SLOTDECK_TEST_ADMIN_TOKEN;
    }
  });
});
