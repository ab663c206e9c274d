import { adminApi } from '../../../remote-agent/src/contract/index';
import type { Preferences } from '../../shared/ipc/contract';
import type { SecretVault } from '../services/secrets/vault';
import type { Store } from '../services/db/store';
import type { HostService } from '../services/hosts/hosts';
import { readSshConfig } from '../services/hosts/ssh-config';
import type { Handlers } from './dispatch';

export interface HandlerServices {
  store: Store;
  vault: SecretVault;
  hosts: HostService;
  app: { name: string; version: string; mode: 'electron' | 'browser'; dataDir: string };
  sshConfigFile?: string;
}

export const DEFAULT_PREFERENCES: Preferences = { theme: 'system', consoles: [], selectedHostId: 'local' };

export function readPreferences(store: Store): Preferences {
  return { ...DEFAULT_PREFERENCES, ...(store.preference<Partial<Preferences>>('preferences') ?? {}) };
}

/** Every IPC channel's handler. The Handlers type makes a missing one a compile error. */
export function createHandlers(services: HandlerServices): Handlers {
  const { store, vault, hosts } = services;
  const agent = (hostId: string) => hosts.client(hostId);
  return {
    'app:info': () =>
      Promise.resolve({ ...services.app, platform: process.platform, secrets: vault.status(), notices: store.notices }),
    'app:preferences': () => Promise.resolve(readPreferences(store)),
    'app:set-preferences': (changes) => {
      const next = { ...readPreferences(store), ...changes };
      store.setPreference('preferences', next);
      return Promise.resolve(next);
    },
    'secrets:status': () => Promise.resolve(vault.status()),
    'secrets:unlock': ({ passphrase }) => vault.unlock(passphrase),
    'hosts:list': () => Promise.resolve({ hosts: hosts.list() }),
    'hosts:create': (input) => hosts.create(input),
    'hosts:update': ({ id, changes }) => hosts.update(id, changes),
    'hosts:remove': async ({ id }) => {
      await hosts.remove(id);
      return { ok: true as const };
    },
    'hosts:connect': ({ id }, { signal }) => hosts.connect(id, signal),
    'hosts:disconnect': ({ id }) => {
      hosts.disconnect(id);
      return Promise.resolve(hosts.get(id));
    },
    'hosts:trust-key': ({ id, fingerprint, replace }, { signal }) => hosts.trustKey(id, fingerprint, replace, signal),
    'hosts:ssh-config': () => Promise.resolve(readSshConfig(services.sshConfigFile)),
    'slots:list': ({ hostId }, { signal }) => agent(hostId).call(adminApi.listSlots, {}, signal),
    'slots:create': ({ hostId, slot }, { signal }) => agent(hostId).call(adminApi.createSlot, { body: slot }, signal),
    'slots:start': ({ hostId, slotId }, { signal }) =>
      agent(hostId).call(adminApi.startSlot, { params: { id: slotId } }, signal),
    'slots:stop': ({ hostId, slotId }, { signal }) =>
      agent(hostId).call(adminApi.stopSlot, { params: { id: slotId } }, signal),
    'slots:restart': ({ hostId, slotId }, { signal }) =>
      agent(hostId).call(adminApi.restartSlot, { params: { id: slotId } }, signal),
    'slots:delete': async ({ hostId, slotId, workDir }, { signal }) => {
      await agent(hostId).call(adminApi.deleteSlot, { params: { id: slotId }, query: { workDir } }, signal);
      return { ok: true as const };
    },
    'slots:events': ({ hostId, slotId }, { signal }) =>
      agent(hostId).call(adminApi.listSlotEvents, { params: { id: slotId }, query: { limit: 50 } }, signal),
    'terminal:open': async ({ hostId, slotId, mode }, { signal }) => {
      // The ticket is minted with the admin token here in main; the renderer only ever sees the ticket.
      const ticket = await agent(hostId).call(
        adminApi.createTerminalTicket,
        { params: { id: slotId }, body: { mode } },
        signal,
      );
      return { url: `${hosts.socketBase(hostId)}${ticket.path}`, expiresAt: ticket.expiresAt };
    },
  };
}
