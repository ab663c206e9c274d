import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { ReleaseVersion } from '../../../../remote-agent/src/contract/index';
import { withoutSecrets } from '../../../../remote-agent/src/contract/secret-env';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';

const run = promisify(execFile);

/**
 * Packs in progress in this process, by their cache folder: every deploy that needs the same sources waits for the
 * one pack (a second pack would replace the folder under the first).
 */
const packsInProgress = new Map<string, Promise<AgentBundle>>();

/** What a deploy uploads: the agent tarball and the host-side script that installs it. */
export interface AgentBundle {
  tarball: string;
  version: string;
  /** remote-agent/resources/deploy/host.sh */
  hostScript: string;
  /** The vendored dtach source, for hosts that have no package for it and no sudo (null: not shipped). */
  dtachSource: string | null;
}

export interface BundleOptions {
  /** The agent package the panel ships (the repository's remote-agent in development). */
  agentDir: string;
  /** Where a packaged app keeps its prebuilt tarball (resources/agent); absent in development. */
  packagedDir?: string;
  /** Where development builds of the tarball are kept between deploys. */
  cacheDir: string;
  /** The Node.js that runs pack.mjs. */
  nodePath: string;
  /** A tarball to deploy instead (tests, benchmarks). */
  tarball?: string;
}

/** The vendored dtach source, checked by host.sh before it compiles it. */
export const DTACH_SOURCE = {
  file: 'dtach-0.9.tar.gz',
  sha256: '32e9fd6923c553c443fab4ec9c1f95d83fa47b771e6e1dafb018c567291492f3',
};

/** Sources that change what pack.mjs produces: a change to any of them means a new tarball. */
const PACKED_INPUTS = [
  'src',
  'bin',
  'resources',
  'scripts',
  'package.json',
  'package-lock.json',
  'tsconfig.build.json',
  // The end users' web bundle is built from the repository's src/portal (and the console's terminal controller).
  '../src/portal',
  '../src/renderer/src/features/terminal',
  '../vite.portal.config.ts',
];

/**
 * Finds the tarball to deploy: the one given, the packaged app's, or one packed from the agent's sources (once, then
 * reused while those sources are unchanged: packing compiles the agent, which takes a while).
 */
export class BundleLocator {
  constructor(private readonly options: BundleOptions) {}

  /** The version of the agent the panel ships, without packing anything. */
  bundledVersion(): string {
    const given = this.options.tarball ? /slotdeck-agent-(.+)\.tgz$/.exec(this.options.tarball)?.[1] : undefined;
    if (given) return given;
    const pkg = JSON.parse(readFileSync(join(this.options.agentDir, 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  }

  async locate(): Promise<AgentBundle> {
    const { options } = this;
    if (options.tarball) return this.describe(options.tarball);
    if (options.packagedDir && existsSync(options.packagedDir)) {
      const packed = readdirSync(options.packagedDir).find((name) => /^slotdeck-agent-.+\.tgz$/.test(name));
      if (packed) return this.describe(join(options.packagedDir, packed));
    }
    const folder = join(options.cacheDir, sourcesDigest(options.agentDir));
    let packing = packsInProgress.get(folder);
    if (!packing) {
      packing = this.packFromSources(folder).finally(() => packsInProgress.delete(folder));
      packsInProgress.set(folder, packing);
    }
    return packing;
  }

  private async packFromSources(folder: string): Promise<AgentBundle> {
    const { agentDir, nodePath } = this.options;
    const script = join(agentDir, 'scripts', 'pack.mjs');
    if (!existsSync(script)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_BUNDLE_MISSING,
        `This Slotdeck has no agent tarball to deploy (${join(this.options.packagedDir ?? agentDir, 'slotdeck-agent-*.tgz')} is missing). Reinstall Slotdeck, or run npm run agent:pack in a development checkout.`,
      );
    }
    const cached = existsSync(folder) ? readdirSync(folder).find((name) => name.endsWith('.tgz')) : undefined;
    if (cached) return this.describe(join(folder, cached));
    // Packed into a temp folder and renamed, so a pack that died halfway is never taken for a finished one.
    const partial = `${folder}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    try {
      // The packer (npm, tsc) needs no secret of the panel's: AWS keys and tokens stay out of its environment.
      await run(nodePath, [script, '--out', partial], {
        cwd: agentDir,
        timeout: 10 * 60_000,
        env: withoutSecrets(process.env),
      });
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      const stderr = String((error as { stderr?: string }).stderr ?? (error as Error).message).slice(-2000);
      throw new IpcError(
        IpcErrorCode.DEPLOY_BUNDLE_MISSING,
        `Packing the agent for the host failed: ${stderr.trim()}. Fix the agent's build (npm run build:agent shows the errors), then retry.`,
      );
    }
    rmSync(folder, { recursive: true, force: true });
    renameSync(partial, folder);
    const tarball = readdirSync(folder).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new IpcError(IpcErrorCode.DEPLOY_BUNDLE_MISSING, 'Packing the agent produced no tarball.');
    return this.describe(join(folder, tarball));
  }

  private async describe(tarball: string): Promise<AgentBundle> {
    if (!existsSync(tarball)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_BUNDLE_MISSING,
        `The agent tarball ${tarball} is missing. Reinstall Slotdeck, or pack the agent again (npm run agent:pack).`,
      );
    }
    const { stdout } = await run('tar', ['-xzOf', tarball, 'slotdeck-agent/package.json'], {
      maxBuffer: 1024 * 1024,
    }).catch(() => ({ stdout: '' }));
    let version: string | undefined;
    try {
      version = (JSON.parse(stdout) as { version?: string }).version;
    } catch {
      version = undefined;
    }
    if (!version || !ReleaseVersion.safeParse(version).success) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_BUNDLE_MISSING,
        `${tarball} is not an agent tarball (no slotdeck-agent/package.json with a version in it). Pack the agent again.`,
      );
    }
    const hostScript = join(this.options.agentDir, 'resources', 'deploy', 'host.sh');
    if (!existsSync(hostScript)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_BUNDLE_MISSING,
        `The host-side deploy script (${hostScript}) is missing. Reinstall Slotdeck.`,
      );
    }
    const dtach = [join(this.options.agentDir, 'vendor', DTACH_SOURCE.file)].find((path) => existsSync(path));
    return { tarball, version, hostScript, dtachSource: dtach ?? null };
  }
}

/** SHA-256 over the names and contents of everything pack.mjs reads. */
export function sourcesDigest(agentDir: string): string {
  const hash = createHash('sha256');
  const visit = (path: string): void => {
    if (!existsSync(path)) return;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const name of readdirSync(path).sort()) {
        if (name === 'node_modules' || name === 'dist') continue;
        visit(join(path, name));
      }
      return;
    }
    hash.update(relative(agentDir, path)).update('\0').update(readFileSync(path)).update('\0');
  };
  for (const input of PACKED_INPUTS) visit(join(agentDir, input));
  return hash.digest('hex').slice(0, 16);
}
