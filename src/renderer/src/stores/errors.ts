import { IpcClientError } from '../lib/ipc';

export interface ErrorShape {
  code: string;
  message: string;
}

/** What a store keeps of a failure: the code to branch on and the message main wrote for the admin. */
export const errorShape = (error: unknown): ErrorShape =>
  error instanceof IpcClientError
    ? { code: error.code, message: error.message }
    : { code: 'UNKNOWN', message: error instanceof Error ? error.message : String(error) };
