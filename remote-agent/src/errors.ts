import type { AgentErrorCode, ValidationIssue } from './contract/index.js';

/** An error meant for the API client: a stable code, an HTTP status and a message saying what to do next. */
export class AppError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    readonly status: number,
    message: string,
    readonly issues?: ValidationIssue[],
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;
