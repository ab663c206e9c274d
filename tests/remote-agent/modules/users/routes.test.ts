import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// The agent's own Fastify (the root package does not depend on it).
import Fastify, { type FastifyInstance } from '../../../../remote-agent/node_modules/fastify/fastify.js';
import { API_PREFIX, type ApiKey, type CreatedKey, type User } from '../../../../remote-agent/src/contract/index.js';
import { registerErrorHandling } from '../../../../remote-agent/src/http/errors.js';
import { registerUserRoutes } from '../../../../remote-agent/src/modules/users/routes.js';
import { makeWorld, type World } from './setup.js';

let world: World;
let app: FastifyInstance;

beforeEach(async () => {
  world = makeWorld();
  app = Fastify();
  registerErrorHandling(app);
  registerUserRoutes(app, world.users);
  await app.ready();
});

afterEach(async () => {
  await app.close();
  world.close();
});

async function call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, payload?: object) {
  const response = await app.inject({ method, url: `${API_PREFIX}${path}`, ...(payload ? { payload } : {}) });
  return { status: response.statusCode, body: response.json<T>() };
}

describe('user and key routes', () => {
  it('creates a user and a key, lists the key without its secret, and the key stops when revoked', async () => {
    const created = await call<User>('POST', '/users', { username: 'Ada', email: 'ada@example.com' });
    expect(created).toMatchObject({ status: 201, body: { username: 'ada', role: 'member', active: true } });
    const userId = created.body.id;

    const issued = await call<CreatedKey>('POST', `/users/${userId}/keys`, { name: 'laptop' });
    expect(issued.status).toBe(201);
    expect(world.verifier.verify(issued.body.secret).ok).toBe(true);

    const listed = await call<{ keys: ApiKey[] }>('GET', `/users/${userId}/keys`);
    expect(listed.body.keys.map((key) => key.id)).toEqual([issued.body.key.id]);
    expect(JSON.stringify(listed.body)).not.toContain(issued.body.secret.slice(12));

    const revoked = await call<ApiKey>('POST', `/keys/${issued.body.key.id}/revoke`);
    expect(revoked).toMatchObject({ status: 200, body: { state: 'revoked' } });
    expect(world.verifier.verify(issued.body.secret)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('searches users and disables, rotates and deletes through the API', async () => {
    const { body: ada } = await call<User>('POST', '/users', { username: 'ada' });
    await call<User>('POST', '/users', { username: 'grace' });
    const found = await call<{ users: User[]; total: number }>('GET', '/users?search=gra&limit=10');
    expect(found.body).toMatchObject({ total: 1, limit: 10, offset: 0, users: [{ username: 'grace' }] });

    const { body: old } = await call<CreatedKey>('POST', `/users/${ada.id}/keys`, { name: 'laptop' });
    const rotated = await call<CreatedKey>('POST', `/keys/${old.key.id}/rotate`, { graceSeconds: 0 });
    expect(rotated.status).toBe(201);
    expect(world.verifier.verify(old.secret)).toMatchObject({ ok: false, reason: 'expired' });

    const disabled = await call<User>('PATCH', `/users/${ada.id}`, { active: false });
    expect(disabled.body).toMatchObject({ active: false, activeKeys: 1 });
    expect(world.verifier.verify(rotated.body.secret)).toMatchObject({ ok: false, reason: 'user_disabled' });

    const deleted = await call<User>('DELETE', `/users/${ada.id}`);
    expect(deleted.body).toMatchObject({ deleted: true, activeKeys: 0 });
  });

  it('answers errors with stable codes: taken name, unknown user, bad body', async () => {
    await call('POST', '/users', { username: 'ada' });
    expect(await call('POST', '/users', { username: 'ada' })).toMatchObject({
      status: 409,
      body: { error: { code: 'USER_NAME_TAKEN' } },
    });
    expect(await call('GET', '/users/u_0000000000')).toMatchObject({
      status: 404,
      body: { error: { code: 'USER_NOT_FOUND' } },
    });
    expect(await call('POST', '/users/u_0000000000/keys', { name: 'x', expiresAt: 'tomorrow' })).toMatchObject({
      status: 400,
      body: { error: { code: 'VALIDATION_FAILED', issues: [{ path: 'body.expiresAt' }] } },
    });
    expect(await call('PATCH', '/keys/k_0000000000', {})).toMatchObject({
      status: 400,
      body: { error: { code: 'VALIDATION_FAILED' } },
    });
  });
});
