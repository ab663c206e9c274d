import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appError, keyBody, listQuery, makeWorld, START, userBody, userChanges, type World } from './setup.js';

let world: World;

beforeEach(() => {
  world = makeWorld();
});

afterEach(() => world.close());

describe('users', () => {
  it('creates a user with the defaults (member, active, no keys) and reads it back', () => {
    const user = world.users.create(userBody({ username: ' Ada ', email: 'ada@example.com' }));
    expect(user).toMatchObject({
      username: 'ada',
      email: 'ada@example.com',
      displayName: null,
      role: 'member',
      active: true,
      deleted: false,
      activeKeys: 0,
      createdAt: new Date(START).toISOString(),
      deletedAt: null,
    });
    expect(user.id).toMatch(/^u_[a-z0-9]{10}$/);
    expect(world.users.get(user.id)).toEqual(user);
  });

  it('refuses a second live user with the same username, whatever its case', () => {
    world.users.create(userBody({ username: 'ada' }));
    const error = appError(() => world.users.create(userBody({ username: 'ADA' })));
    expect(error).toMatchObject({ code: 'USER_NAME_TAKEN', status: 409 });
    expect(error.message).toContain('"ada"');
  });

  it('answers 404 USER_NOT_FOUND for an unknown id', () => {
    expect(appError(() => world.users.get('u_0000000000'))).toMatchObject({ code: 'USER_NOT_FOUND', status: 404 });
    expect(appError(() => world.users.update('u_0000000000', userChanges({ role: 'admin' })))).toMatchObject({
      code: 'USER_NOT_FOUND',
    });
  });

  it('lists users by username, searching username, email and display name without regard to case', () => {
    world.users.create(userBody({ username: 'grace', email: 'grace@navy.mil', displayName: 'Grace Hopper' }));
    world.users.create(userBody({ username: 'ada', email: 'ada@example.com', displayName: 'Ada Lovelace' }));
    world.users.create(userBody({ username: 'alan', email: 'turing@example.com' }));

    expect(world.users.list(listQuery()).users.map((u) => u.username)).toEqual(['ada', 'alan', 'grace']);
    expect(world.users.list(listQuery({ search: 'HOPPER' })).users.map((u) => u.username)).toEqual(['grace']);
    expect(world.users.list(listQuery({ search: 'example.com' })).users.map((u) => u.username)).toEqual([
      'ada',
      'alan',
    ]);
    expect(world.users.list(listQuery({ search: 'a' })).total).toBe(3);
    expect(world.users.list(listQuery({ search: 'nobody' }))).toEqual({ users: [], total: 0, limit: 50, offset: 0 });
  });

  it('matches % and _ in a search literally', () => {
    world.users.create(userBody({ username: 'a_b' }));
    world.users.create(userBody({ username: 'axb' }));
    world.users.create(userBody({ username: 'percent', displayName: '100% sure' }));
    expect(world.users.list(listQuery({ search: '_' })).users.map((u) => u.username)).toEqual(['a_b']);
    expect(world.users.list(listQuery({ search: '%' })).users.map((u) => u.username)).toEqual(['percent']);
  });

  it('paginates with limit and offset and reports the total', () => {
    for (let i = 0; i < 7; i++) world.users.create(userBody({ username: `user${i}` }));
    const first = world.users.list(listQuery({ limit: '3' }));
    const second = world.users.list(listQuery({ limit: '3', offset: '3' }));
    const last = world.users.list(listQuery({ limit: '3', offset: '6' }));
    expect(first).toMatchObject({ total: 7, limit: 3, offset: 0 });
    expect([...first.users, ...second.users, ...last.users].map((u) => u.username)).toEqual(
      Array.from({ length: 7 }, (_, i) => `user${i}`),
    );
    expect(last.users).toHaveLength(1);
  });

  it('updates the given fields only, clears a field set to null and moves updatedAt', () => {
    const user = world.users.create(userBody({ username: 'ada', email: 'ada@example.com', displayName: 'Ada' }));
    world.clock.advance(60_000);
    const updated = world.users.update(user.id, userChanges({ role: 'admin', email: null }));
    expect(updated).toMatchObject({ username: 'ada', displayName: 'Ada', role: 'admin', email: null });
    expect(updated.createdAt).toBe(user.createdAt);
    expect(updated.updatedAt).toBe(new Date(START + 60_000).toISOString());
  });

  it('refuses to rename a user to a name another live user has', () => {
    world.users.create(userBody({ username: 'ada' }));
    const grace = world.users.create(userBody({ username: 'grace' }));
    expect(appError(() => world.users.update(grace.id, userChanges({ username: 'ada' })))).toMatchObject({
      code: 'USER_NAME_TAKEN',
      status: 409,
    });
    expect(world.users.get(grace.id).username).toBe('grace');
  });

  it('stops every key of a disabled user at once, and lets them work again when enabled', () => {
    const user = world.users.create(userBody({ username: 'ada' }));
    const { secret } = world.users.createKey(user.id, keyBody({ name: 'laptop' }));
    const other = world.users.createKey(user.id, keyBody({ name: 'ci' })).secret;
    expect(world.verifier.verify(secret).ok).toBe(true);

    world.users.update(user.id, userChanges({ active: false }));
    for (const key of [secret, other]) {
      const result = world.verifier.verify(key);
      expect(result).toMatchObject({ ok: false, reason: 'user_disabled' });
      if (!result.ok) expect(result.message).toMatch(/disabled.*admin/);
    }

    world.users.update(user.id, userChanges({ active: true }));
    expect(world.verifier.verify(secret).ok).toBe(true);
  });

  it('refuses to issue a key for a disabled user, saying to enable them first', () => {
    const user = world.users.create(userBody({ username: 'ada', active: false }));
    const error = appError(() => world.users.createKey(user.id, keyBody({ name: 'laptop' })));
    expect(error).toMatchObject({ code: 'USER_DISABLED', status: 409 });
    expect(error.message).toMatch(/Enable the user/);
  });
});

describe('deleting a user', () => {
  it('revokes their keys (the gateway says the user was deleted), hides them from the list and frees the name', () => {
    const ada = world.users.create(userBody({ username: 'ada' }));
    const { secret, key } = world.users.createKey(ada.id, keyBody({ name: 'laptop' }));
    world.clock.advance(1000);
    expect(world.verifier.verify(secret).ok).toBe(true);

    const deleted = world.users.delete(ada.id);
    expect(deleted).toMatchObject({
      deleted: true,
      active: false,
      activeKeys: 0,
      deletedAt: new Date(START + 1000).toISOString(),
    });
    expect(world.verifier.verify(secret)).toMatchObject({ ok: false, reason: 'user_deleted' });
    expect(world.users.getKey(key.id).state).toBe('revoked');

    expect(world.users.list(listQuery()).users).toEqual([]);
    expect(world.users.list(listQuery({ includeDeleted: 'true' })).users.map((u) => u.id)).toEqual([ada.id]);

    const again = world.users.create(userBody({ username: 'ada' }));
    expect(again.id).not.toBe(ada.id);
    expect(world.users.get(ada.id).deleted).toBe(true);
    expect(world.users.list(listQuery({ includeDeleted: 'true' })).total).toBe(2);
  });

  it('keeps their usage history', () => {
    const ada = world.users.create(userBody({ username: 'ada' }));
    const { key } = world.users.createKey(ada.id, keyBody({ name: 'laptop' }));
    world.db
      .prepare(
        `INSERT INTO usage_events (user_id, key_id, model, provider, input_tokens, output_tokens, cache_creation_tokens,
           cache_read_tokens, cost_usd, status, latency_ms, started_at, ended_at)
         VALUES (?, ?, 'claude-sonnet-4-5', 'anthropic', 10, 20, 0, 0, 0.5, 'success', 12, ?, ?)`,
      )
      .run(ada.id, key.id, START, START + 12);

    world.users.delete(ada.id);
    expect(
      world.db.prepare('SELECT user_id, key_id, cost_usd FROM usage_events').all() as Array<Record<string, unknown>>,
    ).toEqual([{ user_id: ada.id, key_id: key.id, cost_usd: 0.5 }]);
  });

  it('refuses changes and new keys for a deleted user, and deleting again changes nothing', () => {
    const ada = world.users.create(userBody({ username: 'ada' }));
    const deleted = world.users.delete(ada.id);
    expect(appError(() => world.users.update(ada.id, userChanges({ active: true })))).toMatchObject({
      code: 'USER_DELETED',
      status: 409,
    });
    expect(appError(() => world.users.createKey(ada.id, keyBody({ name: 'x' })))).toMatchObject({
      code: 'USER_DELETED',
      status: 409,
    });
    world.clock.advance(5000);
    expect(world.users.delete(ada.id)).toEqual(deleted);
  });
});
