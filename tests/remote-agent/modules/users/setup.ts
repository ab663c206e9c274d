import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { AppError } from '../../../../remote-agent/src/errors.js';
import {
  CreateKeyBody,
  CreateUserBody,
  ListUsersQuery,
  RotateKeyBody,
  UpdateKeyBody,
  UpdateUserBody,
} from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { UserService } from '../../../../remote-agent/src/modules/users/service.js';
import { KeyVerifier } from '../../../../remote-agent/src/modules/users/verifier.js';

/** A user-and-key world on a real SQLite file, with a clock the test moves instead of sleeping. */
export interface World {
  dir: string;
  file: string;
  db: Db;
  verifier: KeyVerifier;
  users: UserService;
  clock: { now: () => number; advance: (ms: number) => void; set: (ms: number) => void };
  close: () => void;
}

export const START = Date.parse('2026-03-01T12:00:00.000Z');

export function makeWorld(): World {
  const dir = mkdtempSync(join(tmpdir(), 'sd-users-'));
  const file = join(dir, 'agent.db');
  const db = openDatabase(file);
  let nowMs = START;
  const clock = {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
    set: (ms: number) => {
      nowMs = ms;
    },
  };
  const verifier = new KeyVerifier(db, clock.now);
  const users = new UserService({ db, verifier, now: clock.now });
  return {
    dir,
    file,
    db,
    verifier,
    users,
    clock,
    close: () => {
      verifier.close();
      if (db.open) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Bodies go through the contract's schemas, as the routes do, so that defaults and normalisation apply.
export const userBody = (input: CreateUserBody) => CreateUserBody.parse(input);
export const userChanges = (input: UpdateUserBody) => UpdateUserBody.parse(input);
export const keyBody = (input: CreateKeyBody) => CreateKeyBody.parse(input);
export const keyChanges = (input: Parameters<typeof UpdateKeyBody.parse>[0]) => UpdateKeyBody.parse(input);
export const rotation = (graceSeconds?: number) =>
  RotateKeyBody.parse(graceSeconds === undefined ? {} : { graceSeconds });
export const listQuery = (input: Record<string, string> = {}) => ListUsersQuery.parse(input);

/** Runs `action` and returns the AppError it throws (failing the test when it throws nothing or something else). */
export function appError(action: () => unknown): AppError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected an AppError, but the call succeeded');
}
