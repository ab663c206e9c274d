import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CreatedKey } from '../../../../remote-agent/src/contract/index.js';
import { hashApiKey } from '../../../../remote-agent/src/modules/users/keys.js';
import {
  appError,
  keyBody,
  keyChanges,
  makeWorld,
  rotation,
  START,
  userBody,
  userChanges,
  type World,
} from './setup.js';

let world: World;
let userId: string;

beforeEach(() => {
  world = makeWorld();
  userId = world.users.create(userBody({ username: 'ada' })).id;
});

afterEach(() => world.close());

const HOUR = 3_600_000;

describe('issuing a key', () => {
  it('shows the key once: the answer has it, lists and reads never do', () => {
    const created = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(CreatedKey.parse(created)).toEqual(created);
    expect(created.secret).toMatch(/^sk_user_[0-9A-Za-z]{28}$/);
    expect(created.key).toMatchObject({
      userId,
      name: 'laptop',
      prefix: created.secret.slice(0, 12),
      scopes: ['gateway', 'self'],
      state: 'active',
      expiresAt: null,
      revokedAt: null,
      rotatedToId: null,
      slotId: null,
      rateLimit: { requestsPerMinute: null, concurrentStreams: null },
      lastUsedAt: null,
      createdAt: new Date(START).toISOString(),
    });
    expect(created.key.id).toMatch(/^k_[a-z0-9]{10}$/);

    const listed = world.users.listKeys(userId);
    expect(listed).toEqual([created.key]);
    expect(JSON.stringify(listed)).not.toContain(created.secret.slice(12));
    expect(JSON.stringify(world.users.getKey(created.key.id))).not.toContain(created.secret.slice(12));
    expect(world.users.get(userId).activeKeys).toBe(1);
  });

  it('stores only the SHA-256: the key is nowhere in the database files', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    const stored = world.db.prepare('SELECT hash FROM api_keys WHERE id = ?').get(key.id) as { hash: Buffer };
    expect(stored.hash.equals(hashApiKey(secret))).toBe(true);

    world.verifier.verify(secret);
    world.verifier.touch(key.id);
    world.verifier.flush();
    // Both the WAL and the main file, before and after a checkpoint.
    const files = () => readdirSync(world.dir).map((name) => readFileSync(join(world.dir, name)));
    const body = secret.slice(8);
    for (const bytes of files()) expect(bytes.includes(body)).toBe(false);
    world.db.pragma('wal_checkpoint(TRUNCATE)');
    for (const bytes of files()) expect(bytes.includes(body)).toBe(false);
  });

  it('gives each key its own secret', () => {
    const a = world.users.createKey(userId, keyBody({ name: 'a' }));
    const b = world.users.createKey(userId, keyBody({ name: 'a' }));
    expect(a.secret).not.toBe(b.secret);
    expect(world.verifier.verify(a.secret)).toMatchObject({ ok: true, key: { keyId: a.key.id } });
    expect(world.verifier.verify(b.secret)).toMatchObject({ ok: true, key: { keyId: b.key.id } });
  });

  it('reports the scopes, limits and user of a key to the gateway', () => {
    const { secret, key } = world.users.createKey(
      userId,
      keyBody({ name: 'stats', scopes: ['self'], rateLimit: { requestsPerMinute: 10 } }),
    );
    expect(world.verifier.verify(secret)).toEqual({
      ok: true,
      key: {
        keyId: key.id,
        userId,
        username: 'ada',
        name: 'stats',
        prefix: key.prefix,
        scopes: ['self'],
        slotId: null,
        rateLimit: { requestsPerMinute: 10, concurrentStreams: null },
      },
    });
    expect(key.scopes).toEqual(['self']);
  });

  it('records the slot a key was issued for', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'slot dev' }), { slotId: 'abcdefghij' });
    expect(key.slotId).toBe('abcdefghij');
    expect(world.verifier.verify(secret)).toMatchObject({ ok: true, key: { slotId: 'abcdefghij' } });
  });

  it('answers 404 for the keys of an unknown user and for an unknown key', () => {
    expect(appError(() => world.users.listKeys('u_0000000000'))).toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(appError(() => world.users.createKey('u_0000000000', keyBody({ name: 'x' })))).toMatchObject({
      code: 'USER_NOT_FOUND',
      status: 404,
    });
    expect(appError(() => world.users.getKey('k_0000000000'))).toMatchObject({ code: 'KEY_NOT_FOUND', status: 404 });
    expect(appError(() => world.users.revokeKey('k_0000000000'))).toMatchObject({ code: 'KEY_NOT_FOUND' });
  });
});

describe('expiry', () => {
  it('lets a key work until its expiry time, then refuses it as expired and saying when', () => {
    const expiresAt = new Date(START + HOUR).toISOString();
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'temp', expiresAt }));
    expect(key).toMatchObject({ state: 'active', expiresAt });

    world.clock.advance(HOUR - 1);
    expect(world.verifier.verify(secret).ok).toBe(true);

    world.clock.advance(1);
    const result = world.verifier.verify(secret);
    expect(result).toMatchObject({ ok: false, reason: 'expired' });
    if (!result.ok) expect(result.message).toContain(expiresAt);
    expect(world.users.getKey(key.id).state).toBe('expired');
    expect(world.users.get(userId).activeKeys).toBe(0);
  });

  it('accepts an expiry with a time zone offset', () => {
    const { key } = world.users.createKey(userId, keyBody({ name: 'tz', expiresAt: '2026-03-01T14:00:00+01:00' }));
    expect(key.expiresAt).toBe('2026-03-01T13:00:00.000Z');
  });

  it('refuses an expiry in the past with 400 VALIDATION_FAILED on body.expiresAt', () => {
    const error = appError(() =>
      world.users.createKey(userId, keyBody({ name: 'old', expiresAt: new Date(START - 1000).toISOString() })),
    );
    expect(error).toMatchObject({ code: 'VALIDATION_FAILED', status: 400 });
    expect(error.issues?.map((issue) => issue.path)).toEqual(['body.expiresAt']);
    expect(world.users.listKeys(userId)).toEqual([]);
  });
});

describe('revoking', () => {
  it('stops the key at once and tells its user to ask for a new one', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(world.verifier.verify(secret).ok).toBe(true);

    const revoked = world.users.revokeKey(key.id);
    expect(revoked).toMatchObject({ state: 'revoked', revokedAt: new Date(START).toISOString() });
    const result = world.verifier.verify(secret);
    expect(result).toEqual({
      ok: false,
      reason: 'revoked',
      message: 'This API key was revoked. Ask your Slotdeck admin for a new key.',
      // Named for the gateway's request log: whose refused key it was.
      keyId: key.id,
      userId,
    });
    expect(world.users.get(userId).activeKeys).toBe(0);
  });

  it('is idempotent: revoking again keeps the first revocation time', () => {
    const { key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    const first = world.users.revokeKey(key.id);
    world.clock.advance(60_000);
    expect(world.users.revokeKey(key.id)).toEqual(first);
  });

  it("revokes the keys of a slot and leaves the user's other keys alone", () => {
    const slotKey = world.users.createKey(userId, keyBody({ name: 'slot' }), { slotId: 'slot000001' });
    const personal = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(world.verifier.verify(slotKey.secret).ok).toBe(true);

    world.users.revokeKeysForSlot('slot000001');
    expect(world.verifier.verify(slotKey.secret)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(world.verifier.verify(personal.secret).ok).toBe(true);
    world.users.revokeKeysForSlot('no-such-slot');
  });
});

describe('rotating', () => {
  it('issues a replacement like the old key; the old one works for the grace period, then is expired', () => {
    const old = world.users.createKey(
      userId,
      keyBody({ name: 'laptop', scopes: ['gateway'], rateLimit: { requestsPerMinute: 30, concurrentStreams: 2 } }),
      { slotId: 'slot000001' },
    );
    world.clock.advance(1000);
    const rotated = world.users.rotateKey(old.key.id, rotation(600));

    expect(rotated.secret).not.toBe(old.secret);
    expect(rotated.key).toMatchObject({
      name: 'laptop',
      scopes: ['gateway'],
      state: 'active',
      slotId: 'slot000001',
      rateLimit: { requestsPerMinute: 30, concurrentStreams: 2 },
      expiresAt: null,
    });
    const graceEnd = new Date(START + 1000 + 600_000).toISOString();
    expect(world.users.getKey(old.key.id)).toMatchObject({
      state: 'rotating',
      rotatedToId: rotated.key.id,
      expiresAt: graceEnd,
    });
    expect(world.verifier.verify(rotated.secret).ok).toBe(true);
    expect(world.verifier.verify(old.secret).ok).toBe(true);
    expect(world.users.get(userId).activeKeys).toBe(2);

    world.clock.advance(600_000 - 1);
    expect(world.verifier.verify(old.secret).ok).toBe(true);
    world.clock.advance(1);
    const result = world.verifier.verify(old.secret);
    expect(result).toMatchObject({ ok: false, reason: 'expired' });
    if (!result.ok) expect(result.message).toMatch(/replaced by a newer one/);
    expect(world.verifier.verify(rotated.secret).ok).toBe(true);
    expect(world.users.getKey(old.key.id).state).toBe('expired');
    expect(world.users.get(userId).activeKeys).toBe(1);
  });

  it('stops the old key at once with a grace of 0 seconds', () => {
    const old = world.users.createKey(userId, keyBody({ name: 'leaked' }));
    expect(world.verifier.verify(old.secret).ok).toBe(true);
    const rotated = world.users.rotateKey(old.key.id, rotation(0));
    expect(world.verifier.verify(old.secret)).toMatchObject({ ok: false, reason: 'expired' });
    expect(world.verifier.verify(rotated.secret).ok).toBe(true);
  });

  it('never lets the grace period outlive the old key, and keeps its expiry on the replacement', () => {
    const expiresAt = new Date(START + 10 * 60_000).toISOString();
    const old = world.users.createKey(userId, keyBody({ name: 'temp', expiresAt }));
    const rotated = world.users.rotateKey(old.key.id, rotation(3600));
    expect(world.users.getKey(old.key.id).expiresAt).toBe(expiresAt);
    expect(rotated.key.expiresAt).toBe(expiresAt);
  });

  it('takes the key quotas over to the replacement, so that rotating cannot lift a budget', () => {
    const old = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    world.db
      .prepare("INSERT INTO quotas (subject_type, subject_id, window, max_tokens) VALUES ('key', ?, 'day', 1000)")
      .run(old.key.id);
    const rotated = world.users.rotateKey(old.key.id, rotation());
    expect(
      world.db
        .prepare("SELECT subject_id, max_tokens FROM quotas WHERE subject_type = 'key' ORDER BY subject_id")
        .all(),
    ).toEqual([old.key.id, rotated.key.id].sort().map((id) => ({ subject_id: id, max_tokens: 1000 })));
  });

  it('refuses to rotate a revoked or expired key with 409 KEY_NOT_ACTIVE', () => {
    const revoked = world.users.createKey(userId, keyBody({ name: 'gone' }));
    world.users.revokeKey(revoked.key.id);
    expect(appError(() => world.users.rotateKey(revoked.key.id, rotation()))).toMatchObject({
      code: 'KEY_NOT_ACTIVE',
      status: 409,
    });

    const expiring = world.users.createKey(
      userId,
      keyBody({ name: 'temp', expiresAt: new Date(START + 1000).toISOString() }),
    );
    world.clock.advance(1000);
    expect(appError(() => world.users.rotateKey(expiring.key.id, rotation()))).toMatchObject({
      code: 'KEY_NOT_ACTIVE',
    });
  });
});

describe('changing a key', () => {
  it('renames a key and changes its limits from the next request on; null means the default again', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(world.verifier.verify(secret)).toMatchObject({ ok: true, key: { rateLimit: { requestsPerMinute: null } } });

    const updated = world.users.updateKey(key.id, keyChanges({ name: 'desktop', rateLimit: { requestsPerMinute: 5 } }));
    expect(updated).toMatchObject({ name: 'desktop', rateLimit: { requestsPerMinute: 5, concurrentStreams: null } });
    expect(world.verifier.verify(secret)).toMatchObject({
      ok: true,
      key: { name: 'desktop', rateLimit: { requestsPerMinute: 5 } },
    });

    const reset = world.users.updateKey(key.id, keyChanges({ rateLimit: { requestsPerMinute: null } }));
    expect(reset).toMatchObject({ name: 'desktop', rateLimit: { requestsPerMinute: null } });
  });
});

describe('last use', () => {
  it('shows a use at once in the key list and writes it to the database on flush', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    world.clock.advance(5000);
    const result = world.verifier.verify(secret);
    if (!result.ok) throw new Error(result.message);
    world.verifier.touch(result.key.keyId);

    const usedAt = new Date(START + 5000).toISOString();
    expect(world.users.getKey(key.id).lastUsedAt).toBe(usedAt);
    const stored = () =>
      (
        world.db.prepare('SELECT last_used_at FROM api_keys WHERE id = ?').get(key.id) as {
          last_used_at: number | null;
        }
      ).last_used_at;
    expect(stored()).toBeNull();

    world.verifier.flush();
    expect(stored()).toBe(START + 5000);
    expect(world.users.listKeys(userId)[0]?.lastUsedAt).toBe(usedAt);
  });

  it('writes pending uses when the verifier closes', () => {
    const { key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    world.verifier.touch(key.id);
    world.verifier.close();
    expect(world.db.prepare('SELECT last_used_at FROM api_keys WHERE id = ?').get(key.id)).toEqual({
      last_used_at: START,
    });
  });

  it('keeps disabled users disabled after a flush', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    world.users.update(userId, userChanges({ active: false }));
    world.verifier.touch(key.id);
    world.verifier.flush();
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'user_disabled' });
  });
});
