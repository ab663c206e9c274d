import { adminApi, USAGE_EXPORT_PATH } from '../../../remote-agent/src/contract/index';
import type { IpcParsedInput, Preferences, UsageExportResult } from '../../shared/ipc/contract';
import { IpcErrorCode } from '../../shared/ipc/errors';
import type { AgentClient } from '../services/agent/agent-client';
import type { AwsService } from '../services/aws/aws-service';
import type { SecretVault } from '../services/secrets/vault';
import type { Store } from '../services/db/store';
import type { DeployService } from '../services/deploy/deploy-service';
import type { HostService } from '../services/hosts/hosts';
import { readSshConfig } from '../services/hosts/ssh-config';
import { exportFromAgent, type AgentExport } from './agent-export';
import type { Handlers } from './dispatch';
import type { EventBus } from './events';
import { createCloudHandlers, createDeployHandlers } from './handlers-cloud';
import { createPortalHandlers } from './handlers-portal';
import { createHealthHandlers } from './handlers-health';
import { createAlertsHandlers } from './handlers-alerts';
import { createLogsHandlers } from './handlers-logs';
import { createBackupsHandlers } from './handlers-backups';

export interface HandlerServices {
  store: Store;
  vault: SecretVault;
  hosts: HostService;
  app: { name: string; version: string; mode: 'electron' | 'browser'; dataDir: string };
  sshConfigFile?: string;
  /**
   * The Electron app's save dialog: the file the admin picked for an export, or null when they cancelled. Browser
   * mode has none: the export's content goes back to the page, which downloads it.
   */
  pickSaveFile?: (suggestedName: string) => Promise<string | null>;
  /** The Electron app's open dialog for one file (a backup to upload); browser mode has none. */
  pickOpenFile?: () => Promise<string | null>;
  /**
   * The origin of the page the renderer runs in (browser mode: the web host's; Electron: `app://slotdeck` or the dev
   * server's). Terminal tickets are bound to it, so the agent takes them from that page only; null when unknown.
   */
  rendererOrigin?: () => string | null;
  /** Deploying the agent to hosts (issue 11); without it the deploy channels say they are unavailable. */
  deploy?: DeployService;
  events?: EventBus;
  /** AWS accounts and EC2 (issue 11); without it the aws:* channels say they are unavailable. */
  aws?: AwsService;
}

export { BROWSER_EXPORT_MAX_BYTES } from './agent-export';

export const DEFAULT_PREFERENCES: Preferences = { theme: 'system', consoles: [], selectedHostId: 'local' };

export function readPreferences(store: Store): Preferences {
  return { ...DEFAULT_PREFERENCES, ...(store.preference<Partial<Preferences>>('preferences') ?? {}) };
}

/** Every IPC channel's handler. The Handlers type makes a missing one a compile error. */
export function createHandlers(services: HandlerServices): Handlers {
  const { store, vault, hosts } = services;
  const agent = (hostId: string) => hosts.client(hostId);
  const exportUsage = (input: IpcParsedInput<'usage:export'>, signal: AbortSignal) =>
    exportUsageRows(agent(input.hostId), input, services.pickSaveFile, signal);
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
    'slots:update': ({ hostId, slotId, changes }, { signal }) =>
      agent(hostId).call(adminApi.updateSlot, { params: { id: slotId }, body: changes }, signal),
    'slots:delete': async ({ hostId, slotId, workDir }, { signal }) => {
      await agent(hostId).call(adminApi.deleteSlot, { params: { id: slotId }, query: { workDir } }, signal);
      return { ok: true as const };
    },
    'slots:events': ({ hostId, slotId }, { signal }) =>
      agent(hostId).call(adminApi.listSlotEvents, { params: { id: slotId }, query: { limit: 50 } }, signal),
    'terminal:open': async ({ hostId, slotId, mode }, { signal }) => {
      // The ticket is minted with the admin token here in main; the renderer only ever sees the ticket.
      const origin = services.rendererOrigin?.() ?? null;
      const ticket = await agent(hostId).call(
        adminApi.createTerminalTicket,
        { params: { id: slotId }, body: { mode, ...(origin ? { origin } : {}) } },
        signal,
      );
      return { url: `${hosts.socketBase(hostId)}${ticket.path}`, expiresAt: ticket.expiresAt };
    },
    'users:list': ({ hostId, search, includeDeleted, limit, offset }, { signal }) =>
      agent(hostId).call(
        adminApi.listUsers,
        { query: { ...(search ? { search } : {}), includeDeleted: includeDeleted ? 'true' : 'false', limit, offset } },
        signal,
      ),
    'users:create': ({ hostId, user }, { signal }) => agent(hostId).call(adminApi.createUser, { body: user }, signal),
    'users:update': ({ hostId, userId, changes }, { signal }) =>
      agent(hostId).call(adminApi.updateUser, { params: { id: userId }, body: changes }, signal),
    'users:delete': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(adminApi.deleteUser, { params: { id: userId } }, signal),
    'keys:list': ({ hostId, userId }, { signal }) =>
      agent(hostId).call(adminApi.listKeys, { params: { id: userId } }, signal),
    // The answer carries the key in clear, once: it goes to the renderer to be shown and is never logged or kept.
    'keys:create': ({ hostId, userId, key }, { signal }) =>
      agent(hostId).call(adminApi.createKey, { params: { id: userId }, body: key }, signal),
    'keys:update': ({ hostId, keyId, changes }, { signal }) =>
      agent(hostId).call(adminApi.updateKey, { params: { keyId }, body: changes }, signal),
    'keys:revoke': ({ hostId, keyId }, { signal }) =>
      agent(hostId).call(adminApi.revokeKey, { params: { keyId } }, signal),
    'keys:rotate': ({ hostId, keyId, graceSeconds }, { signal }) =>
      agent(hostId).call(adminApi.rotateKey, { params: { keyId }, body: { graceSeconds } }, signal),
    'quotas:get': (input, { signal }) =>
      input.subject === 'user'
        ? agent(input.hostId).call(adminApi.getUserQuotas, { params: { id: input.userId } }, signal)
        : agent(input.hostId).call(adminApi.getKeyQuotas, { params: { keyId: input.keyId } }, signal),
    'quotas:set': (input, { signal }) =>
      input.subject === 'user'
        ? agent(input.hostId).call(
            adminApi.setUserQuotas,
            { params: { id: input.userId }, body: { quotas: input.quotas } },
            signal,
          )
        : agent(input.hostId).call(
            adminApi.setKeyQuotas,
            { params: { keyId: input.keyId }, body: { quotas: input.quotas } },
            signal,
          ),
    'usage:summary': ({ hostId, ...query }, { signal }) => agent(hostId).call(adminApi.usageSummary, { query }, signal),
    'usage:rows': ({ hostId, ...query }, { signal }) => agent(hostId).call(adminApi.usageRows, { query }, signal),
    'usage:export': (input, { signal }) => exportUsage(input, signal),
    'gateway:status': ({ hostId }, { signal }) => agent(hostId).call(adminApi.gatewayStatus, {}, signal),
    'gateway:update': ({ hostId, changes }, { signal }) =>
      agent(hostId).call(adminApi.updateGateway, { body: changes }, signal),
    'gateway:set-upstream-key': ({ hostId, apiKey }, { signal }) =>
      agent(hostId).call(adminApi.setUpstreamKey, { body: { apiKey } }, signal),
    'gateway:test-upstream': ({ hostId }, { signal }) => agent(hostId).call(adminApi.testUpstream, {}, signal),
    'gateway:refusals': ({ hostId, query }, { signal }) => agent(hostId).call(adminApi.listRefusals, { query }, signal),
    'gateway:refusal-count': ({ hostId, query }, { signal }) =>
      agent(hostId).call(adminApi.countRefusals, { query }, signal),
    ...createCloudHandlers(services.aws),
    ...createDeployHandlers(services),
    ...createPortalHandlers(services),
    ...createHealthHandlers(services),
    ...createAlertsHandlers(services),
    ...createLogsHandlers(services),
    ...createBackupsHandlers(services),
  };
}

/**
 * Fetches a usage export from the agent: into the file the admin picked (the Electron app) or back to the page
 * (browser mode), as exportFromAgent does.
 */
export async function exportUsageRows(
  client: AgentClient,
  { hostId, format, ...filters }: IpcParsedInput<'usage:export'>,
  pickSaveFile: ((suggestedName: string) => Promise<string | null>) | undefined,
  signal: AbortSignal,
): Promise<UsageExportResult> {
  const exported: AgentExport = {
    path: USAGE_EXPORT_PATH,
    query: { ...filters, format },
    fileName: `usage-${hostId}-${filters.from.slice(0, 10)}-to-${filters.to.slice(0, 10)}.${format}`,
    mimeType: format === 'csv' ? 'text/csv' : 'application/json',
    writeFailedCode: IpcErrorCode.USAGE_EXPORT_FAILED,
    tooLargeCode: IpcErrorCode.USAGE_EXPORT_TOO_LARGE,
    narrowHint: 'Pick a shorter range or one user',
  };
  return exportFromAgent(client, exported, pickSaveFile, signal);
}
