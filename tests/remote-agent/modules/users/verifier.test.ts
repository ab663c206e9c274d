import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../../remote-agent/src/modules/users/keys.js';
import { UNKNOWN_CACHE_LIMIT } from '../../../../remote-agent/src/modules/users/verifier.js';
import { keyBody, makeWorld, START, userBody, type World } from './setup.js';

let world: World;
let userId: string;

beforeEach(() => {
  world = makeWorld();
  userId = world.users.create(userBody({ username: 'ada' })).id;
});

afterEach(() => world.close());

function changeAt(key: string, index: number): string {
  return key.slice(0, index) + (key[index] === 'a' ? 'b' : 'a') + key.slice(index + 1);
}

describe('KeyVerifier', () => {
  it('says how to send a key when none was sent', () => {
    for (const raw of [undefined, '']) {
      const result = world.verifier.verify(raw);
      expect(result).toMatchObject({ ok: false, reason: 'missing' });
      if (!result.ok) expect(result.message).toMatch(/x-api-key.*Authorization: Bearer/);
    }
  });

  it('refuses a wrong prefix, a wrong length and a bad checksum as malformed, without saying the key', () => {
    const { secret } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    const typo = changeAt(secret, 20);
    const cases = [`sk_live_${secret.slice(8)}`, secret.slice(0, -1), `${secret}x`, typo];
    for (const raw of cases) {
      const result = world.verifier.verify(raw);
      expect(result).toMatchObject({ ok: false, reason: 'malformed' });
      if (!result.ok) expect(result.message).not.toContain(raw.slice(8, 30));
    }
    const checksum = world.verifier.verify(typo);
    if (!checksum.ok) expect(checksum.message).toMatch(/typo/);
  });

  it('refuses a well-formed key that was never issued, or issued by another host, as unknown', () => {
    world.users.createKey(userId, keyBody({ name: 'laptop' }));
    const stranger = generateApiKey().secret;
    const result = world.verifier.verify(stranger);
    expect(result).toMatchObject({ ok: false, reason: 'unknown' });
    if (!result.ok) expect(result.message).not.toContain(stranger.slice(8));
  });

  it('accepts an issued key exactly, and nothing that differs from it', () => {
    const { secret } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(world.verifier.verify(secret).ok).toBe(true);
    expect(world.verifier.verify(secret.toUpperCase()).ok).toBe(false);
    expect(world.verifier.verify(` ${secret}`).ok).toBe(false);
  });

  it('hands out a key record that callers cannot alter for later requests', () => {
    const { secret } = world.users.createKey(userId, keyBody({ name: 'laptop', scopes: ['self'] }));
    const first = world.verifier.verify(secret);
    if (!first.ok) throw new Error(first.message);
    expect(() => first.key.scopes.push('gateway')).toThrow();
    expect(() => {
      (first.key as { userId: string }).userId = 'u_someoneelse';
    }).toThrow();
    expect(world.verifier.verify(secret)).toMatchObject({ ok: true, key: { userId, scopes: ['self'] } });
  });

  it('notices a revocation made directly in the database within one second', () => {
    const { secret, key } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(world.verifier.verify(secret).ok).toBe(true);

    world.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(START, key.id);
    world.clock.advance(999);
    // Served from the cache for the rest of the second: the hot path does not query SQLite on every request.
    expect(world.verifier.verify(secret).ok).toBe(true);
    world.clock.advance(1);
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('notices a user disabled or deleted directly in the database within one second', () => {
    const { secret } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    expect(world.verifier.verify(secret).ok).toBe(true);

    world.db.prepare('UPDATE users SET active = 0 WHERE id = ?').run(userId);
    world.clock.advance(1000);
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'user_disabled' });

    world.db.prepare('UPDATE users SET deleted_at = ? WHERE id = ?').run(new Date(START).toISOString(), userId);
    world.clock.advance(1000);
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'user_deleted' });
  });

  it('judges expiry against the clock on every call, even for a cached key', () => {
    const { secret } = world.users.createKey(
      userId,
      keyBody({ name: 'temp', expiresAt: new Date(START + 500).toISOString() }),
    );
    expect(world.verifier.verify(secret).ok).toBe(true);
    world.clock.advance(500);
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('accepts a key inserted directly in the database within one second, even after it was tried as unknown', () => {
    const { secret, hash, prefix } = generateApiKey();
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'unknown' });
    world.db
      .prepare(
        `INSERT INTO api_keys (id, user_id, name, hash, prefix, scopes, created_at)
         VALUES ('k_insertedsq', ?, 'imported', ?, ?, '["gateway"]', ?)`,
      )
      .run(userId, hash, prefix, START);
    world.clock.advance(1000);
    expect(world.verifier.verify(secret)).toMatchObject({ ok: true, key: { keyId: 'k_insertedsq' } });
  });

  it('holds at most a bounded number of unknown keys in memory, however many are tried', () => {
    const { secret } = world.users.createKey(userId, keyBody({ name: 'laptop' }));
    world.verifier.verify(secret);
    for (let i = 0; i < UNKNOWN_CACHE_LIMIT + 500; i++) world.verifier.verify(generateApiKey().secret);
    expect(world.verifier.cacheSize.unknown).toBeLessThanOrEqual(UNKNOWN_CACHE_LIMIT);
    expect(world.verifier.cacheSize.known).toBe(1);
    expect(world.verifier.verify(secret).ok).toBe(true);
  });
});
