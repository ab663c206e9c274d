import type { InvokeChannel } from '../../shared/ipc/channels';
import { ipcContract, type IpcOutput, type IpcParsedInput, type IpcResult } from '../../shared/ipc/contract';
import { IpcErrorCode } from '../../shared/ipc/errors';
import type { Logger } from '../log';
import { isIpcError } from './errors';

export interface HandlerContext {
  signal: AbortSignal;
}

export type Handler<C extends InvokeChannel> = (
  input: IpcParsedInput<C>,
  context: HandlerContext,
) => Promise<IpcOutput<C>>;

/** One handler per channel: a channel without a handler is a compile error. */
export type Handlers = { [C in InvokeChannel]: Handler<C> };

/**
 * The one way into main's handlers, for every transport: the input is parsed with the channel's schema, the
 * handler gets an AbortSignal, and whatever happens the caller gets `{ok, data}` or `{ok: false, error}`.
 */
export class Dispatcher {
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly handlers: Handlers,
    private readonly log: Logger,
  ) {}

  async dispatch(channel: InvokeChannel, rawInput: unknown, requestId?: string): Promise<IpcResult<unknown>> {
    const parsed = ipcContract[channel].input.safeParse(rawInput ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`);
      return {
        ok: false,
        error: {
          code: IpcErrorCode.IPC_INPUT_INVALID,
          message: problems.join('; '),
          details: { fields: problems.join('\n') },
        },
      };
    }
    const controller = new AbortController();
    if (requestId) this.running.set(requestId, controller);
    try {
      const handler = this.handlers[channel] as Handler<InvokeChannel>;
      const data = await handler(parsed.data, { signal: controller.signal });
      if (controller.signal.aborted)
        return { ok: false, error: { code: IpcErrorCode.IPC_CANCELLED, message: 'Cancelled.' } };
      return { ok: true, data };
    } catch (error) {
      if (isIpcError(error))
        return {
          ok: false,
          error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) },
        };
      if (controller.signal.aborted)
        return { ok: false, error: { code: IpcErrorCode.IPC_CANCELLED, message: 'Cancelled.' } };
      this.log.error(`IPC ${channel} failed`, error);
      return {
        ok: false,
        error: {
          code: IpcErrorCode.IPC_INTERNAL,
          message: `Slotdeck hit an unexpected error (${(error as Error).message}). It is in the log; try again.`,
        },
      };
    } finally {
      if (requestId) this.running.delete(requestId);
    }
  }

  cancel(requestId: string): void {
    this.running.get(requestId)?.abort();
  }
}
