import { timingSafeEqual } from 'node:crypto';
import type { KeyScope } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import { checkKeyFormat, hashApiKey } from './keys.js';
import { parseScopes, type RawKey } from './repository.js';

export interface VerifiedKey {
  keyId: string;
  userId: string;
  username: string;
  name: string;
  prefix: string;
  scopes: KeyScope[];
  slotId: string | null;
  rateLimit: { requestsPerMinute: number | null; concurrentStreams: number | null };
}

export type KeyRejection =
  'missing' | 'malformed' | 'unknown' | 'revoked' | 'expired' | 'user_disabled' | 'user_deleted';

/** A refused key that was found (revoked, expired, of a disabled or deleted user) still names its key and user. */
export type KeyRefusal = { ok: false; reason: KeyRejection; message: string; keyId?: string; userId?: string };
export type VerifyResult = { ok: true; key: VerifiedKey } | KeyRefusal;

/** How long a looked-up key is trusted: a change made behind the service's back takes effect within this. */
export const KEY_CACHE_TTL_MS = 1000;
/** Unknown hashes are cached too (so a flood of made-up keys costs no queries), but only this many. */
export const UNKNOWN_CACHE_LIMIT = 10_000;
const LAST_USE_FLUSH_MS = 5000;

interface KeyRecord {
  hash: Buffer;
  key: VerifiedKey;
  expiresAt: number | null;
  revoked: boolean;
  rotated: boolean;
  userActive: boolean;
  userDeleted: boolean;
}

/** A key row with the hash it is looked up by and the state of its user. */
interface RawKeyWithUser extends Omit<RawKey, 'last_used_at' | 'created_at'> {
  hash: Buffer;
  username: string;
  active: number;
  deleted_at: string | null;
}

const ASK_ADMIN = 'Ask your Slotdeck admin for a new key.';

function reject(reason: KeyRejection, message: string): KeyRefusal {
  return { ok: false, reason, message };
}

// Messages never include the presented key: it may be a real key of someone else, pasted by mistake.
const MISSING = reject(
  'missing',
  'No API key was sent. Send your Slotdeck API key in the x-api-key header or as "Authorization: Bearer <key>".',
);
const MALFORMED = reject(
  'malformed',
  'This is not a Slotdeck API key: keys start with sk_user_ and are 36 characters long. Check that it was copied whole.',
);
const MISTYPED = reject(
  'malformed',
  'This API key has a typo: its checksum does not match. Copy it again from where you saved it.',
);
const UNKNOWN = reject(
  'unknown',
  `This API key is not known to this Slotdeck host. Check the key, or ${ASK_ADMIN.toLowerCase()}`,
);
const REVOKED = reject('revoked', `This API key was revoked. ${ASK_ADMIN}`);
const ROTATED = reject(
  'expired',
  'This API key was replaced by a newer one and its grace period is over. Use the new key, or ask your Slotdeck admin for one.',
);
const USER_DELETED = reject(
  'user_deleted',
  'The account of this API key was deleted. Ask your Slotdeck admin for access.',
);
const USER_DISABLED = reject(
  'user_disabled',
  'The account of this API key is disabled. Ask your Slotdeck admin to enable it again.',
);

/**
 * Checks end-user API keys on the gateway's hot path, synchronously: the format and checksum first (no I/O), then
 * the SHA-256 of the key, looked up in a short-lived cache in front of SQLite. Expiry is judged against the clock on
 * every call, so an expiry needs no invalidation; the service invalidates on revoke, disable, delete and rotate.
 */
export class KeyVerifier {
  private readonly known = new Map<string, { loadedAt: number; record: KeyRecord }>();
  private readonly unknown = new Map<string, number>();
  private readonly lastUse = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly statements;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.statements = {
      byHash: db.prepare<[Buffer], RawKeyWithUser>(
        `SELECT k.id, k.user_id, k.name, k.hash, k.prefix, k.scopes, k.expires_at, k.revoked_at, k.rotated_to,
           k.slot_id, k.requests_per_minute, k.concurrent_streams, u.username, u.active, u.deleted_at
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = ?`,
      ),
      touch: db.prepare<[number, string]>(
        'UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?',
      ),
    };
    this.timer = setInterval(() => this.flush(), LAST_USE_FLUSH_MS);
    this.timer.unref();
  }

  verify(raw: string | undefined): VerifyResult {
    if (raw === undefined || raw === '') return MISSING;
    const format = checkKeyFormat(raw);
    if (format === 'malformed') return MALFORMED;
    if (format === 'checksum') return MISTYPED;

    const hash = hashApiKey(raw);
    const record = this.lookup(hash);
    // The lookup matched on the hash already; comparing again in constant time keeps a cache or index quirk from
    // ever turning into a timing oracle.
    if (!record || !timingSafeEqual(record.hash, hash)) return UNKNOWN;
    // For the request log: whose refused key this is.
    const known = (rejection: KeyRefusal): KeyRefusal => ({
      ...rejection,
      keyId: record.key.keyId,
      userId: record.key.userId,
    });
    if (record.userDeleted) return known(USER_DELETED);
    if (record.revoked) return known(REVOKED);
    if (record.expiresAt !== null && record.expiresAt <= this.now()) {
      return known(
        record.rotated
          ? ROTATED
          : reject('expired', `This API key expired on ${new Date(record.expiresAt).toISOString()}. ${ASK_ADMIN}`),
      );
    }
    if (!record.userActive) return known(USER_DISABLED);
    return { ok: true, key: record.key };
  }

  /** Records a use; written to the database in one batch every few seconds rather than on every request. */
  touch(keyId: string): void {
    this.lastUse.set(keyId, this.now());
  }

  /** A use recorded by touch() but not yet flushed, so that lists show it at once. */
  pendingLastUse(keyId: string): number | undefined {
    return this.lastUse.get(keyId);
  }

  /** Forgets every cached lookup: the next verify of each key reads the database. */
  invalidate(): void {
    this.known.clear();
    this.unknown.clear();
  }

  flush(): void {
    if (this.lastUse.size === 0 || !this.db.open) return;
    const uses = [...this.lastUse];
    this.lastUse.clear();
    try {
      this.db.transaction(() => {
        for (const [keyId, at] of uses) this.statements.touch.run(at, keyId);
      })();
    } catch {
      // A full disk (or a busy database): the uses are kept for the next flush, unless newer ones came meanwhile.
      for (const [keyId, at] of uses) if (!this.lastUse.has(keyId)) this.lastUse.set(keyId, at);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private lookup(hash: Buffer): KeyRecord | null {
    const id = hash.toString('hex');
    const now = this.now();
    const cached = this.known.get(id);
    if (cached && now - cached.loadedAt < KEY_CACHE_TTL_MS) return cached.record;
    const missedAt = this.unknown.get(id);
    if (missedAt !== undefined && now - missedAt < KEY_CACHE_TTL_MS) return null;

    const raw = this.statements.byHash.get(hash);
    if (!raw) {
      this.known.delete(id);
      // Maps iterate in insertion order: re-inserting moves the entry last, so the first is the oldest.
      this.unknown.delete(id);
      if (this.unknown.size >= UNKNOWN_CACHE_LIMIT) this.unknown.delete(this.unknown.keys().next().value!);
      this.unknown.set(id, now);
      return null;
    }
    this.unknown.delete(id);
    const record: KeyRecord = {
      hash: raw.hash,
      expiresAt: raw.expires_at,
      revoked: raw.revoked_at !== null,
      rotated: raw.rotated_to !== null,
      userActive: raw.active === 1,
      userDeleted: raw.deleted_at !== null,
      // Shared by every request that presents the key until the next load: frozen so that no caller can alter it.
      key: Object.freeze({
        keyId: raw.id,
        userId: raw.user_id,
        username: raw.username,
        name: raw.name,
        prefix: raw.prefix,
        scopes: Object.freeze(parseScopes(raw.scopes)) as KeyScope[],
        slotId: raw.slot_id,
        rateLimit: Object.freeze({
          requestsPerMinute: raw.requests_per_minute,
          concurrentStreams: raw.concurrent_streams,
        }),
      }),
    };
    this.known.set(id, { loadedAt: now, record });
    return record;
  }

  /** Entries held, for tests of the memory bound. */
  get cacheSize(): { known: number; unknown: number } {
    return { known: this.known.size, unknown: this.unknown.size };
  }
}
