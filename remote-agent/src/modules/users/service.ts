import type { z } from 'zod';
import {
  AgentErrorCode,
  API_PREFIX,
  type ApiKey,
  type CreatedKey,
  type CreateKeyBody,
  type CreateUserBody,
  type ListUsersQuery,
  type RotateKeyBody,
  type UpdateKeyBody,
  type UpdateUserBody,
  type User,
  type UserList,
} from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import { AppError } from '../../errors.js';
import { randomId } from '../../util/ids.js';
import { generateApiKey } from './keys.js';
import { UserNameTakenError, UserRepository, type KeyRow, type NewKey, type UserRow } from './repository.js';
import type { KeyVerifier } from './verifier.js';

export interface UserServiceDeps {
  db: Db;
  verifier: KeyVerifier;
  /** The clock, in epoch ms; tests move it instead of sleeping. */
  now?: () => number;
  /** Told after a rotation, so that the key's quotas and a metered slot follow the new key. */
  onKeyRotated?: (oldKeyId: string, created: CreatedKey) => void;
  /** Told after a user changed or was deleted: sign-in ends a disabled user's sessions and follows renames. */
  onUserChanged?: (userId: string) => void;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

const userNotFound = (id: string): AppError =>
  new AppError(
    AgentErrorCode.USER_NOT_FOUND,
    404,
    `No user with id ${id}. List users with GET ${API_PREFIX}/users to find the id.`,
  );

const keyNotFound = (id: string): AppError =>
  new AppError(
    AgentErrorCode.KEY_NOT_FOUND,
    404,
    `No API key with id ${id}. List a user's keys with GET ${API_PREFIX}/users/<user id>/keys to find the id.`,
  );

const nameTaken = (username: string): AppError =>
  new AppError(
    AgentErrorCode.USER_NAME_TAKEN,
    409,
    `A user named "${username}" already exists. Choose another username, or edit the existing user.`,
  );

const userDeleted = (user: UserRow): AppError =>
  new AppError(
    AgentErrorCode.USER_DELETED,
    409,
    `User "${user.username}" was deleted and can no longer be changed or get keys. Create a new user instead.`,
  );

export function keyState(key: KeyRow, now: number): ApiKey['state'] {
  if (key.revokedAt !== null) return 'revoked';
  if (key.expiresAt !== null && key.expiresAt <= now) return 'expired';
  return key.rotatedTo !== null ? 'rotating' : 'active';
}

/**
 * Users and their API keys. Every change that can stop a key drops the verifier's cache, so that the gateway
 * refuses the key from the next request on (changes made directly in the database take at most a second).
 */
export class UserService {
  private readonly repo: UserRepository;
  private readonly verifier: KeyVerifier;
  private readonly now: () => number;
  private readonly onKeyRotated: UserServiceDeps['onKeyRotated'];
  private readonly onUserChanged: UserServiceDeps['onUserChanged'];

  constructor(deps: UserServiceDeps) {
    this.repo = new UserRepository(deps.db);
    this.verifier = deps.verifier;
    this.now = deps.now ?? (() => Date.now());
    this.onKeyRotated = deps.onKeyRotated;
    this.onUserChanged = deps.onUserChanged;
  }

  // ---------------------------------------------------------------- users

  list(query: z.output<typeof ListUsersQuery>): z.input<typeof UserList> {
    const { users, total } = this.repo.listUsers(
      {
        search: query.search ? query.search : null,
        includeDeleted: query.includeDeleted,
        limit: query.limit,
        offset: query.offset,
      },
      this.now(),
    );
    return { users: users.map(toUser), total, limit: query.limit, offset: query.offset };
  }

  create(body: z.output<typeof CreateUserBody>): User {
    refuseReservedEmail(body.email);
    const at = new Date(this.now()).toISOString();
    const id = `u_${randomId(10)}`;
    try {
      this.repo.insertUser({
        id,
        username: body.username,
        email: body.email ?? null,
        displayName: body.displayName ?? null,
        role: body.role,
        active: body.active,
        createdAt: at,
        updatedAt: at,
      });
    } catch (error) {
      if (error instanceof UserNameTakenError) throw nameTaken(body.username);
      throw error;
    }
    return this.get(id);
  }

  get(id: string): User {
    return toUser(this.userRow(id));
  }

  update(id: string, body: z.output<typeof UpdateUserBody>): User {
    const user = this.userRow(id);
    if (user.deletedAt !== null) throw userDeleted(user);
    refuseReservedEmail(body.email);
    try {
      this.repo.updateUser(id, body, new Date(this.now()).toISOString());
    } catch (error) {
      if (error instanceof UserNameTakenError) throw nameTaken(body.username ?? user.username);
      throw error;
    }
    // Disabling stops every key of the user; a new username must show in the gateway's records too.
    this.verifier.invalidate();
    this.onUserChanged?.(id);
    return this.get(id);
  }

  /** Soft delete: the row stays for the usage history, the keys are revoked and the username is free again. */
  delete(id: string): User {
    const user = this.userRow(id);
    if (user.deletedAt === null) {
      this.repo.softDeleteUser(id, this.now());
      this.verifier.invalidate();
      this.onUserChanged?.(id);
    }
    return this.get(id);
  }

  // ---------------------------------------------------------------- keys

  listKeys(userId: string): ApiKey[] {
    this.userRow(userId);
    const now = this.now();
    return this.repo.listKeys(userId).map((key) => this.toApiKey(key, now));
  }

  getKey(keyId: string): ApiKey {
    return this.toApiKey(this.keyRow(keyId), this.now());
  }

  createKey(userId: string, body: z.output<typeof CreateKeyBody>, options: { slotId?: string } = {}): CreatedKey {
    const user = this.userRow(userId);
    this.assertCanHoldKeys(user);
    const now = this.now();
    const expiresAt = body.expiresAt ? Date.parse(body.expiresAt) : null;
    if (expiresAt !== null && expiresAt <= now) {
      const message = 'is in the past; give a future time, or none for a key that does not expire';
      throw new AppError(AgentErrorCode.VALIDATION_FAILED, 400, `Invalid request: body.expiresAt ${message}`, [
        { path: 'body.expiresAt', message },
      ]);
    }
    return this.issue({
      userId,
      name: body.name,
      scopes: [...new Set(body.scopes)],
      expiresAt,
      slotId: options.slotId ?? null,
      requestsPerMinute: body.rateLimit?.requestsPerMinute ?? null,
      concurrentStreams: body.rateLimit?.concurrentStreams ?? null,
      createdAt: now,
    });
  }

  updateKey(keyId: string, body: z.output<typeof UpdateKeyBody>): ApiKey {
    this.keyRow(keyId);
    this.repo.updateKey(keyId, {
      name: body.name,
      requestsPerMinute: body.rateLimit?.requestsPerMinute,
      concurrentStreams: body.rateLimit?.concurrentStreams,
    });
    // The gateway reads rate limits from the verified key: new limits apply from the next request.
    this.verifier.invalidate();
    return this.getKey(keyId);
  }

  /**
   * A new expiry (epoch ms, or null for never) for an active key (a rotating key's end is its grace period; a revoked
   * or expired one stays so). The portal's "change expiry"; the time must be in the future.
   */
  setKeyExpiry(keyId: string, expiresAt: number | null): ApiKey {
    const key = this.keyRow(keyId);
    const now = this.now();
    const state = keyState(key, now);
    if (state !== 'active') {
      throw new AppError(
        AgentErrorCode.KEY_NOT_ACTIVE,
        409,
        `API key ${key.prefix}… is ${state}; only an active key's expiry can change. Create a new key instead.`,
      );
    }
    if (expiresAt !== null && expiresAt <= now) {
      const message = 'is in the past; give a future time, or null for a key that does not expire';
      throw new AppError(AgentErrorCode.VALIDATION_FAILED, 400, `Invalid request: body.expiresAt ${message}`, [
        { path: 'body.expiresAt', message },
      ]);
    }
    this.repo.updateKey(keyId, { expiresAt });
    this.verifier.invalidate();
    return this.getKey(keyId);
  }

  /** Stops the key at once. Revoking a revoked key changes nothing and is not an error. */
  revokeKey(keyId: string): ApiKey {
    const key = this.keyRow(keyId);
    if (key.revokedAt === null) {
      this.repo.revokeKey(keyId, this.now());
      this.verifier.invalidate();
    }
    return this.getKey(keyId);
  }

  /**
   * Issues a replacement with the same name, scopes, limits, slot and expiry; the old key keeps working for the
   * grace period (never longer than it would have anyway), then reads as expired. Key quotas move with it.
   */
  rotateKey(
    keyId: string,
    body: z.output<typeof RotateKeyBody>,
    /** The portal's narrowing: the replacement gets only these of the old key's scopes (what the admin allows now). */
    narrowScopes?: (scopes: KeyRow['scopes']) => KeyRow['scopes'],
  ): CreatedKey {
    const old = this.keyRow(keyId);
    const now = this.now();
    const state = keyState(old, now);
    if (state === 'revoked' || state === 'expired') {
      throw new AppError(
        AgentErrorCode.KEY_NOT_ACTIVE,
        409,
        `API key ${old.prefix}… is ${state} and cannot be rotated. Create a new key for the user instead.`,
      );
    }
    this.assertCanHoldKeys(this.userRow(old.userId));
    const graceEnd = now + body.graceSeconds * 1000;
    const oldExpiresAt = old.expiresAt === null ? graceEnd : Math.min(old.expiresAt, graceEnd);
    const created = this.issue(
      {
        userId: old.userId,
        name: old.name,
        scopes: narrowScopes ? narrowScopes(old.scopes) : old.scopes,
        expiresAt: old.expiresAt,
        slotId: old.slotId,
        requestsPerMinute: old.requestsPerMinute,
        concurrentStreams: old.concurrentStreams,
        createdAt: now,
      },
      (replacement) => this.repo.rotateKey(keyId, replacement, oldExpiresAt),
    );
    this.verifier.invalidate();
    this.onKeyRotated?.(keyId, created);
    return created;
  }

  /** Revokes the keys issued for a slot (when the slot is deleted or stops being metered). */
  revokeKeysForSlot(slotId: string): void {
    if (this.repo.revokeKeysForSlot(slotId, this.now()) > 0) this.verifier.invalidate();
  }

  // ---------------------------------------------------------------- helpers

  private issue(
    fields: Omit<NewKey, 'id' | 'hash' | 'prefix'>,
    store: (key: NewKey) => void = (key) => this.repo.insertKey(key),
  ): CreatedKey {
    const { secret, hash, prefix } = generateApiKey();
    const id = `k_${randomId(10)}`;
    store({ ...fields, id, hash, prefix });
    return { key: this.getKey(id), secret };
  }

  private assertCanHoldKeys(user: UserRow): void {
    if (user.deletedAt !== null) throw userDeleted(user);
    if (!user.active) {
      throw new AppError(
        AgentErrorCode.USER_DISABLED,
        409,
        `User "${user.username}" is disabled, so a key for them would not work. Enable the user first (active: true).`,
      );
    }
  }

  private userRow(id: string): UserRow {
    const user = this.repo.getUser(id, this.now());
    if (!user) throw userNotFound(id);
    return user;
  }

  private keyRow(id: string): KeyRow {
    const key = this.repo.getKey(id);
    if (!key) throw keyNotFound(id);
    return key;
  }

  private toApiKey(key: KeyRow, now: number): ApiKey {
    const lastUsedAt = Math.max(key.lastUsedAt ?? 0, this.verifier.pendingLastUse(key.id) ?? 0);
    return {
      id: key.id,
      userId: key.userId,
      name: key.name,
      prefix: key.prefix,
      scopes: key.scopes,
      state: keyState(key, now),
      expiresAt: iso(key.expiresAt),
      revokedAt: iso(key.revokedAt),
      rotatedToId: key.rotatedTo,
      slotId: key.slotId,
      rateLimit: { requestsPerMinute: key.requestsPerMinute, concurrentStreams: key.concurrentStreams },
      lastUsedAt: lastUsedAt > 0 ? iso(lastUsedAt) : null,
      createdAt: new Date(key.createdAt).toISOString(),
    };
  }
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    displayName: row.displayName,
    role: row.role,
    active: row.active,
    deleted: row.deletedAt !== null,
    activeKeys: row.liveKeys,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    deletedAt: row.deletedAt,
  };
}

/**
 * `.invalid` (RFC 2606) is the sign-in side's placeholder domain (`<id>@users.slotdeck.invalid`): a real user holding
 * such an address would take another user's sign-in record.
 */
function refuseReservedEmail(email: string | null | undefined): void {
  if (email && /\.invalid$/i.test(email.trim()))
    throw new AppError(
      AgentErrorCode.VALIDATION_FAILED,
      400,
      'Addresses ending in .invalid are reserved for the agent itself. Enter a real email address, or none.',
    );
}
