import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);

/** Packaging needs a download of Electron, so here the config is checked the way electron-builder would read it. */
describe('the packaging config', () => {
  const yaml = require('js-yaml') as { load(text: string): unknown };
  const config = yaml.load(readFileSync(resolve(root, 'electron-builder.yml'), 'utf8')) as {
    files: string[];
    linux: { icon: string };
    extraResources: Array<{ from: string; filter: string[] }>;
    electronFuses?: Record<string, boolean>;
  };

  it("is valid against electron-builder's own schema", () => {
    const Ajv = require('ajv') as new (options: object) => {
      validate(schema: object, data: unknown): boolean;
      errors: unknown;
    };
    const ajv = new Ajv({ allErrors: true, strict: false });
    const schema = require('app-builder-lib/scheme.json') as object;
    expect(ajv.validate(schema, config), JSON.stringify(ajv.errors)).toBe(true);
  });

  it('points at files the build produces and the agent it ships', () => {
    expect(existsSync(resolve(root, config.linux.icon))).toBe(true);
    expect(existsSync(resolve(root, 'out/main/index.js'))).toBe(true);
    expect(existsSync(resolve(root, 'out/preload/index.cjs'))).toBe(true);
    expect(existsSync(resolve(root, 'out/renderer/index.html'))).toBe(true);
    const agent = config.extraResources.find((r) => r.from === 'remote-agent');
    expect(agent?.filter).toEqual(expect.arrayContaining(['dist/**', 'resources/**', 'package-lock.json']));
    expect(existsSync(resolve(root, 'remote-agent/dist/cli.js'))).toBe(true);
    // The deploy's tarball: packed by `npm run package` into the folder shipped as resources/agent.
    const bundle = config.extraResources.find((r) => (r as { to?: string }).to === 'agent');
    expect(bundle?.from).toBe('build/agent-bundle');
    const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
      main: string;
      scripts: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(pkg.main).toBe('out/main/index.js');
    expect(pkg.scripts.package).toContain('pack.mjs --out build/agent-bundle');
    // electron-builder insists that electron is a devDependency.
    expect(pkg.devDependencies.electron).toBeDefined();
  });

  it('flips the Electron fuses that close the packaged app to Node-style tampering', async () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
    // What electron-builder writes into the binary: each setting reaches its @electron/fuses wire.
    const { PlatformPackager } = require('app-builder-lib') as {
      PlatformPackager: { prototype: { generateFuseConfig(fuses: object): Promise<Record<number, boolean>> } };
    };
    const { FuseV1Options } = require('@electron/fuses') as { FuseV1Options: Record<string, number> };
    const wires = await PlatformPackager.prototype.generateFuseConfig(config.electronFuses!);
    expect(wires).toMatchObject({
      [FuseV1Options.RunAsNode!]: false,
      [FuseV1Options.EnableCookieEncryption!]: true,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable!]: false,
      [FuseV1Options.EnableNodeCliInspectArguments!]: false,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation!]: true,
      [FuseV1Options.OnlyLoadAppFromAsar!]: true,
    });
  });
});
