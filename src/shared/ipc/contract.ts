import { z } from 'zod';
import type { InvokeChannel } from './channels';

/** One input and one output schema per invoke channel; main validates both ends. */
export const ipcContract = {
  'app:info': {
    input: z.strictObject({}),
    output: z.object({ name: z.string(), version: z.string(), mode: z.enum(['electron', 'browser']) }),
  },
} satisfies Record<InvokeChannel, { input: z.ZodType; output: z.ZodType }>;

export type IpcInput<C extends InvokeChannel> = z.input<(typeof ipcContract)[C]['input']>;
export type IpcOutput<C extends InvokeChannel> = z.output<(typeof ipcContract)[C]['output']>;

/** Every IPC answer: data, or a stable DOMAIN_REASON code with a message saying what to do next. */
export type IpcResult<T> = { ok: true; data: T } | { ok: false; error: { code: string; message: string } };
