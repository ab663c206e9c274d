/**
 * The IPC channel names: the only strings the preload lets through. Kept free of zod so the preload, which imports
 * no packages, can import it.
 */
export const INVOKE_CHANNELS = [
  'app:info',
  'app:preferences',
  'app:set-preferences',
  'secrets:status',
  'secrets:unlock',
  'hosts:list',
  'hosts:create',
  'hosts:update',
  'hosts:remove',
  'hosts:connect',
  'hosts:disconnect',
  'hosts:trust-key',
  'hosts:ssh-config',
  'slots:list',
  'slots:create',
  'slots:start',
  'slots:stop',
  'slots:restart',
  'slots:update',
  'slots:delete',
  'slots:events',
  'terminal:open',
  'users:list',
  'users:create',
  'users:update',
  'users:delete',
  'keys:list',
  'keys:create',
  'keys:update',
  'keys:revoke',
  'keys:rotate',
  'quotas:get',
  'quotas:set',
  'usage:summary',
  'usage:rows',
  'usage:export',
  'gateway:status',
  'gateway:update',
  'gateway:set-upstream-key',
  'gateway:test-upstream',
  'gateway:refusals',
  'gateway:refusal-count',
  'aws:profiles',
  'aws:accounts',
  'aws:account-create',
  'aws:account-update',
  'aws:account-remove',
  'aws:instances',
  'aws:instance-action',
  'aws:launch-options',
  'aws:launch',
  'aws:link-host',
  'aws:ssh-access',
  'hosts:start-and-connect',
  'deploy:status',
  'deploy:run',
  'deploy:cancel',
  'idle:status',
  'idle:set',
  'idle:keep-awake',
  'signin:settings',
  'signin:update',
  'signin:set-github',
  'signin:pending',
  'users:sign-in',
  'users:unlock',
  'users:invite',
  'users:sessions',
  'users:revoke-session',
  'users:revoke-sessions',
  'users:approve',
  'users:link-github',
  'users:unlink-github',
  'shares:list',
  'shares:create',
  'shares:revoke',
  'audit:list',
  'audit:export',
  // Operations (issue 13): each area adds its channels under its own line.
  // ops:health channels
  'health:details',
  'health:series',
  'health:metrics-settings',
  'health:set-metrics',
  // ops:alerts channels
  'alerts:list',
  'alerts:read',
  'alerts:rules',
  'alerts:set-rules',
  'alerts:webhook',
  'alerts:set-webhook',
  'alerts:test-webhook',
  // ops:logs channels
  'logs:sources',
  'logs:read',
  'logs:download',
  // ops:backups channels
  'backups:list',
  'backups:run',
  'backups:set-settings',
  'backups:key',
  'backups:register-key',
  'backups:delete',
  'backups:download',
  'backups:upload',
  'backups:restore',
  'backups:upload-picked',
  'backups:export-key',
] as const;
export type InvokeChannel = (typeof INVOKE_CHANNELS)[number];

export const EVENT_CHANNELS = [
  'hosts:status',
  'hosts:changed',
  'aws:progress',
  'deploy:progress',
  // ops:health events
  // ops:alerts events
  'alerts:changed',
  // ops:logs events
  // ops:backups events
  'backups:progress',
] as const;
export type EventChannel = (typeof EVENT_CHANNELS)[number];

/** Cancels a running invoke by its request id. */
export const CANCEL_CHANNEL = 'ipc:cancel';

export const isInvokeChannel = (value: unknown): value is InvokeChannel =>
  typeof value === 'string' && (INVOKE_CHANNELS as readonly string[]).includes(value);

export const isEventChannel = (value: unknown): value is EventChannel =>
  typeof value === 'string' && (EVENT_CHANNELS as readonly string[]).includes(value);
