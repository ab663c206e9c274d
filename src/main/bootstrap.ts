import { dirname, join } from 'node:path';
import { adminApi } from '../../remote-agent/src/contract/index';
import { Dispatcher } from './ipc/dispatch';
import { EventBus } from './ipc/events';
import { createHandlers, readPreferences } from './ipc/handlers';
import type { Logger } from './log';
import { LocalAgent } from './services/agent/local-agent';
import { AlertWatcher, type AlertNotifier } from './services/alerts/alert-watcher';
import { AwsService, type AwsServiceOptions } from './services/aws/aws-service';
import { Store } from './services/db/store';
import { BundleLocator } from './services/deploy/bundle';
import { DeployService, type DeployOptions } from './services/deploy/deploy-service';
import { HostService, LOCAL_HOST_ID } from './services/hosts/hosts';
import { createVault, type KeyringEntryFactory } from './services/secrets/vault';

export interface BootstrapOptions {
  mode: 'electron' | 'browser';
  version: string;
  /** The app's data dir: settings database, encrypted secrets (when no keychain), the local agent's data, logs. */
  dataDir: string;
  /** The agent package that "This computer" runs. */
  agentDir: string;
  /** The Node.js that runs the local agent. */
  nodePath: string;
  log: Logger;
  /** The OS keychain, or null where there is none to use. */
  keyring: KeyringEntryFactory | null;
  env?: NodeJS.ProcessEnv;
  sshConfigFile?: string;
  /** Tunnels' reconnect backoff (tests shorten it). */
  backoff?: { initialMs: number; maxMs: number };
  /** The Electron app's save dialog (usage exports); browser mode has none. */
  pickSaveFile?: (suggestedName: string) => Promise<string | null>;
  /** The Electron app's open dialog (a backup to upload); browser mode has none. */
  pickOpenFile?: () => Promise<string | null>;
  /** The origin of the renderer's page; terminal tickets are bound to it (see HandlerServices). */
  rendererOrigin?: () => string | null;
  /**
   * Deploying the agent to hosts: a tarball to deploy instead of the bundled one, and DeployService's options. The
   * environment can set them too, for the e2e app: SLOTDECK_DEPLOY_TARBALL, SLOTDECK_DEPLOY_NODE_DIST_URL and
   * SLOTDECK_DEPLOY_HOST_ENV (a JSON object: npm's cache for the host's commands).
   */
  deploy?: { tarball?: string; options?: Partial<DeployOptions> };
  /**
   * AWS endpoints and pacing (tests: the EC2 stand-in). The environment can set them too, for the e2e app:
   * SLOTDECK_AWS_ENDPOINT, SLOTDECK_AWS_CHECKIP_URL, SLOTDECK_AWS_WAITER_DELAY_S.
   */
  aws?: Pick<AwsServiceOptions, 'endpoint' | 'checkIpUrl' | 'waiter' | 'maxAttempts' | 'pageSize'>;
  /** A desktop notification for each newly firing alert (the Electron app); SLOTDECK_ALERTS_POLL_MS sets the pace. */
  notify?: AlertNotifier;
}

export interface PanelCore {
  dispatcher: Dispatcher;
  /** The settings database, for what lives outside the IPC contract (the window's bounds). */
  settings: Store;
  events: EventBus;
  hosts: HostService;
  /** AWS accounts and EC2, for what tests check beyond the IPC (filters). */
  aws: AwsService;
  /** Resolves once "This computer" is connected (or has failed to). */
  ready: Promise<void>;
  dispose(): Promise<void>;
}

/** The composition root of main: every service is made and wired here, for the Electron app and browser mode alike. */
export async function bootstrap(options: BootstrapOptions): Promise<PanelCore> {
  const env = options.env ?? process.env;
  const deploySettings = deploySettingsOf(env, options.deploy);
  const store = Store.open(join(options.dataDir, 'slotdeck.db'));
  const vault = await createVault({
    file: join(options.dataDir, 'secrets.enc.json'),
    masterKey: env.SLOTDECK_MASTER_KEY,
    entry: options.keyring,
  });
  const events = new EventBus();
  // The local agent reports its restarts to the host service, which is made right after it.
  let hosts: HostService | null = null;
  let aws: AwsService | null = null;
  const localAgent = new LocalAgent({
    agentDir: options.agentDir,
    dataDir: join(options.dataDir, 'agents', 'local'),
    logFile: join(options.dataDir, 'local-agent.log'),
    nodePath: options.nodePath,
    log: options.log,
    env,
    onStateChange: (state, detail) => hosts?.localAgentState(state, detail),
  });
  // Packaged: resources/agent holds the prebuilt tarball beside resources/remote-agent; in development it is packed.
  const bundle = new BundleLocator({
    agentDir: options.agentDir,
    packagedDir: join(dirname(options.agentDir), 'agent'),
    cacheDir: join(options.dataDir, 'agent-bundles'),
    nodePath: options.nodePath,
    ...(deploySettings.tarball ? { tarball: deploySettings.tarball } : {}),
  });
  hosts = new HostService({
    store,
    vault,
    events,
    localAgent,
    log: options.log,
    env,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    bundledAgentVersion: () => bundle.bundledVersion(),
    instanceAddress: (instance, signal) => aws!.instanceAddress(instance, signal),
  });
  hosts.ensureLocalHost();
  aws = new AwsService({ store, vault, events, hosts, log: options.log, env, ...awsSettings(env, options.aws) });
  const deploy = new DeployService({
    store,
    hosts,
    events,
    log: options.log,
    bundle,
    ...(deploySettings.options ? { options: deploySettings.options } : {}),
  });
  const handlers = createHandlers({
    store,
    vault,
    hosts,
    app: { name: 'Slotdeck', version: options.version, mode: options.mode, dataDir: options.dataDir },
    ...(options.sshConfigFile ? { sshConfigFile: options.sshConfigFile } : {}),
    ...(options.pickSaveFile ? { pickSaveFile: options.pickSaveFile } : {}),
    ...(options.pickOpenFile ? { pickOpenFile: options.pickOpenFile } : {}),
    ...(options.rendererOrigin ? { rendererOrigin: options.rendererOrigin } : {}),
    deploy,
    events,
    aws,
  });
  const service = hosts;
  const ready = startThisComputer(service, store, options.log);
  const alertWatcher = new AlertWatcher({
    hosts: service,
    events,
    log: options.log,
    ...(options.notify ? { notify: options.notify } : {}),
    ...(Number(env.SLOTDECK_ALERTS_POLL_MS) > 0 ? { intervalMs: Number(env.SLOTDECK_ALERTS_POLL_MS) } : {}),
  });
  alertWatcher.start();
  return {
    dispatcher: new Dispatcher(handlers, options.log),
    settings: store,
    events,
    hosts: service,
    aws,
    ready,
    async dispose() {
      alertWatcher.dispose();
      deploy.dispose();
      aws.dispose();
      service.dispose();
      await localAgent.stop();
      store.close();
    },
  };
}

function deploySettingsOf(
  env: NodeJS.ProcessEnv,
  given: BootstrapOptions['deploy'] = {},
): NonNullable<BootstrapOptions['deploy']> {
  let hostEnv: unknown;
  try {
    hostEnv = env.SLOTDECK_DEPLOY_HOST_ENV ? JSON.parse(env.SLOTDECK_DEPLOY_HOST_ENV) : undefined;
  } catch {
    hostEnv = null;
  }
  if (hostEnv !== undefined && (typeof hostEnv !== 'object' || hostEnv === null || Array.isArray(hostEnv)))
    throw new Error('SLOTDECK_DEPLOY_HOST_ENV must be a JSON object of strings, e.g. {"npm_config_cache":"/tmp/npm"}');
  const options: Partial<DeployOptions> = {
    ...(env.SLOTDECK_DEPLOY_NODE_DIST_URL ? { nodeDistBaseUrl: env.SLOTDECK_DEPLOY_NODE_DIST_URL } : {}),
    ...(hostEnv ? { hostEnv: hostEnv as Record<string, string> } : {}),
    ...given.options,
  };
  const tarball = given.tarball ?? env.SLOTDECK_DEPLOY_TARBALL;
  return { ...(tarball ? { tarball } : {}), ...(Object.keys(options).length > 0 ? { options } : {}) };
}

function awsSettings(
  env: NodeJS.ProcessEnv,
  given: BootstrapOptions['aws'] = {},
): Pick<AwsServiceOptions, 'endpoint' | 'checkIpUrl' | 'waiter' | 'maxAttempts' | 'pageSize'> {
  const delay = Number(env.SLOTDECK_AWS_WAITER_DELAY_S);
  return {
    ...(env.SLOTDECK_AWS_ENDPOINT ? { endpoint: env.SLOTDECK_AWS_ENDPOINT } : {}),
    ...(env.SLOTDECK_AWS_CHECKIP_URL ? { checkIpUrl: env.SLOTDECK_AWS_CHECKIP_URL } : {}),
    ...(delay > 0 ? { waiter: { minDelay: delay, maxDelay: delay } } : {}),
    ...given,
  };
}

/**
 * "This computer" connects at once. On the very first run it also gets a slot, `main`, whose console the panel opens:
 * the first thing a new user sees is a working terminal.
 */
async function startThisComputer(hosts: HostService, store: Store, log: Logger): Promise<void> {
  try {
    await hosts.connect(LOCAL_HOST_ID);
    if (store.preference<boolean>('welcomed')) return;
    const client = hosts.client(LOCAL_HOST_ID);
    const { slots } = await client.call(adminApi.listSlots, {});
    const main =
      slots.find((slot) => slot.name === 'main') ??
      (await client.call(adminApi.createSlot, { body: { name: 'main' } }));
    store.setPreference('preferences', {
      ...readPreferences(store),
      consoles: [{ hostId: LOCAL_HOST_ID, slotId: main.id, mode: 'writable' }],
      selectedHostId: LOCAL_HOST_ID,
    });
    store.setPreference('welcomed', true);
  } catch (error) {
    log.error('could not start This computer', error);
  }
}
