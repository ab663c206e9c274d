/**
 * The IPC channel names: the only strings the preload lets through. Kept free of zod so the preload, which
 * imports no packages, can import it.
 */
export const INVOKE_CHANNELS = ['app:info'] as const;
export type InvokeChannel = (typeof INVOKE_CHANNELS)[number];

export const EVENT_CHANNELS = [] as const;
export type EventChannel = (typeof EVENT_CHANNELS)[number];

export const isInvokeChannel = (value: unknown): value is InvokeChannel =>
  typeof value === 'string' && (INVOKE_CHANNELS as readonly string[]).includes(value);
