import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import type { UsageEvent } from '../../../../remote-agent/src/modules/usage/recorder.js';

export interface TempDb {
  dir: string;
  file: string;
  db: Db;
  cleanup: () => void;
}

/** A migrated agent database in a fresh temp dir. */
export function tempDb(): TempDb {
  const dir = mkdtempSync(join(tmpdir(), 'sd-usage-'));
  const file = join(dir, 'agent.db');
  const temp: TempDb = {
    dir,
    file,
    db: openDatabase(file),
    cleanup: () => {
      // The test may have reopened the database: close whichever is current.
      if (temp.db.open) temp.db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return temp;
}

export function addUser(db: Db, id: string, username: string, deleted = false): void {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO users (id, username, role, active, created_at, updated_at, deleted_at)
     VALUES (?, ?, 'member', 1, ?, ?, ?)`,
  ).run(id, username, now, now, deleted ? now : null);
}

export function addKey(db: Db, id: string, userId: string, name: string, prefix: string): void {
  db.prepare(
    `INSERT INTO api_keys (id, user_id, name, hash, prefix, scopes, created_at)
     VALUES (?, ?, ?, randomblob(32), ?, 'gateway', ?)`,
  ).run(id, userId, name, prefix, Date.now());
}

/** A successful request of user u_aaaaaaaaaa with key k_aaaaaaaaaa, changed by `overrides`. */
export function usageEvent(overrides: Partial<UsageEvent> = {}): UsageEvent {
  const startedAt = overrides.startedAt ?? Date.UTC(2026, 10, 10, 12, 0, 0);
  return {
    requestId: 'req_1',
    userId: 'u_aaaaaaaaaa',
    keyId: 'k_aaaaaaaaaa',
    slotId: null,
    model: 'claude-sonnet-4-5-20250929',
    provider: 'anthropic',
    inputTokens: 100,
    outputTokens: 50,
    cacheCreationTokens: 0,
    cacheReadTokens: 0,
    status: 'success',
    errorType: null,
    httpStatus: 200,
    latencyMs: 120,
    ttfbMs: 40,
    endedAt: startedAt + 120,
    ...overrides,
    startedAt,
  };
}

export const totalTokensOf = (e: UsageEvent): number =>
  e.inputTokens + e.outputTokens + e.cacheCreationTokens + e.cacheReadTokens;
