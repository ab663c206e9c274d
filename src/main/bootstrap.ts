import { join } from 'node:path';
import { adminApi } from '../../remote-agent/src/contract/index';
import { Dispatcher } from './ipc/dispatch';
import { EventBus } from './ipc/events';
import { createHandlers, readPreferences } from './ipc/handlers';
import type { Logger } from './log';
import { LocalAgent } from './services/agent/local-agent';
import { Store } from './services/db/store';
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
  /** The origin of the renderer's page; terminal tickets are bound to it (see HandlerServices). */
  rendererOrigin?: () => string | null;
}

export interface PanelCore {
  dispatcher: Dispatcher;
  /** The settings database, for what lives outside the IPC contract (the window's bounds). */
  settings: Store;
  events: EventBus;
  hosts: HostService;
  /** Resolves once "This computer" is connected (or has failed to). */
  ready: Promise<void>;
  dispose(): Promise<void>;
}

/** The composition root of main: every service is made and wired here, for the Electron app and browser mode alike. */
export async function bootstrap(options: BootstrapOptions): Promise<PanelCore> {
  const env = options.env ?? process.env;
  const store = Store.open(join(options.dataDir, 'slotdeck.db'));
  const vault = await createVault({
    file: join(options.dataDir, 'secrets.enc.json'),
    masterKey: env.SLOTDECK_MASTER_KEY,
    entry: options.keyring,
  });
  const events = new EventBus();
  // The local agent reports its restarts to the host service, which is made right after it.
  let hosts: HostService | null = null;
  const localAgent = new LocalAgent({
    agentDir: options.agentDir,
    dataDir: join(options.dataDir, 'agents', 'local'),
    logFile: join(options.dataDir, 'local-agent.log'),
    nodePath: options.nodePath,
    log: options.log,
    env,
    onStateChange: (state, detail) => hosts?.localAgentState(state, detail),
  });
  hosts = new HostService({
    store,
    vault,
    events,
    localAgent,
    log: options.log,
    env,
    ...(options.backoff ? { backoff: options.backoff } : {}),
  });
  hosts.ensureLocalHost();
  const handlers = createHandlers({
    store,
    vault,
    hosts,
    app: { name: 'Slotdeck', version: options.version, mode: options.mode, dataDir: options.dataDir },
    ...(options.sshConfigFile ? { sshConfigFile: options.sshConfigFile } : {}),
    ...(options.pickSaveFile ? { pickSaveFile: options.pickSaveFile } : {}),
    ...(options.rendererOrigin ? { rendererOrigin: options.rendererOrigin } : {}),
  });
  const service = hosts;
  const ready = startThisComputer(service, store, options.log);
  return {
    dispatcher: new Dispatcher(handlers, options.log),
    settings: store,
    events,
    hosts: service,
    ready,
    async dispose() {
      service.dispose();
      await localAgent.stop();
      store.close();
    },
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
