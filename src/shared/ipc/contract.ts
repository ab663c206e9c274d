import { z } from 'zod';
import {
  ApiKey,
  ApiKeyId,
  ApiKeyList,
  CreatedKey,
  CreateKeyBody,
  CreateSlotBody,
  CreateUserBody,
  GatewayStatus,
  QuotaList,
  RefusalCount,
  RefusalCountQuery,
  RefusalList,
  RefusalListQuery,
  RotateKeyBody,
  SetQuotasBody,
  SetUpstreamKeyBody,
  Slot,
  SlotEvent,
  SlotId,
  TerminalMode,
  UpdateGatewayBody,
  UpdateSlotBody,
  UpdateKeyBody,
  UpstreamTestResult,
  UpdateUserBody,
  UsageExportQuery,
  UsageRows,
  UsageRowsQuery,
  UsageSummary,
  UsageSummaryQuery,
  User,
  UserId,
  UserList,
} from '../../../remote-agent/src/contract/index';
import type { EventChannel, InvokeChannel } from './channels';
import { cloudEventContract, cloudIpcContract, InstanceRef } from './contract-cloud';
import { portalIpcContract } from './contract-portal';
import { healthEventContract, healthIpcContract } from './contract-health';
import { alertsEventContract, alertsIpcContract } from './contract-alerts';
import { logsEventContract, logsIpcContract } from './contract-logs';
import { backupsEventContract, backupsIpcContract } from './contract-backups';

export * from './contract-cloud';
export * from './contract-portal';
export * from './contract-health';
export * from './contract-alerts';
export * from './contract-logs';
export * from './contract-backups';

/** The agent's types the renderer shows, re-exported: the renderer reaches the agent only through this contract. */
export type {
  ApiKey,
  CreatedKey,
  CreateKeyBody,
  CreateSlotBody,
  CreateUserBody,
  GatewayStatus,
  Quota,
  QuotaStatus,
  QuotaWindow,
  KeyScope,
  RateLimit,
  RefusalCount,
  RefusalRow,
  Slot,
  SlotEvent,
  TerminalMode,
  UpdateUserBody,
  UsageGroupBy,
  UsageRow,
  UsageSummary,
  UsageTotals,
  UpstreamTestResult,
  User,
  UserRole,
} from '../../../remote-agent/src/contract/index';

export const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });

export const HostState = z.enum(['disconnected', 'connecting', 'connected', 'reconnecting', 'failed']);
export type HostState = z.infer<typeof HostState>;

export const IpcErrorShape = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.string()).optional(),
});
export type IpcErrorShape = z.infer<typeof IpcErrorShape>;

export const HostStatus = z.object({
  state: HostState,
  since: z.string(),
  /** While reconnecting: which attempt comes next and when. */
  attempt: z.number().optional(),
  nextRetryAt: z.string().optional(),
  error: IpcErrorShape.optional(),
  /** What the connected agent said on /health, compared with the agent this panel bundles. */
  agent: z
    .object({
      version: z.string(),
      contractVersion: z.number(),
      /** `available`: the panel bundles a newer agent ("Update agent"). */
      update: z.enum(['current', 'available', 'newer-than-panel']),
    })
    .optional(),
});
export type HostStatus = z.infer<typeof HostStatus>;

const hostName = z
  .string()
  .trim()
  .min(1, { message: 'give the host a name' })
  .max(64, { message: 'at most 64 characters' });
const address = z
  .string()
  .trim()
  .min(1, { message: 'enter the host name or IP address' })
  .max(253)
  .regex(/^[A-Za-z0-9.:[\]_-]+$/, { message: 'must be a host name or an IP address' });
const port = z
  .int({ message: 'must be a whole number' })
  .min(1, { message: 'ports are 1-65535' })
  .max(65535, { message: 'ports are 1-65535' });
const user = z
  .string()
  .trim()
  .min(1, { message: 'enter the user to log in as' })
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, { message: 'must be a user name (letters, digits, _ . -)' });

export const SshAuthInput = z.discriminatedUnion('method', [
  z
    .strictObject({
      method: z.literal('key'),
      /** A private key pasted in (OpenSSH or PEM); kept only in the secret store. */
      privateKey: z.string().max(32_768).optional(),
      /** Or a key file on this computer, read at each connection. */
      keyPath: z.string().trim().max(4096).optional(),
      passphrase: z.string().max(1024).optional(),
    })
    .refine((auth) => Boolean(auth.privateKey?.trim()) !== Boolean(auth.keyPath), {
      message: 'paste a private key or give the path of a key file (one of the two)',
      path: ['privateKey'],
    }),
  z.strictObject({ method: z.literal('agent') }),
]);
export type SshAuthInput = z.infer<typeof SshAuthInput>;

export const SshHostInput = z.strictObject({
  name: hostName,
  address,
  port: port.default(22),
  user,
  auth: SshAuthInput,
  /** Where the agent listens on the host's loopback. */
  agentPort: port.default(7420),
  /** How to run the agent's CLI on the host (to read its admin token). */
  agentCommand: z.string().trim().min(1).max(512).default('slotdeck-agent'),
  /** The agent's admin token; read over SSH with `<agentCommand> token` when left out. */
  adminToken: z.string().trim().min(20).max(256).optional(),
});
export type SshHostInput = z.input<typeof SshHostInput>;

export const Host = z.object({
  id: HostId,
  name: z.string(),
  kind: z.enum(['local', 'ssh']),
  address: z.string().nullable(),
  port: z.number().nullable(),
  user: z.string().nullable(),
  auth: z
    .object({
      method: z.enum(['key', 'agent']),
      keyPath: z.string().nullable(),
      storedKey: z.boolean(),
      storedPassphrase: z.boolean(),
    })
    .nullable(),
  agentPort: z.number().nullable(),
  agentCommand: z.string().nullable(),
  storedAdminToken: z.boolean(),
  pinnedKey: z.object({ algorithm: z.string(), fingerprint: z.string(), pinnedAt: z.string() }).nullable(),
  /** The EC2 instance the profile is linked to: its address is looked up from it at every connect. */
  instance: InstanceRef.nullable(),
  /** When the agent last stopped the machine by the idle policy (the panel saw it announce the stop). */
  idleStoppedAt: z.string().nullable(),
  status: HostStatus,
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Host = z.infer<typeof Host>;

export const SecretsStatus = z.object({
  /** `keychain`: the OS keychain. `file`: an encrypted file, because this system has no keychain. */
  backend: z.enum(['keychain', 'file']),
  state: z.enum(['ready', 'locked', 'uninitialized']),
  detail: z.string(),
});
export type SecretsStatus = z.infer<typeof SecretsStatus>;

export const Theme = z.enum(['system', 'light', 'dark']);
export const ConsoleRef = z.object({ hostId: HostId, slotId: SlotId, mode: TerminalMode });
export type ConsoleRef = z.infer<typeof ConsoleRef>;
export const Preferences = z.object({
  theme: Theme,
  consoles: z.array(ConsoleRef).max(32),
  selectedHostId: HostId.nullable(),
  /** The host the admin views (users, usage, gateway) show, picked with their own picker. */
  adminHostId: HostId.nullable().optional(),
  /** Slots whose programs may write the clipboard (OSC 52) without asking each time. */
  clipboardAlwaysAllowed: z
    .array(z.strictObject({ hostId: HostId, slotId: SlotId }))
    .max(256)
    .optional(),
  /** The console tab that was active, shown again at the next start (a reload in browser mode). */
  activeConsole: ConsoleRef.nullable().optional(),
});
export type Preferences = z.infer<typeof Preferences>;

const slotRef = z.strictObject({ hostId: HostId, slotId: SlotId });
const userRef = z.strictObject({ hostId: HostId, userId: UserId });
const keyRef = z.strictObject({ hostId: HostId, keyId: ApiKeyId });
/** Quotas belong to a user or to one of their keys. */
const quotaOwner = z.discriminatedUnion('subject', [
  userRef.extend({ subject: z.literal('user') }),
  keyRef.extend({ subject: z.literal('key') }),
]);
export type QuotaOwner = z.input<typeof quotaOwner>;

/**
 * A usage export: in the Electron app main writes it to the file the admin picked (`savedTo`, or null when they
 * cancelled); in browser mode main has no file dialog, so the content comes back for the page to download.
 */
export const UsageExportResult = z.object({
  fileName: z.string(),
  mimeType: z.string(),
  bytes: z.number(),
  savedTo: z.string().nullable(),
  content: z.string().nullable(),
});
export type UsageExportResult = z.infer<typeof UsageExportResult>;
const nothing = z.strictObject({});
const ok = z.object({ ok: z.literal(true) });

/** One input and one output schema per invoke channel; main validates inputs and the renderer relies on outputs. */
export const ipcContract = {
  'app:info': {
    input: nothing,
    output: z.object({
      name: z.string(),
      version: z.string(),
      mode: z.enum(['electron', 'browser']),
      platform: z.string(),
      dataDir: z.string(),
      secrets: SecretsStatus,
      /** Things the admin should know once, such as a settings database that had to be set aside. */
      notices: z.array(z.string()),
    }),
  },
  'app:preferences': { input: nothing, output: Preferences },
  'app:set-preferences': { input: Preferences.partial().strict(), output: Preferences },
  'secrets:status': { input: nothing, output: SecretsStatus },
  'secrets:unlock': {
    input: z.strictObject({ passphrase: z.string().min(8, { message: 'use at least 8 characters' }).max(1024) }),
    output: SecretsStatus,
  },
  'hosts:list': { input: nothing, output: z.object({ hosts: z.array(Host) }) },
  'hosts:create': { input: SshHostInput, output: Host },
  'hosts:update': {
    input: z.strictObject({ id: HostId, changes: SshHostInput.partial().strict() }),
    output: Host,
  },
  'hosts:remove': { input: z.strictObject({ id: HostId }), output: ok },
  'hosts:connect': { input: z.strictObject({ id: HostId }), output: Host },
  'hosts:disconnect': { input: z.strictObject({ id: HostId }), output: Host },
  'hosts:trust-key': {
    input: z.strictObject({
      id: HostId,
      /** The SHA256 fingerprint the admin saw and confirmed; refused if the host now presents another. */
      fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, { message: 'must be a SHA256 fingerprint' }),
      /** Needed to replace a key that is already pinned. */
      replace: z.boolean().default(false),
    }),
    output: Host,
  },
  'hosts:ssh-config': {
    input: nothing,
    output: z.object({
      file: z.string(),
      entries: z.array(
        z.object({
          alias: z.string(),
          address: z.string(),
          port: z.number(),
          user: z.string().nullable(),
          keyPath: z.string().nullable(),
        }),
      ),
    }),
  },
  'slots:list': { input: z.strictObject({ hostId: HostId }), output: z.object({ slots: z.array(Slot) }) },
  'slots:create': { input: z.strictObject({ hostId: HostId, slot: CreateSlotBody }), output: Slot },
  'slots:start': { input: slotRef, output: Slot },
  'slots:stop': { input: slotRef, output: Slot },
  'slots:restart': { input: slotRef, output: Slot },
  'slots:update': { input: slotRef.extend({ changes: UpdateSlotBody }), output: Slot },
  'slots:delete': {
    input: slotRef.extend({ workDir: z.enum(['keep', 'remove']).default('keep') }),
    output: ok,
  },
  'slots:events': { input: slotRef, output: z.object({ events: z.array(SlotEvent) }) },
  'terminal:open': {
    input: slotRef.extend({ mode: TerminalMode.default('writable') }),
    output: z.object({ url: z.string(), expiresAt: z.string() }),
  },
  'users:list': {
    input: z.strictObject({
      hostId: HostId,
      search: z.string().trim().max(100).optional(),
      includeDeleted: z.boolean().default(false),
      limit: z.int().min(1).max(200).default(50),
      offset: z.int().min(0).max(1_000_000).default(0),
    }),
    output: UserList,
  },
  'users:create': { input: z.strictObject({ hostId: HostId, user: CreateUserBody }), output: User },
  'users:update': { input: userRef.extend({ changes: UpdateUserBody }), output: User },
  'users:delete': { input: userRef, output: User },
  'keys:list': { input: userRef, output: ApiKeyList },
  'keys:create': { input: userRef.extend({ key: CreateKeyBody }), output: CreatedKey },
  'keys:update': { input: keyRef.extend({ changes: UpdateKeyBody }), output: ApiKey },
  'keys:revoke': { input: keyRef, output: ApiKey },
  'keys:rotate': { input: keyRef.extend(RotateKeyBody.shape), output: CreatedKey },
  'quotas:get': { input: quotaOwner, output: QuotaList },
  'quotas:set': {
    input: z.discriminatedUnion('subject', [
      userRef.extend({ subject: z.literal('user'), quotas: SetQuotasBody.shape.quotas }),
      keyRef.extend({ subject: z.literal('key'), quotas: SetQuotasBody.shape.quotas }),
    ]),
    output: QuotaList,
  },
  'usage:summary': { input: UsageSummaryQuery.extend({ hostId: HostId }), output: UsageSummary },
  'usage:rows': { input: UsageRowsQuery.extend({ hostId: HostId }), output: UsageRows },
  'usage:export': { input: UsageExportQuery.extend({ hostId: HostId }), output: UsageExportResult },
  'gateway:status': { input: z.strictObject({ hostId: HostId }), output: GatewayStatus },
  'gateway:update': { input: z.strictObject({ hostId: HostId, changes: UpdateGatewayBody }), output: GatewayStatus },
  'gateway:set-upstream-key': { input: SetUpstreamKeyBody.extend({ hostId: HostId }), output: GatewayStatus },
  'gateway:test-upstream': { input: z.strictObject({ hostId: HostId }), output: UpstreamTestResult },
  'gateway:refusals': { input: z.strictObject({ hostId: HostId, query: RefusalListQuery }), output: RefusalList },
  'gateway:refusal-count': {
    input: z.strictObject({ hostId: HostId, query: RefusalCountQuery }),
    output: RefusalCount,
  },
  ...cloudIpcContract,
  ...portalIpcContract,
  ...healthIpcContract,
  ...alertsIpcContract,
  ...logsIpcContract,
  ...backupsIpcContract,
} satisfies Record<InvokeChannel, { input: z.ZodType; output: z.ZodType }>;

/** One payload schema per event channel. */
export const eventContract = {
  'hosts:status': z.object({ hostId: HostId, status: HostStatus }),
  'hosts:changed': z.object({}),
  ...cloudEventContract,
  ...healthEventContract,
  ...alertsEventContract,
  ...logsEventContract,
  ...backupsEventContract,
} satisfies Record<EventChannel, z.ZodType>;

export type IpcInput<C extends InvokeChannel> = z.input<(typeof ipcContract)[C]['input']>;
export type IpcParsedInput<C extends InvokeChannel> = z.output<(typeof ipcContract)[C]['input']>;
export type IpcOutput<C extends InvokeChannel> = z.output<(typeof ipcContract)[C]['output']>;
export type IpcEvent<E extends EventChannel> = z.output<(typeof eventContract)[E]>;

/** Every IPC answer: data, or a stable DOMAIN_REASON code with a message saying what to do next. */
export type IpcResult<T> = { ok: true; data: T } | { ok: false; error: IpcErrorShape };
