import { describe, expect, it } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createUsersStore, keysKey, quotaKey } from '../../../src/renderer/src/stores/users';
import type { ApiKey, QuotaStatus } from '../../../src/shared/ipc/contract';
import { apiKey, user } from '../../shared/agent-fixtures';
import { fakeIpc } from '../fake-ipc';

describe('users store', () => {
  it('lists a host’s users with the search typed, and starts again at the first page for a new search', async () => {
    const ipc = fakeIpc({ 'users:list': () => ({ users: [user('u_aaaaaaaaaa')], total: 1, limit: 50, offset: 0 }) });
    const store = createUsersStore(ipc.client);
    await store.getState().load('prod', { offset: 50 });
    await store.getState().load('prod', { search: '  ada ' });
    expect(ipc.callsTo('users:list')).toEqual([
      { hostId: 'prod', includeDeleted: false, limit: 50, offset: 50 },
      { hostId: 'prod', search: 'ada', includeDeleted: false, limit: 50, offset: 0 },
    ]);
    expect(store.getState().byHost.prod).toMatchObject({ total: 1, search: '  ada ', loading: false, error: null });
    expect(store.getState().byHost.prod?.users.map((u) => u.username)).toEqual(['aaaaaaaaaa']);
  });

  it('shows the answer to the latest search even when an earlier, slower one answers last', async () => {
    const pending: Array<() => void> = [];
    const ipc = fakeIpc({
      'users:list': (input: { search?: string }) =>
        new Promise((resolve) =>
          pending.push(() =>
            resolve({ users: [user(`u_${(input.search ?? 'all').padEnd(10, 'x')}`)], total: 1, limit: 50, offset: 0 }),
          ),
        ),
    });
    const store = createUsersStore(ipc.client);
    const first = store.getState().load('prod', { search: 'a' });
    const second = store.getState().load('prod', { search: 'ad' });
    await Promise.resolve();
    await Promise.resolve();
    pending[1]!();
    await second;
    pending[0]!();
    await first;
    expect(store.getState().byHost.prod?.users.map((u) => u.id)).toEqual(['u_adxxxxxxxx']);
  });

  it('keeps the list and shows why when loading fails', async () => {
    const ipc = fakeIpc({ 'users:list': () => ({ users: [user('u_aaaaaaaaaa')], total: 1, limit: 50, offset: 0 }) });
    const store = createUsersStore(ipc.client);
    await store.getState().load('prod');
    ipc.handle('users:list', () => {
      throw new IpcClientError({ code: 'HOST_NOT_CONNECTED', message: 'prod is not connected. Connect it first.' });
    });
    await store.getState().load('prod');
    expect(store.getState().byHost.prod?.error).toEqual({
      code: 'HOST_NOT_CONNECTED',
      message: 'prod is not connected. Connect it first.',
    });
    expect(store.getState().byHost.prod?.users).toHaveLength(1);
  });

  it('shows a disabled user as disabled at once, and a created or deleted one after reloading the list', async () => {
    let users = [user('u_aaaaaaaaaa')];
    const ipc = fakeIpc({
      'users:list': () => ({ users, total: users.length, limit: 50, offset: 0 }),
      'users:update': () => user('u_aaaaaaaaaa', { active: false }),
      'users:create': () => ((users = [...users, user('u_bbbbbbbbbb')]), users[1]),
      'users:delete': () => ((users = users.slice(1)), user('u_aaaaaaaaaa', { deleted: true })),
    });
    const store = createUsersStore(ipc.client);
    await store.getState().load('prod');
    await store.getState().update('prod', 'u_aaaaaaaaaa', { active: false });
    expect(store.getState().byHost.prod?.users[0]?.active).toBe(false);
    await store.getState().create('prod', { username: 'bbbbbbbb' });
    expect(store.getState().byHost.prod?.users.map((u) => u.id)).toEqual(['u_aaaaaaaaaa', 'u_bbbbbbbbbb']);
    await store.getState().remove('prod', 'u_aaaaaaaaaa');
    expect(store.getState().byHost.prod?.users.map((u) => u.id)).toEqual(['u_bbbbbbbbbb']);
  });

  it('returns a new key’s secret to the caller but keeps only the key’s public fields in the store', async () => {
    let keys: ApiKey[] = [];
    const ipc = fakeIpc({
      'users:list': () => ({
        users: [user('u_aaaaaaaaaa', { activeKeys: keys.length })],
        total: 1,
        limit: 50,
        offset: 0,
      }),
      'keys:list': () => ({ keys }),
      'keys:create': () => {
        keys = [apiKey('k_aaaaaaaaaa')];
        return { key: keys[0], secret: 'sk_user_theSecretValue' };
      },
    });
    const store = createUsersStore(ipc.client);
    const created = await store.getState().createKey('prod', 'u_aaaaaaaaaa', { name: 'laptop' });
    expect(created.secret).toBe('sk_user_theSecretValue');
    expect(store.getState().keys[keysKey('prod', 'u_aaaaaaaaaa')]?.items.map((k) => k.id)).toEqual(['k_aaaaaaaaaa']);
    expect(store.getState().byHost.prod?.users[0]?.activeKeys).toBe(1);
    expect(JSON.stringify(store.getState())).not.toContain('sk_user_theSecretValue');
  });

  it('shows a revoked key as revoked and a rotated one as rotating next to its replacement', async () => {
    let keys = [apiKey('k_aaaaaaaaaa')];
    const ipc = fakeIpc({
      'users:list': () => ({ users: [], total: 0, limit: 50, offset: 0 }),
      'keys:list': () => ({ keys }),
      'keys:rotate': (input: { graceSeconds: number }) => {
        expect(input.graceSeconds).toBe(86_400);
        keys = [apiKey('k_aaaaaaaaaa', { state: 'rotating' }), apiKey('k_bbbbbbbbbb')];
        return { key: keys[1], secret: 'sk_user_next' };
      },
      'keys:revoke': () => {
        keys = keys.map((k) => (k.id === 'k_bbbbbbbbbb' ? { ...k, state: 'revoked' as const } : k));
        return keys[1];
      },
    });
    const store = createUsersStore(ipc.client);
    const states = () => store.getState().keys[keysKey('prod', 'u_aaaaaaaaaa')]?.items.map((k) => `${k.id}:${k.state}`);
    await store.getState().rotateKey('prod', 'u_aaaaaaaaaa', 'k_aaaaaaaaaa', 86_400);
    expect(states()).toEqual(['k_aaaaaaaaaa:rotating', 'k_bbbbbbbbbb:active']);
    await store.getState().revokeKey('prod', 'u_aaaaaaaaaa', 'k_bbbbbbbbbb');
    expect(states()).toEqual(['k_aaaaaaaaaa:rotating', 'k_bbbbbbbbbb:revoked']);
  });

  it('keeps the quotas of a user and of a key apart, with what is used', async () => {
    const quota = (subject: 'user' | 'key', usedTokens: number): QuotaStatus => ({
      subject,
      window: 'day',
      maxTokens: 1000,
      maxCostUsd: null,
      usedTokens,
      usedCostUsd: 0,
      resetsAt: '2026-01-02T00:00:00.000Z',
      exceeded: usedTokens >= 1000,
    });
    const ipc = fakeIpc({
      'quotas:get': (input: { subject: 'user' | 'key' }) => ({ quotas: [quota(input.subject, 10)] }),
      'quotas:set': (input: { subject: 'user' | 'key' }) => ({ quotas: [quota(input.subject, 1000)] }),
    });
    const store = createUsersStore(ipc.client);
    const userOwner = { hostId: 'prod', subject: 'user' as const, userId: 'u_aaaaaaaaaa' };
    const keyOwner = { hostId: 'prod', subject: 'key' as const, keyId: 'k_aaaaaaaaaa' };
    await store.getState().loadQuotas(userOwner);
    await store.getState().setQuotas(keyOwner, [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    expect(store.getState().quotas[quotaKey(userOwner)]?.items[0]).toMatchObject({ subject: 'user', usedTokens: 10 });
    expect(store.getState().quotas[quotaKey(keyOwner)]?.items[0]).toMatchObject({ subject: 'key', exceeded: true });
    expect(ipc.callsTo('quotas:set')).toEqual([
      { ...keyOwner, quotas: [{ window: 'day', maxTokens: 1000, maxCostUsd: null }] },
    ]);
  });
});
