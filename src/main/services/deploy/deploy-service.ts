import { HostFacts, idleApi, ReleaseLine, ReleaseStatus } from '../../../../remote-agent/src/contract/index';
import { bootUnit, systemdUnitPath, unitName } from '../../../../remote-agent/src/release/boot-unit';
import {
  compareVersions,
  MAX_AGENT_CONTRACT,
  MIN_AGENT_CONTRACT,
  PANEL_AGENT_CONTRACT,
} from '../../../shared/agent-compat';
import { DeployJob, type DeployAction, type DeployStatus } from '../../../shared/ipc/contract-cloud';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import { takePendingIdle } from '../aws/pending-idle';
import type { Store } from '../db/store';
import type { HostService } from '../hosts/hosts';
import { DTACH_SOURCE, type AgentBundle, type BundleLocator } from './bundle';
import { JobRecorder } from './job';
import {
  accountFromCommand,
  agentCommandFor,
  asAgent,
  asRoot,
  checkHostEnv,
  planFor,
  refuseDowngrade,
  releaseRoot,
  shq,
  type RunAs,
} from './plans';
import { DeploySession, plainKill, type ExecResult } from './ssh-session';

/** Where a root-owned Node goes when the distribution has none (setup-host runs on it as root). */
const ROOT_NODE_DIR = '/usr/local/lib/slotdeck';

/** Node the agent needs (remote-agent/package.json engines). */
const MIN_NODE = '20.10.0';

export interface DeployOptions {
  /** Node's official downloads (index.json, v<ver>/...); tests point it at a local stand-in. */
  nodeDistBaseUrl: string;
  nodeMajor: number;
  /** Environment for the host-side commands (an npm registry or cache, PATH); never secrets. */
  hostEnv: Record<string, string>;
  /** The agent's own account on hosts where the login user has passwordless sudo. */
  agentAccount: string;
  /** `auto`: isolated when the login user has passwordless sudo, else single-user. */
  mode: 'auto' | 'isolated' | 'single-user';
  /** How long the new agent has to answer /health with its version before the host rolls back. */
  activateTimeoutS: number;
  /** The longest any one host-side command may run (npm ci on a slow host takes minutes). */
  commandTimeoutMs: number;
  /** SSH handshake timeout. */
  connectTimeoutMs: number;
}

export const DEFAULT_DEPLOY_OPTIONS: DeployOptions = {
  nodeDistBaseUrl: 'https://nodejs.org/dist',
  nodeMajor: 20,
  hostEnv: {},
  agentAccount: 'slotdeck',
  mode: 'auto',
  activateTimeoutS: 30,
  commandTimeoutMs: 20 * 60_000,
  connectTimeoutMs: 20_000,
};

export interface DeployServiceDeps {
  store: Store;
  hosts: HostService;
  events: EventBus;
  log: Logger;
  bundle: BundleLocator;
  options?: Partial<DeployOptions>;
}

interface Running {
  controller: AbortController;
  recorder: JobRecorder;
}

/** What one job knows about the host as it goes. */
interface Context {
  hostId: string;
  label: string;
  job: JobRecorder;
  signal: AbortSignal;
  deleteData: boolean;
  session: DeploySession | null;
  staging: string | null;
  /** The agent tarball is in the staging dir. */
  uploaded: boolean;
  /** The login user's view of the host. */
  facts: HostFacts | null;
  /** The agent account's view (the same as facts in single-user mode). */
  agentFacts: HostFacts | null;
  runAs: RunAs;
  root: string;
  bundle: AgentBundle | null;
  /** A result the job ends with other than success (the host rolled back by itself). */
  outcome: { state: 'rolled-back' | 'failed'; message: string; code?: string } | null;
  message: string | null;
}

/**
 * Deploys, upgrades, rolls back and uninstalls the agent on SSH hosts. Each run is a job of steps the panel shows
 * live (`deploy:progress`) and the store keeps; one job per host at a time; cancellable. It drives the host side
 * (host.sh before Node is there, then the agent's own `release` commands) over an SSH connection of its own.
 */
export class DeployService {
  private readonly options: DeployOptions;
  private readonly running = new Map<string, Running>();

  constructor(private readonly deps: DeployServiceDeps) {
    this.options = { ...DEFAULT_DEPLOY_OPTIONS, ...deps.options };
  }

  /** The agent version this panel deploys. */
  bundledVersion(): string {
    return this.deps.bundle.bundledVersion();
  }

  async status(hostId: string, signal?: AbortSignal): Promise<DeployStatus> {
    const row = this.deps.hosts.row(hostId);
    let host: ReleaseStatus | null = null;
    if (row.kind === 'ssh') {
      const result = await this.deps.hosts
        .exec(hostId, `${row.agentCommand ?? 'slotdeck-agent'} release status`, signal)
        .catch(() => null);
      if (result?.code === 0) {
        const parsed = ReleaseStatus.safeParse(lastJson(result.stdout));
        if (parsed.success) host = parsed.data;
      }
    }
    return {
      bundled: {
        version: this.bundledVersion(),
        contractVersion: PANEL_AGENT_CONTRACT,
        minContract: MIN_AGENT_CONTRACT,
        maxContract: MAX_AGENT_CONTRACT,
      },
      host,
      lastJob: this.lastJob(hostId),
    };
  }

  /** The host's running job, else the last one kept (a job that was running when Slotdeck stopped says so). */
  lastJob(hostId: string): DeployJob | null {
    const live = this.running.get(hostId);
    if (live) return live.recorder.snapshot();
    const parsed = DeployJob.safeParse(this.deps.store.deployJob(hostId));
    if (!parsed.success) return null;
    const job = parsed.data;
    if (job.state !== 'running') return job;
    return {
      ...job,
      state: 'failed',
      message: 'Slotdeck stopped while this job ran. Check the host\u2019s version, then run it again.',
      steps: job.steps.map((step) => (step.state === 'running' ? { ...step, state: 'cancelled' as const } : step)),
    };
  }

  /** Cancels the host's running job; false when none runs. */
  cancel(hostId: string): boolean {
    const live = this.running.get(hostId);
    if (!live) return false;
    live.controller.abort();
    return true;
  }

  /** Runs an action to its end (or until cancelled) and returns the job as it ended. */
  async run(
    hostId: string,
    action: DeployAction,
    input: { deleteData?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<DeployJob> {
    const row = this.deps.hosts.row(hostId);
    if (row.kind !== 'ssh') {
      throw new IpcError(
        IpcErrorCode.DEPLOY_LOCAL_HOST,
        '"This computer" runs the agent bundled with Slotdeck; it is updated with Slotdeck itself.',
      );
    }
    if (this.running.has(hostId)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_BUSY,
        `A deploy job is already running on ${row.name}. Wait for it to end, or cancel it.`,
      );
    }
    checkHostEnv(this.options.hostEnv);
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onOuterAbort, { once: true });
    const status = this.deps.hosts.status(hostId);
    const recorder = new JobRecorder(
      hostId,
      action,
      planFor(action),
      {
        emit: (job) => this.deps.events.emit('deploy:progress', { hostId, job }),
        save: (job) => this.deps.store.saveDeployJob(hostId, job),
      },
      status.agent?.version ?? null,
    );
    this.running.set(hostId, { controller, recorder });
    const ctx: Context = {
      hostId,
      label: row.name,
      job: recorder,
      signal: controller.signal,
      deleteData: input.deleteData ?? false,
      session: null,
      staging: null,
      uploaded: false,
      facts: null,
      agentFacts: null,
      runAs: { account: null, env: this.options.hostEnv },
      root: '',
      bundle: null,
      outcome: null,
      message: null,
    };
    this.deps.log.info(`deploy job ${recorder.job.id}: ${action} on ${row.name}`);
    try {
      await this.perform(action, ctx);
      const ended = ctx.outcome
        ? recorder.finish(ctx.outcome.state, ctx.outcome.message, {
            code: ctx.outcome.code ?? IpcErrorCode.DEPLOY_FAILED,
            message: ctx.outcome.message,
          })
        : recorder.finish('succeeded', ctx.message);
      this.deps.log.info(`deploy job ${recorder.job.id}: ${ended.state}`);
      return ended;
    } catch (error) {
      const ended = this.failed(ctx, error);
      this.deps.log.warn(`deploy job ${recorder.job.id}: ${ended.state}: ${ended.message ?? ''}`);
      return ended;
    } finally {
      signal?.removeEventListener('abort', onOuterAbort);
      await this.cleanUp(ctx);
      this.running.delete(hostId);
    }
  }

  dispose(): void {
    for (const live of this.running.values()) live.controller.abort();
  }

  // ------------------------------------------------------------------ the actions

  private async perform(action: DeployAction, ctx: Context): Promise<void> {
    await this.step(ctx, 'connect', () => this.connect(ctx));
    await this.step(ctx, 'detect', () => this.detect(ctx, action));
    switch (action) {
      case 'deploy':
        return this.deploy(ctx);
      case 'upgrade':
        return this.upgrade(ctx);
      case 'rollback':
        return this.rollback(ctx);
      case 'uninstall':
        return this.uninstall(ctx);
    }
  }

  private async deploy(ctx: Context): Promise<void> {
    const facts = ctx.facts!;
    await this.step(ctx, 'mode', () => this.chooseMode(ctx));
    await this.step(ctx, 'node', () => this.installNode(ctx));
    await this.step(ctx, 'dtach', () => this.installDtach(ctx));
    const already = ctx.agentFacts?.agent?.current === ctx.bundle!.version;
    if (already) {
      // Deploying again over the same version (a retry after a later step failed): nothing to unpack; activating
      // it again restarts the agent, which is what a retry wants.
      for (const id of ['upload', 'unpack'])
        ctx.job.end(id, 'skipped', `The host already has the agent ${ctx.bundle!.version}.`);
    } else {
      await this.step(ctx, 'upload', () => this.upload(ctx));
      await this.step(ctx, 'unpack', () => this.unpack(ctx));
    }
    if (ctx.runAs.account) await this.step(ctx, 'setup-host', () => this.setupHost(ctx));
    else if (ctx.job.has('setup-host'))
      ctx.job.end(
        'setup-host',
        'skipped',
        'Single-user mode: slots run as the login user, not isolated from the agent.',
      );
    await this.step(ctx, 'activate', () => this.activate(ctx));
    if (ctx.outcome) return;
    await this.step(ctx, 'boot', () => this.startAtBoot(ctx, facts));
    await this.step(ctx, 'reconnect', async () => {
      const connected = await this.reconnect(ctx);
      const idle = await this.applyPendingIdle(ctx);
      return idle ? `${connected} ${idle}` : connected;
    });
    ctx.message = `The agent ${ctx.bundle!.version} runs on ${ctx.label}${ctx.runAs.account ? ` as ${ctx.runAs.account}` : ' (single-user mode: slots are not isolated from the agent)'}.`;
  }

  private async upgrade(ctx: Context): Promise<void> {
    const current = ctx.facts!.agent?.current ?? null;
    ctx.bundle = await this.deps.bundle.locate();
    ctx.job.setVersions({ fromVersion: current, toVersion: ctx.bundle.version });
    refuseDowngrade(current, ctx.bundle.version, ctx.label);
    if (current === ctx.bundle.version) {
      for (const id of ['upload', 'unpack', 'setup-host', 'activate'])
        ctx.job.end(id, 'skipped', `The host already runs ${current}.`);
      await this.step(ctx, 'reconnect', () => this.refresh(ctx));
      ctx.message = `${ctx.label} already runs the agent ${current}.`;
      return;
    }
    await this.step(ctx, 'upload', () => this.upload(ctx));
    await this.step(ctx, 'unpack', () => this.unpack(ctx));
    // The root-owned helper comes with the release: refreshed before the new agent relies on it.
    if (ctx.runAs.account) await this.step(ctx, 'setup-host', () => this.setupHost(ctx));
    else ctx.job.end('setup-host', 'skipped', 'Single-user mode: no slot helper to update.');
    await this.step(ctx, 'activate', () => this.activate(ctx));
    // Rolled back or not, the host runs an agent again: the panel reads which.
    await this.step(ctx, 'reconnect', () => this.refresh(ctx));
    if (!ctx.outcome) ctx.message = `${ctx.label} runs the agent ${ctx.bundle.version} (was ${current ?? 'none'}).`;
  }

  private async rollback(ctx: Context): Promise<void> {
    ctx.job.setVersions({ fromVersion: ctx.facts!.agent?.current ?? null });
    await this.step(ctx, 'rollback', async () => {
      ctx.message = (await this.releaseCommand(ctx, 'rollback', ['rollback'])) ?? null;
      return ctx.message ?? undefined;
    });
    await this.step(ctx, 'reconnect', () => this.refresh(ctx));
  }

  private async uninstall(ctx: Context): Promise<void> {
    await this.step(ctx, 'uninstall', async () => {
      await this.removeBootEntry(ctx);
      const said = await this.releaseCommand(ctx, 'uninstall', [
        'uninstall',
        ...(ctx.deleteData ? ['--delete-data'] : []),
      ]);
      if (ctx.deleteData && ctx.runAs.account && ctx.facts!.sudo) await this.removeHostSetup(ctx, ctx.runAs.account);
      return ctx.deleteData
        ? `The agent, its slots and its data were removed.${said && /Not removed/.test(said) ? ` ${said}` : ''}`
        : 'The agent was removed.';
    });
    await this.step(ctx, 'disconnect', () => {
      this.deps.hosts.disconnect(ctx.hostId);
      return Promise.resolve(undefined);
    });
  }

  // ------------------------------------------------------------------ the steps

  private async connect(ctx: Context): Promise<string> {
    // A linked instance gets a new public address when it is stopped and started: look it up first.
    await this.deps.hosts.refreshInstanceAddress(ctx.hostId, ctx.signal);
    const target = this.deps.hosts.sshTarget(ctx.hostId);
    ctx.session = await DeploySession.open({ ...target, readyTimeoutMs: this.options.connectTimeoutMs });
    const made = await this.remote(ctx, 'connect', 'mktemp -d /tmp/slotdeck-deploy.XXXXXXXX');
    ctx.staging = made.stdout.trim();
    // The agent's account reads the uploads (isolated mode); nothing in them is secret.
    await this.remote(ctx, 'connect', `chmod 755 ${shq(ctx.staging)}`);
    return `Logged in as ${target.user} on ${target.address}:${target.port}.`;
  }

  private async detect(ctx: Context, action: DeployAction): Promise<string> {
    const bundle = await this.deps.bundle.locate();
    if (action === 'deploy' || action === 'upgrade') ctx.bundle = bundle;
    await ctx.session!.upload(bundle.hostScript, this.staged(ctx, 'host.sh'), { signal: ctx.signal });
    const facts = await this.detectAs(ctx, 'detect', null);
    ctx.facts = facts;
    ctx.agentFacts = facts;
    ctx.root = releaseRoot(facts.home);
    const describe = `${facts.os.prettyName}, ${facts.arch}, Node ${facts.node?.version ?? 'missing'}${facts.sudo ? ', passwordless sudo' : ''}`;
    if (action === 'deploy') {
      ctx.job.setVersions({ toVersion: bundle.version });
      return describe;
    }
    // The other actions act on the agent that is there, as the account it runs as. The login user may not see
    // into that account's home: then it is asked as that account (named in the profile, else the default).
    let agent = facts.agent;
    if (!agent?.current && facts.sudo) {
      const account = accountFromCommand(this.deps.hosts.row(ctx.hostId).agentCommand) ?? this.options.agentAccount;
      const seen = await this.detectAs(ctx, 'detect', account).catch(() => null);
      if (seen?.agent?.current) {
        agent = seen.agent;
        ctx.agentFacts = seen;
      }
    }
    if (!agent?.current) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_NO_AGENT,
        `No agent was deployed on ${ctx.label} (nothing under ~/${'.slotdeck-agent'} of ${facts.user}${this.options.agentAccount !== facts.user ? ` or ${this.options.agentAccount}` : ''}). Use Deploy first.`,
      );
    }
    const account = agent.account !== facts.user ? agent.account : null;
    ctx.runAs = { account, env: this.options.hostEnv };
    ctx.root = agent.root;
    return `${describe}; agent ${agent.current} in ${agent.root}${account ? ` as ${account}` : ''}`;
  }

  private async chooseMode(ctx: Context): Promise<string> {
    const facts = ctx.facts!;
    const isolated = this.options.mode === 'isolated' || (this.options.mode === 'auto' && facts.sudo);
    if (!isolated) {
      ctx.runAs = { account: null, env: this.options.hostEnv };
      ctx.job.end(
        'setup-host',
        'skipped',
        `Single-user mode: slots run as ${facts.user}, not isolated from the agent.`,
      );
      return `Single-user: ${facts.user} has no passwordless sudo, so the agent and its slots run as ${facts.user} (slots are not isolated from the agent).`;
    }
    if (!facts.sudo) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_UNSUPPORTED_HOST,
        `Isolated mode needs passwordless sudo for ${facts.user} on ${ctx.label}. Add a sudoers line for it, or deploy in single-user mode.`,
      );
    }
    const account = this.options.agentAccount;
    await this.remote(
      ctx,
      'mode',
      asRoot(this.options.hostEnv, ['sh', this.staged(ctx, 'host.sh'), 'ensure-account', account]),
    );
    ctx.runAs = { account, env: this.options.hostEnv };
    ctx.agentFacts = await this.detectAs(ctx, 'mode', account);
    ctx.root = releaseRoot(ctx.agentFacts.home);
    return `Isolated: the agent runs as ${account}, each slot as an account of its own.`;
  }

  private async installNode(ctx: Context): Promise<string | { skipped: string }> {
    const facts = ctx.agentFacts!;
    if (nodeIsEnough(facts)) return { skipped: `Node ${facts.node!.version} (${facts.node!.path}) is new enough.` };
    if (ctx.facts!.sudo && ctx.facts!.packageManager) {
      const result = await this.remote(
        ctx,
        'node',
        asRoot(this.options.hostEnv, ['sh', this.staged(ctx, 'host.sh'), 'install-packages', 'nodejs']),
        // A package manager stopped halfway can leave its database locked or broken: it finishes, then the job stops.
        { allowFailure: true, onAbort: 'wait' },
      );
      if (result.code === 0) {
        ctx.agentFacts = await this.detectAs(ctx, 'node', ctx.runAs.account);
        if (nodeIsEnough(ctx.agentFacts))
          return `Node ${ctx.agentFacts.node!.version} from the distribution (${ctx.facts!.packageManager}).`;
      }
      ctx.job.output('node', "\nThe distribution's Node is missing or too old: installing Node's official build.\n");
    }
    await this.remote(
      ctx,
      'node',
      asAgent(ctx.runAs, [
        'sh',
        this.staged(ctx, 'host.sh'),
        'install-node',
        this.options.nodeDistBaseUrl,
        String(this.options.nodeMajor),
        facts.arch,
      ]),
    );
    ctx.agentFacts = await this.detectAs(ctx, 'node', ctx.runAs.account);
    if (!nodeIsEnough(ctx.agentFacts)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_FAILED,
        `Node was installed on ${ctx.label}, but the host still finds ${ctx.agentFacts.node?.version ?? 'no Node'}. Check ${ctx.root}/node.`,
      );
    }
    return `Node ${ctx.agentFacts.node!.version} from ${this.options.nodeDistBaseUrl} (checksum verified).`;
  }

  /**
   * dtach: the distribution's package; else (with sudo) the build tools and the vendored source built and installed
   * to /usr/local/bin as root, where setup-host, the helper and the wrapper look; else built as the agent into
   * ROOT/bin (single-user without sudo).
   */
  private async installDtach(ctx: Context): Promise<string | { skipped: string }> {
    if (ctx.agentFacts!.dtach) return { skipped: 'dtach is installed.' };
    const script = this.staged(ctx, 'host.sh');
    const sudo = ctx.facts!.sudo && ctx.facts!.packageManager !== null;
    if (sudo) {
      const result = await this.remote(
        ctx,
        'dtach',
        asRoot(this.options.hostEnv, ['sh', script, 'install-packages', 'dtach']),
        {
          allowFailure: true,
          onAbort: 'wait',
        },
      );
      if (result.code === 0) return `dtach from the distribution (${ctx.facts!.packageManager}).`;
      ctx.job.output('dtach', '\nNo dtach package: installing build tools to build it from the bundled source.\n');
      await this.remote(ctx, 'dtach', asRoot(this.options.hostEnv, ['sh', script, 'install-packages', 'build-tools']), {
        onAbort: 'wait',
      });
    }
    const source = ctx.bundle?.dtachSource ?? (await this.deps.bundle.locate()).dtachSource;
    if (!source) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_UNSUPPORTED_HOST,
        `${ctx.label} has no dtach and this Slotdeck ships no dtach source to build. Install dtach on the host (apt-get install dtach, dnf install dtach), then retry.`,
      );
    }
    const remote = this.staged(ctx, DTACH_SOURCE.file);
    await ctx.session!.upload(source, remote, { signal: ctx.signal });
    const build = ['sh', script, 'build-dtach', remote, DTACH_SOURCE.sha256];
    await this.remote(ctx, 'dtach', ctx.facts!.sudo ? asRoot(this.options.hostEnv, build) : asAgent(ctx.runAs, build));
    return ctx.facts!.sudo
      ? 'dtach built from the bundled source into /usr/local/bin.'
      : 'dtach built from the bundled source.';
  }

  private async upload(ctx: Context, stepId = 'upload'): Promise<string> {
    const bundle = ctx.bundle ?? (await this.deps.bundle.locate());
    const target = this.staged(ctx, `slotdeck-agent-${bundle.version}.tgz`);
    await ctx.session!.upload(bundle.tarball, target, {
      signal: ctx.signal,
      onProgress: (done, total) => ctx.job.progress(stepId, done, total),
    });
    ctx.uploaded = true;
    return `slotdeck-agent-${bundle.version}.tgz`;
  }

  private async unpack(ctx: Context): Promise<string> {
    const bundle = ctx.bundle!;
    await this.remote(
      ctx,
      'unpack',
      asAgent(ctx.runAs, [
        'sh',
        this.staged(ctx, 'host.sh'),
        'unpack',
        this.staged(ctx, `slotdeck-agent-${bundle.version}.tgz`),
        bundle.version,
      ]),
    );
    return `${ctx.root}/releases/${bundle.version}`;
  }

  /**
   * issue 9's setup-host (slot accounts, the root-owned helper, the sudoers line), run as root from a root-owned
   * extraction of the staged tarball with a root-owned Node: root never runs what the agent's account can write
   * (its ROOT holds the releases and its Node). Re-run at every upgrade, so the helper stays current.
   */
  private async setupHost(ctx: Context): Promise<string> {
    const bundle = ctx.bundle ?? (await this.deps.bundle.locate());
    const tarball = this.staged(ctx, `slotdeck-agent-${bundle.version}.tgz`);
    if (!ctx.uploaded) await this.upload(ctx, 'setup-host');
    const node = await this.rootNode(ctx);
    const account = ctx.runAs.account!;
    const script = [
      'dir=$(sudo -n mktemp -d /root/slotdeck-setup.XXXXXX) || exit 1',
      `sudo -n tar -xzf ${shq(tarball)} -C "$dir" || { sudo -n rm -rf "$dir"; exit 1; }`,
      `sudo -n ${asRoot(this.options.hostEnv, [node]).replace(/^sudo -n /, '')} "$dir/slotdeck-agent/dist/setup-host-cli.js" --user ${shq(account)}`,
      'status=$?',
      'sudo -n rm -rf "$dir"',
      'exit $status',
    ].join('\n');
    await this.remote(ctx, 'setup-host', script);
    return `Slots run as accounts of their own; ${account} starts them through sudo.`;
  }

  /** A Node only root can change: the distribution's, else an official build installed root-owned for this. */
  private async rootNode(ctx: Context): Promise<string> {
    const found = await this.remote(
      ctx,
      'setup-host',
      `for n in /usr/bin/node-20 /usr/bin/node /usr/local/bin/node /usr/local/lib/slotdeck/node/current/bin/node; do if [ -x "$n" ] && [ "$(stat -L -c %u "$n")" = 0 ] && "$n" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' 2>/dev/null; then echo "$n"; exit 0; fi; done; exit 1`,
      { allowFailure: true, quiet: true },
    );
    const path = found.stdout.trim().split('\n').at(-1) ?? '';
    if (found.code === 0 && path.startsWith('/')) return path;
    await this.remote(
      ctx,
      'setup-host',
      asRoot({ ...this.options.hostEnv, SLOTDECK_ROOT: ROOT_NODE_DIR }, [
        'sh',
        this.staged(ctx, 'host.sh'),
        'install-node',
        this.options.nodeDistBaseUrl,
        String(this.options.nodeMajor),
        ctx.facts!.arch,
      ]),
    );
    return `${ROOT_NODE_DIR}/node/current/bin/node`;
  }

  private async activate(ctx: Context): Promise<string | undefined> {
    return this.releaseCommand(ctx, 'activate', [
      'activate',
      ctx.bundle!.version,
      '--timeout-s',
      String(this.options.activateTimeoutS),
    ]);
  }

  /**
   * Runs `slotdeck-agent release <args>` and turns its lines into sub-steps. The host finishes these commands even
   * if the panel goes away (they ignore SIGHUP), so cancelling only stops listening.
   */
  private async releaseCommand(ctx: Context, stepId: string, args: string[]): Promise<string | undefined> {
    let result: Extract<ReleaseLine, { kind: 'result' }> | null = null;
    const onLine = (line: string): void => {
      const parsed = ReleaseLine.safeParse(lastJson(line));
      if (!parsed.success) return;
      const item = parsed.data;
      if (item.kind === 'note') ctx.job.detail(stepId, item.text);
      else if (item.kind === 'result') result = item;
      else {
        const id = `${stepId}.${item.step}`;
        ctx.job.insertAfter(stepId, { id, label: item.label });
        if (item.state === 'running') ctx.job.start(id, item.detail);
        else ctx.job.end(id, item.state, item.detail);
      }
    };
    const command = asAgent(ctx.runAs, [`${ctx.root}/bin/slotdeck-agent`, 'release', ...args]);
    const run = await this.remote(ctx, stepId, command, { onLine, allowFailure: true, onAbort: 'detach' });
    const ended = result as Extract<ReleaseLine, { kind: 'result' }> | null;
    if (!ended) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_FAILED,
        `"slotdeck-agent release ${args[0]}" on ${ctx.label} ended (${run.code === null ? 'without an exit status' : `exit ${run.code}`}) without a result. ${lastLines(run.stderr) || 'See the step output.'}`,
      );
    }
    if (ended.version) ctx.job.setVersions({ toVersion: ended.version });
    switch (ended.outcome) {
      case 'activated':
      case 'uninstalled':
        return ended.message;
      case 'rolled-back':
        // What Rollback asked for; for an activation it means the new agent did not come up.
        if (stepId === 'rollback') return ended.message;
        ctx.outcome = { state: 'rolled-back', message: ended.message, code: IpcErrorCode.DEPLOY_FAILED };
        ctx.job.end(stepId, 'failed', ended.message);
        return undefined;
      case 'failed':
        throw new IpcError(
          // `release rollback` exits 5 when there is nothing to go back to (remote-agent/src/release/README.md).
          stepId === 'rollback' && run.code === 5 ? IpcErrorCode.DEPLOY_NO_PREVIOUS : IpcErrorCode.DEPLOY_FAILED,
          ended.message,
        );
    }
  }

  private async startAtBoot(ctx: Context, facts: HostFacts): Promise<string | { skipped: string }> {
    const cli = `${ctx.root}/bin/slotdeck-agent`;
    const account = ctx.runAs.account ?? facts.user;
    if (facts.systemd && facts.sudo) {
      // Rendered here, from what the panel knows: root writes nothing the agent's account printed.
      const unit = bootUnit({ account, wrapper: cli, env: this.options.hostEnv });
      const name = unitName(account);
      const encoded = Buffer.from(unit).toString('base64');
      await this.remote(
        ctx,
        'boot',
        `printf %s ${shq(encoded)} | base64 -d | sudo -n tee ${shq(systemdUnitPath(account))} >/dev/null && sudo -n systemctl daemon-reload && sudo -n systemctl enable ${shq(name)}`,
      );
      return `systemd unit ${name}.`;
    }
    // Without systemd: an @reboot line in the account's crontab, where there is cron.
    const cron = await this.remote(ctx, 'boot', asAgent(ctx.runAs, [cli, 'release', 'boot-unit', '--crontab']), {
      allowFailure: true,
    });
    const said = ReleaseLine.safeParse(lastJson(cron.stdout));
    if (cron.code === 0 && said.success && said.data.kind === 'result') return said.data.message;
    return {
      skipped: `${ctx.label} has neither systemd nor crontab: after a reboot, run ${cli} release resurrect as ${account} (see the deploy docs).`,
    };
  }

  /**
   * What setup-host made as root for this agent account, which `release uninstall` (running as the account) cannot
   * remove: its sudoers line, its helper config, its (empty) slot dirs, and the helper itself when no other agent
   * account uses it. Nothing else (the agent account stays; other agents' setups are untouched).
   */
  private async removeHostSetup(ctx: Context, account: string): Promise<void> {
    const script = [
      `rm -f ${shq(`/etc/sudoers.d/slotdeck-${account}`)} ${shq(`/etc/slotdeck/agents/${account}.conf`)}`,
      `rmdir ${shq(`/home/${account}-slots`)} ${shq(`/run/${account}-slots`)} 2>/dev/null`,
      'if ! ls /etc/slotdeck/agents/*.conf >/dev/null 2>&1; then rm -rf /usr/local/libexec/slotdeck; rmdir /etc/slotdeck/agents /etc/slotdeck 2>/dev/null; fi',
      'exit 0',
    ].join('\n');
    await this.remote(ctx, 'uninstall', asRoot({}, ['sh', '-c', script]));
  }

  private async removeBootEntry(ctx: Context): Promise<void> {
    const facts = ctx.facts!;
    const account = ctx.runAs.account ?? facts.user;
    if (facts.systemd && facts.sudo) {
      const name = unitName(account);
      const unit = shq(systemdUnitPath(account));
      await this.remote(
        ctx,
        'uninstall',
        `if [ -e ${unit} ]; then sudo -n systemctl disable ${shq(name)}; sudo -n rm -f ${unit}; sudo -n systemctl daemon-reload; fi`,
        { allowFailure: true },
      );
    }
    // The crontab line, if any, goes with `release uninstall`.
  }

  private async reconnect(ctx: Context): Promise<string> {
    const { hosts } = this.deps;
    const command = agentCommandFor(ctx.root, ctx.runAs.account);
    if (hosts.row(ctx.hostId).agentCommand !== command) await hosts.update(ctx.hostId, { agentCommand: command });
    return this.refresh(ctx);
  }

  /**
   * The idle auto-stop minutes chosen at launch, applied once the agent runs (kept for the next deploy if the agent
   * refuses them, cleared once applied).
   */
  private async applyPendingIdle(ctx: Context): Promise<string | null> {
    const minutes = this.deps.store.preference<number | null>(`pendingIdle:${ctx.hostId}`);
    if (typeof minutes !== 'number') return null;
    try {
      await this.deps.hosts.client(ctx.hostId).call(idleApi.setIdle, { body: { enabled: true, minutes } }, ctx.signal);
    } catch (error) {
      this.deps.log.warn(`${ctx.label}: the idle policy from the launch was not applied: ${(error as Error).message}`);
      return `The idle auto-stop of ${minutes} minutes chosen at launch was not applied (${(error as Error).message}); set it in the host's Idle panel.`;
    }
    takePendingIdle(this.deps.store, ctx.hostId);
    const sudoNote = ctx.facts?.sudo
      ? ''
      : ` Its default stop command (sudo -n shutdown) needs passwordless sudo for ${ctx.facts?.user ?? 'the login user'}.`;
    return `Idle auto-stop on: ${minutes} minutes (chosen at launch).${sudoNote}`;
  }

  /** Reads the agent's version again (the tunnel stays; consoles reconnect by themselves). */
  private async refresh(ctx: Context): Promise<string> {
    const host = await this.deps.hosts.refreshAgent(ctx.hostId, ctx.signal);
    return `Connected: agent ${host.status.agent?.version ?? 'unknown'}.`;
  }

  // ------------------------------------------------------------------ plumbing

  /** Runs one step: running → done/skipped, or failed/cancelled with why. */
  private async step(
    ctx: Context,
    id: string,
    body: () => Promise<string | undefined | { skipped: string }>,
  ): Promise<void> {
    if (ctx.signal.aborted) throw cancelledError();
    ctx.job.start(id);
    const result = await body();
    if (ctx.job.step(id).state !== 'running') return;
    if (result && typeof result === 'object') ctx.job.end(id, 'skipped', result.skipped);
    else ctx.job.end(id, 'done', result);
  }

  private failed(ctx: Context, error: unknown): DeployJob {
    const step = ctx.job.running();
    const cancelled = ctx.signal.aborted;
    if (cancelled) {
      if (step) {
        const onHost = step.id === 'activate' || step.id === 'rollback' || step.id === 'uninstall';
        ctx.job.end(
          step.id,
          'cancelled',
          onHost
            ? 'Cancelled here; the host finishes this step by itself (a new agent that does not start is rolled back). Check the version in a minute.'
            : 'Cancelled.',
        );
      }
      for (const sub of ctx.job.job.steps.filter((s) => s.state === 'running')) ctx.job.end(sub.id, 'cancelled');
      return ctx.job.finish('cancelled', `Cancelled${step ? ` during "${step.label}"` : ''}.`);
    }
    const shaped =
      error instanceof IpcError
        ? { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }
        : { code: IpcErrorCode.DEPLOY_FAILED, message: (error as Error).message };
    if (step) ctx.job.end(step.id, 'failed', shaped.message);
    for (const sub of ctx.job.job.steps.filter((s) => s.state === 'running')) ctx.job.end(sub.id, 'failed');
    return ctx.job.finish('failed', shaped.message, shaped);
  }

  private async cleanUp(ctx: Context): Promise<void> {
    const { session, staging } = ctx;
    if (session?.isOpen && staging) {
      await session.exec(`rm -rf ${shq(staging)}`).catch(() => undefined);
    }
    session?.close();
  }

  private staged(ctx: Context, name: string): string {
    return `${ctx.staging!}/${name}`;
  }

  /** `host.sh detect`, as the login user (account null) or as the agent's account. */
  private async detectAs(ctx: Context, stepId: string, account: string | null): Promise<HostFacts> {
    // As the login user, detect also looks for an agent deployed under the agent account's home.
    const command = asAgent({ account, env: this.options.hostEnv }, [
      'sh',
      this.staged(ctx, 'host.sh'),
      'detect',
      ...(account ? [] : [this.options.agentAccount]),
    ]);
    const result = await this.remote(ctx, stepId, command, { quiet: true });
    const parsed = HostFacts.safeParse(lastJson(result.stdout));
    if (!parsed.success) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_UNSUPPORTED_HOST,
        `Slotdeck could not read what ${ctx.label} has (host.sh detect printed ${result.stdout.trim().slice(0, 200) || 'nothing'}). ${lastLines(result.stderr)}`,
      );
    }
    return parsed.data;
  }

  /**
   * Runs a host-side command within the job: its output goes to the step, a non-zero exit becomes the error host.sh
   * meant (3: checksum, 4: something to install first), a command that runs too long is stopped.
   */
  private async remote(
    ctx: Context,
    stepId: string,
    command: string,
    options: {
      onLine?: (line: string) => void;
      allowFailure?: boolean;
      /** What cancelling does to the command on the host (ExecOptions.onAbort; default: stop its process group). */
      onAbort?: 'group' | 'wait' | 'detach';
      quiet?: boolean;
    } = {},
  ): Promise<ExecResult> {
    const timeout = AbortSignal.timeout(this.options.commandTimeoutMs);
    let result: ExecResult;
    try {
      result = await ctx.session!.exec(command, {
        signal: AbortSignal.any([ctx.signal, timeout]),
        onAbort: options.onAbort ?? 'group',
        // The agent account's processes are not the login user's to signal: root does it where there is sudo.
        killCommand: (signal, pgid) => `${ctx.facts?.sudo ? 'sudo -n ' : ''}${plainKill(signal, pgid)}`,
        ...(options.quiet ? {} : { onOutput: (text: string) => ctx.job.output(stepId, text) }),
        ...(options.onLine ? { onLine: options.onLine } : {}),
      });
    } catch (error) {
      if (timeout.aborted && !ctx.signal.aborted) {
        throw new IpcError(
          IpcErrorCode.DEPLOY_FAILED,
          `A step on ${ctx.label} did not finish within ${Math.round(this.options.commandTimeoutMs / 60_000)} minutes and was stopped. See its output, then retry.`,
        );
      }
      throw error;
    }
    if (result.code === 0 || options.allowFailure) return result;
    if (options.quiet) ctx.job.output(stepId, result.stdout + result.stderr);
    const why = lastLines(result.stderr) || lastLines(result.stdout) || `exit status ${result.code ?? 'unknown'}`;
    if (result.code === 3) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_NODE_CHECKSUM,
        `The Node.js download for ${ctx.label} does not match its published SHA-256, so it was not installed (${why}). Retry later, or check what sits between the host and ${this.options.nodeDistBaseUrl}.`,
      );
    }
    if (result.code === 4) throw new IpcError(IpcErrorCode.DEPLOY_UNSUPPORTED_HOST, why);
    throw new IpcError(IpcErrorCode.DEPLOY_FAILED, `${why} (exit status ${result.code ?? 'unknown'}).`);
  }
}

function nodeIsEnough(facts: HostFacts): boolean {
  return facts.node !== null && compareVersions(facts.node.version.replace(/^v/, ''), MIN_NODE) >= 0;
}

/** The last line of output that parses as JSON (commands may print other lines before it). */
export function lastJson(text: string): unknown {
  const lines = text.split('\n').map((line) => line.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('{')) continue;
    try {
      return JSON.parse(line);
    } catch {
      // not JSON after all
    }
  }
  return null;
}

function lastLines(text: string, count = 3): string {
  return text
    .trim()
    .split('\n')
    .filter((line) => line.trim())
    .slice(-count)
    .join(' ')
    .slice(0, 600);
}

function cancelledError(): IpcError {
  return new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
}
