import type { IpcErrorCode } from '../../shared/ipc/errors';

/** An error for the renderer: a stable code and a message that says what to do next. */
export class IpcError extends Error {
  constructor(
    readonly code: IpcErrorCode,
    message: string,
    readonly details?: Record<string, string>,
  ) {
    super(message);
    this.name = 'IpcError';
  }
}

export const isIpcError = (error: unknown): error is IpcError => error instanceof IpcError;
