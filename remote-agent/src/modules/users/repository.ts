import type { Db } from '../../db/database.js';
import type { KeyScope, UserRole } from '../../contract/index.js';

export interface UserRow {
  id: string;
  username: string;
  email: string | null;
  displayName: string | null;
  role: UserRole;
  active: boolean;
  /** Keys that are neither revoked nor expired at the time of the query. */
  liveKeys: number;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

/** Times are epoch milliseconds: the gateway compares them on every request. */
export interface KeyRow {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  scopes: KeyScope[];
  expiresAt: number | null;
  revokedAt: number | null;
  rotatedTo: string | null;
  slotId: string | null;
  requestsPerMinute: number | null;
  concurrentStreams: number | null;
  lastUsedAt: number | null;
  createdAt: number;
}

export interface NewKey extends Omit<KeyRow, 'revokedAt' | 'rotatedTo' | 'lastUsedAt'> {
  hash: Buffer;
}

interface RawUser {
  id: string;
  username: string;
  email: string | null;
  display_name: string | null;
  role: UserRole;
  active: number;
  live_keys: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

/** An api_keys row as SQLite returns it (the hash left out: only the verifier reads it). */
export interface RawKey {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  scopes: string;
  expires_at: number | null;
  revoked_at: number | null;
  rotated_to: string | null;
  slot_id: string | null;
  requests_per_minute: number | null;
  concurrent_streams: number | null;
  last_used_at: number | null;
  created_at: number;
}

const fromRawUser = (raw: RawUser): UserRow => ({
  id: raw.id,
  username: raw.username,
  email: raw.email,
  displayName: raw.display_name,
  role: raw.role,
  active: raw.active === 1,
  liveKeys: raw.live_keys,
  createdAt: raw.created_at,
  updatedAt: raw.updated_at,
  deletedAt: raw.deleted_at,
});

const fromRawKey = (raw: RawKey): KeyRow => ({
  id: raw.id,
  userId: raw.user_id,
  name: raw.name,
  prefix: raw.prefix,
  scopes: parseScopes(raw.scopes),
  expiresAt: raw.expires_at,
  revokedAt: raw.revoked_at,
  rotatedTo: raw.rotated_to,
  slotId: raw.slot_id,
  requestsPerMinute: raw.requests_per_minute,
  concurrentStreams: raw.concurrent_streams,
  lastUsedAt: raw.last_used_at,
  createdAt: raw.created_at,
});

/** Scopes are stored as a JSON array of scope names. */
export const parseScopes = (stored: string): KeyScope[] => JSON.parse(stored) as KeyScope[];

// The key columns without the hash: it never leaves the repository (the verifier reads it with its own statement).
const KEY_COLUMNS = `id, user_id, name, prefix, scopes, expires_at, revoked_at, rotated_to, slot_id, requests_per_minute,
  concurrent_streams, last_used_at, created_at`;

// `@now` is the current time in epoch ms, so that "live" means the same in every query.
const USER_COLUMNS = `u.id, u.username, u.email, u.display_name, u.role, u.active, u.created_at, u.updated_at,
  u.deleted_at,
  (SELECT count(*) FROM api_keys k
    WHERE k.user_id = u.id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @now)) AS live_keys`;

// LIKE ignores ASCII case; search terms are matched literally: % and _ typed by the admin are not wildcards.
const USER_FILTER = `(@pattern IS NULL OR u.username LIKE @pattern ESCAPE '\\' OR u.email LIKE @pattern ESCAPE '\\'
    OR u.display_name LIKE @pattern ESCAPE '\\')
  AND (@includeDeleted = 1 OR u.deleted_at IS NULL)`;

interface UserFilterParams {
  pattern: string | null;
  includeDeleted: number;
}

export const likePattern = (search: string): string => `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export class UserNameTakenError extends Error {}

const isUniqueViolation = (error: unknown): boolean => (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';

export class UserRepository {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      getUser: db.prepare<[{ now: number; id: string }], RawUser>(
        `SELECT ${USER_COLUMNS} FROM users u WHERE u.id = @id`,
      ),
      listUsers: db.prepare<[UserFilterParams & { now: number; limit: number; offset: number }], RawUser>(
        `SELECT ${USER_COLUMNS} FROM users u WHERE ${USER_FILTER}
         ORDER BY u.username, u.created_at, u.id LIMIT @limit OFFSET @offset`,
      ),
      countUsers: db.prepare<[UserFilterParams], { total: number }>(
        `SELECT count(*) AS total FROM users u WHERE ${USER_FILTER}`,
      ),
      insertUser: db.prepare<[string, string, string | null, string | null, UserRole, number, string, string]>(
        `INSERT INTO users (id, username, email, display_name, role, active, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      softDeleteUser: db.prepare<[{ at: string; id: string }]>(
        'UPDATE users SET deleted_at = @at, updated_at = @at, active = 0 WHERE id = @id AND deleted_at IS NULL',
      ),
      revokeUserKeys: db.prepare<[number, string]>(
        'UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL',
      ),
      getKey: db.prepare<[string], RawKey>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`),
      listKeys: db.prepare<[string], RawKey>(
        `SELECT ${KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id`,
      ),
      insertKey: db.prepare<
        [
          string,
          string,
          string,
          Buffer,
          string,
          string,
          number | null,
          string | null,
          number | null,
          number | null,
          number,
        ]
      >(
        `INSERT INTO api_keys (id, user_id, name, hash, prefix, scopes, expires_at, slot_id, requests_per_minute,
           concurrent_streams, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      revokeKey: db.prepare<[number, string]>('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      revokeSlotKeys: db.prepare<[number, string]>(
        'UPDATE api_keys SET revoked_at = ? WHERE slot_id = ? AND revoked_at IS NULL',
      ),
      markRotated: db.prepare<[number, string, string]>(
        'UPDATE api_keys SET expires_at = ?, rotated_to = ? WHERE id = ?',
      ),
      // A key quota would otherwise vanish with the old key: rotation must not lift a budget.
      copyKeyQuotas: db.prepare<[string, string]>(
        `INSERT OR REPLACE INTO quotas (subject_type, subject_id, window, max_tokens, max_cost_usd)
         SELECT 'key', ?, window, max_tokens, max_cost_usd FROM quotas WHERE subject_type = 'key' AND subject_id = ?`,
      ),
    };
  }

  getUser(id: string, now: number): UserRow | null {
    const raw = this.statements.getUser.get({ now, id });
    return raw ? fromRawUser(raw) : null;
  }

  listUsers(
    filter: { search: string | null; includeDeleted: boolean; limit: number; offset: number },
    now: number,
  ): { users: UserRow[]; total: number } {
    const where: UserFilterParams = {
      pattern: filter.search ? likePattern(filter.search) : null,
      includeDeleted: filter.includeDeleted ? 1 : 0,
    };
    const users = this.statements.listUsers
      .all({ ...where, now, limit: filter.limit, offset: filter.offset })
      .map(fromRawUser);
    const total = this.statements.countUsers.get(where)?.total ?? 0;
    return { users, total };
  }

  insertUser(user: Omit<UserRow, 'liveKeys' | 'deletedAt'>): void {
    try {
      this.statements.insertUser.run(
        user.id,
        user.username,
        user.email,
        user.displayName,
        user.role,
        user.active ? 1 : 0,
        user.createdAt,
        user.updatedAt,
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new UserNameTakenError(user.username);
      throw error;
    }
  }

  /** Changes the given fields and updated_at. */
  updateUser(
    id: string,
    patch: Partial<Pick<UserRow, 'username' | 'email' | 'displayName' | 'role' | 'active'>>,
    updatedAt: string,
  ): void {
    const columns: Record<keyof typeof patch, string> = {
      username: 'username',
      email: 'email',
      displayName: 'display_name',
      role: 'role',
      active: 'active',
    };
    const keys = (Object.keys(patch) as Array<keyof typeof patch>).filter((k) => patch[k] !== undefined);
    const values = keys.map((k) => (k === 'active' ? (patch.active ? 1 : 0) : patch[k]));
    const assignments = [...keys.map((k) => `${columns[k]} = ?`), 'updated_at = ?'];
    try {
      this.db.prepare(`UPDATE users SET ${assignments.join(', ')} WHERE id = ?`).run(...values, updatedAt, id);
    } catch (error) {
      if (isUniqueViolation(error)) throw new UserNameTakenError(patch.username ?? id);
      throw error;
    }
  }

  /** Marks the user deleted (and inactive) and revokes every key of theirs, in one transaction. */
  softDeleteUser(id: string, now: number): void {
    this.db.transaction(() => {
      this.statements.softDeleteUser.run({ at: new Date(now).toISOString(), id });
      this.statements.revokeUserKeys.run(now, id);
    })();
  }

  getKey(id: string): KeyRow | null {
    const raw = this.statements.getKey.get(id);
    return raw ? fromRawKey(raw) : null;
  }

  listKeys(userId: string): KeyRow[] {
    return this.statements.listKeys.all(userId).map(fromRawKey);
  }

  insertKey(key: NewKey): void {
    this.statements.insertKey.run(
      key.id,
      key.userId,
      key.name,
      key.hash,
      key.prefix,
      JSON.stringify(key.scopes),
      key.expiresAt,
      key.slotId,
      key.requestsPerMinute,
      key.concurrentStreams,
      key.createdAt,
    );
  }

  updateKey(
    id: string,
    patch: Partial<Pick<KeyRow, 'name' | 'requestsPerMinute' | 'concurrentStreams' | 'expiresAt'>>,
  ): void {
    const columns: Record<keyof typeof patch, string> = {
      name: 'name',
      expiresAt: 'expires_at',
      requestsPerMinute: 'requests_per_minute',
      concurrentStreams: 'concurrent_streams',
    };
    const keys = (Object.keys(patch) as Array<keyof typeof patch>).filter((k) => patch[k] !== undefined);
    if (keys.length === 0) return;
    this.db
      .prepare(`UPDATE api_keys SET ${keys.map((k) => `${columns[k]} = ?`).join(', ')} WHERE id = ?`)
      .run(...keys.map((k) => patch[k]), id);
  }

  revokeKey(id: string, now: number): void {
    this.statements.revokeKey.run(now, id);
  }

  revokeKeysForSlot(slotId: string, now: number): number {
    return this.statements.revokeSlotKeys.run(now, slotId).changes;
  }

  /** Inserts the replacement and limits the old key to its grace period, in one transaction. */
  rotateKey(oldId: string, replacement: NewKey, oldExpiresAt: number): void {
    this.db.transaction(() => {
      this.insertKey(replacement);
      this.statements.markRotated.run(oldExpiresAt, replacement.id, oldId);
      this.statements.copyKeyQuotas.run(replacement.id, oldId);
    })();
  }
}
