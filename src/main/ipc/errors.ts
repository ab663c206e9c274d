import type { AgentErrorCode } from '../../../remote-agent/src/contract/errors';
import type { IpcErrorCode } from '../../shared/ipc/errors';

/**
 * An error for the renderer: a stable code and a message that says what to do next. An agent's own code (such as
 * USER_NAME_TAKEN) is passed through as is, so the renderer can branch on it.
 */
export class IpcError extends Error {
  constructor(
    readonly code: IpcErrorCode | AgentErrorCode,
    message: string,
    readonly details?: Record<string, string>,
  ) {
    super(message);
    this.name = 'IpcError';
  }
}

export const isIpcError = (error: unknown): error is IpcError => error instanceof IpcError;
