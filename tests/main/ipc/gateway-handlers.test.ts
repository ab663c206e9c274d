import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { user } from '../../shared/agent-fixtures';
import { json, TOKEN, useAgentStandIn } from './agent-stand-in';

/**
 * The gateway channels from the renderer's side: IPC input in, agent HTTP request out, answer or error back. The
 * agent here is a small HTTP server that answers like the agent's contract says; the real agent is exercised by
 * the integration and E2E tests.
 */
const agent = useAgentStandIn();
const { seen, dispatcher } = agent;
const ada = (changes: Parameters<typeof user>[1] = {}) => user('u_0123456789', { username: 'ada', ...changes });

describe('users and keys over IPC', () => {
  it('lists users with the search, paging and deleted filter the admin chose, using the admin token', async () => {
    agent.answer = (_, response) => json(response, 200, { users: [ada()], total: 1, limit: 20, offset: 40 });
    const result = await dispatcher().dispatch('users:list', {
      hostId: 'prod',
      search: 'ad',
      includeDeleted: true,
      limit: 20,
      offset: 40,
    });
    expect(result).toMatchObject({ ok: true, data: { total: 1, users: [{ username: 'ada' }] } });
    expect(seen).toEqual([
      {
        method: 'GET',
        path: '/api/v1/users',
        query: { search: 'ad', includeDeleted: 'true', limit: '20', offset: '40' },
        body: undefined,
        authorization: `Bearer ${TOKEN}`,
      },
    ]);
  });

  it('creates a user and passes the agent’s own error code through when the name is taken', async () => {
    agent.answer = (request, response) =>
      (request.body as { username: string }).username === 'ada'
        ? json(response, 409, { error: { code: 'USER_NAME_TAKEN', message: 'A user named ada exists already.' } })
        : json(response, 201, ada({ username: 'grace' }));
    const d = dispatcher();
    expect(await d.dispatch('users:create', { hostId: 'prod', user: { username: 'Grace' } })).toMatchObject({
      ok: true,
      data: { username: 'grace' },
    });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      path: '/api/v1/users',
      body: { username: 'grace', role: 'member' },
    });
    expect(await d.dispatch('users:create', { hostId: 'prod', user: { username: 'ada' } })).toEqual({
      ok: false,
      error: {
        code: 'USER_NAME_TAKEN',
        message: 'A user named ada exists already.',
        details: { agentCode: 'USER_NAME_TAKEN' },
      },
    });
  });

  it('refuses a bad user id or an empty change before anything reaches the agent', async () => {
    agent.answer = (_, response) => json(response, 200, ada());
    const d = dispatcher();
    const badId = await d.dispatch('users:update', { hostId: 'prod', userId: '../keys', changes: { active: false } });
    expect(badId).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    const nothing = await d.dispatch('users:update', { hostId: 'prod', userId: 'u_0123456789', changes: {} });
    expect(nothing).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    if (!nothing.ok) expect(nothing.error.message).toMatch(/at least one field/);
    expect(seen).toEqual([]);
  });

  it('disables, deletes, creates, rotates and revokes keys on the paths the agent serves', async () => {
    const key = {
      id: 'k_0123456789',
      userId: 'u_0123456789',
      name: 'laptop',
      prefix: 'sk_user_AbCd',
      scopes: ['gateway'],
      state: 'active',
      expiresAt: null,
      revokedAt: null,
      rotatedToId: null,
      slotId: null,
      rateLimit: { requestsPerMinute: null, concurrentStreams: null },
      lastUsedAt: null,
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    agent.answer = (request, response) => {
      if (request.path.endsWith('/rotate') || (request.method === 'POST' && request.path.endsWith('/keys')))
        json(response, 201, { key, secret: 'sk_user_secretsecret' });
      else if (request.path.includes('/keys/')) json(response, 200, key);
      else json(response, 200, ada({ active: false }));
    };
    const d = dispatcher();
    const ref = { hostId: 'prod', userId: 'u_0123456789' };
    await d.dispatch('users:update', { ...ref, changes: { active: false } });
    await d.dispatch('users:delete', ref);
    const created = await d.dispatch('keys:create', {
      ...ref,
      key: {
        name: 'laptop',
        scopes: ['gateway'],
        expiresAt: '2026-12-31T23:59:59Z',
        rateLimit: { requestsPerMinute: 5 },
      },
    });
    expect(created).toMatchObject({
      ok: true,
      data: { secret: 'sk_user_secretsecret', key: { prefix: 'sk_user_AbCd' } },
    });
    await d.dispatch('keys:update', { hostId: 'prod', keyId: 'k_0123456789', changes: { name: 'desk' } });
    await d.dispatch('keys:rotate', { hostId: 'prod', keyId: 'k_0123456789', graceSeconds: 86_400 });
    await d.dispatch('keys:rotate', { hostId: 'prod', keyId: 'k_0123456789' });
    await d.dispatch('keys:revoke', { hostId: 'prod', keyId: 'k_0123456789' });
    expect(seen.map((s) => [s.method, s.path, s.body])).toEqual([
      ['PATCH', '/api/v1/users/u_0123456789', { active: false }],
      ['DELETE', '/api/v1/users/u_0123456789', undefined],
      [
        'POST',
        '/api/v1/users/u_0123456789/keys',
        {
          name: 'laptop',
          scopes: ['gateway'],
          expiresAt: '2026-12-31T23:59:59Z',
          rateLimit: { requestsPerMinute: 5 },
        },
      ],
      ['PATCH', '/api/v1/keys/k_0123456789', { name: 'desk' }],
      ['POST', '/api/v1/keys/k_0123456789/rotate', { graceSeconds: 86_400 }],
      // The agent contract's default grace period: an hour.
      ['POST', '/api/v1/keys/k_0123456789/rotate', { graceSeconds: 3600 }],
      ['POST', '/api/v1/keys/k_0123456789/revoke', undefined],
    ]);
  });

  it('reads and replaces the quotas of a user or of a key, refusing two quotas on one window', async () => {
    agent.answer = (_, response) => json(response, 200, { quotas: [] });
    const d = dispatcher();
    await d.dispatch('quotas:get', { hostId: 'prod', subject: 'user', userId: 'u_0123456789' });
    await d.dispatch('quotas:get', { hostId: 'prod', subject: 'key', keyId: 'k_0123456789' });
    await d.dispatch('quotas:set', {
      hostId: 'prod',
      subject: 'user',
      userId: 'u_0123456789',
      quotas: [{ window: 'day', maxTokens: 1000 }],
    });
    await d.dispatch('quotas:set', { hostId: 'prod', subject: 'key', keyId: 'k_0123456789', quotas: [] });
    const twice = await d.dispatch('quotas:set', {
      hostId: 'prod',
      subject: 'key',
      keyId: 'k_0123456789',
      quotas: [
        { window: 'day', maxTokens: 1 },
        { window: 'day', maxCostUsd: 1 },
      ],
    });
    expect(twice).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    expect(seen.map((s) => [s.method, s.path, s.body])).toEqual([
      ['GET', '/api/v1/users/u_0123456789/quotas', undefined],
      ['GET', '/api/v1/keys/k_0123456789/quotas', undefined],
      ['PUT', '/api/v1/users/u_0123456789/quotas', { quotas: [{ window: 'day', maxTokens: 1000, maxCostUsd: null }] }],
      ['PUT', '/api/v1/keys/k_0123456789/quotas', { quotas: [] }],
    ]);
  });
});

describe('usage and the gateway over IPC', () => {
  const range = { from: '2026-03-01T00:00:00Z', to: '2026-03-08T00:00:00Z' };

  it('asks for a summary with the range, bucket, grouping and filters as query parameters', async () => {
    const totals = {
      requests: 2,
      errors: 0,
      inputTokens: 10,
      outputTokens: 20,
      cacheCreationTokens: 0,
      cacheReadTokens: 0,
      totalTokens: 30,
      costUsd: 0.001,
    };
    agent.answer = (_, response) =>
      json(response, 200, { ...range, bucket: 'day', groupBy: 'user', totals, groups: [], series: [] });
    const result = await dispatcher().dispatch('usage:summary', {
      hostId: 'prod',
      ...range,
      groupBy: 'user',
      userId: 'u_0123456789',
    });
    expect(result).toMatchObject({ ok: true, data: { totals: { totalTokens: 30 } } });
    expect(seen[0]).toMatchObject({
      path: '/api/v1/usage/summary',
      query: { ...range, bucket: 'day', groupBy: 'user', userId: 'u_0123456789' },
    });
  });

  it('turns an answer of the wrong shape into a message about versions, not a crash', async () => {
    agent.answer = (_, response) => json(response, 200, { rows: 'nope' });
    const result = await dispatcher().dispatch('usage:rows', { hostId: 'prod', ...range });
    expect(result).toMatchObject({ ok: false, error: { code: 'AGENT_ERROR' } });
    if (!result.ok) expect(result.error.message).toMatch(/versions match/);
  });

  it('in browser mode, returns the export content with a file name for the page to download', async () => {
    agent.answer = (_, response) => response.writeHead(200, { 'content-type': 'text/csv' }).end('id,model\n1,claude\n');
    const result = await dispatcher().dispatch('usage:export', { hostId: 'prod', ...range, format: 'csv' });
    expect(result).toEqual({
      ok: true,
      data: {
        fileName: 'usage-prod-2026-03-01-to-2026-03-08.csv',
        mimeType: 'text/csv',
        bytes: 18,
        savedTo: null,
        content: 'id,model\n1,claude\n',
      },
    });
    expect(seen[0]).toMatchObject({ path: '/api/v1/usage/export', query: { ...range, format: 'csv' } });
  });

  it('in the app, writes the export to the file the admin picked, and does nothing when they cancel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-export-'));
    try {
      agent.answer = (_, response) => response.writeHead(200).end('[{"id":1}]');
      const file = join(dir, 'mine.json');
      const picked: string[] = [];
      const saved = await dispatcher({
        pickSaveFile: (name) => (picked.push(name), Promise.resolve(file)),
      }).dispatch('usage:export', { hostId: 'prod', ...range, format: 'json' });
      expect(picked).toEqual(['usage-prod-2026-03-01-to-2026-03-08.json']);
      expect(saved).toMatchObject({ ok: true, data: { savedTo: file, content: null, bytes: 10 } });
      expect(readFileSync(file, 'utf8')).toBe('[{"id":1}]');

      seen.length = 0;
      const cancelled = await dispatcher({ pickSaveFile: () => Promise.resolve(null) }).dispatch('usage:export', {
        hostId: 'prod',
        ...range,
      });
      expect(cancelled).toMatchObject({ ok: true, data: { savedTo: null, content: null } });
      expect(seen).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes an export the agent refuses back with the agent’s code and message', async () => {
    agent.answer = (_, response) =>
      json(response, 400, { error: { code: 'USAGE_RANGE_INVALID', message: 'The range is longer than 400 days.' } });
    const result = await dispatcher().dispatch('usage:export', { hostId: 'prod', ...range });
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'USAGE_RANGE_INVALID', message: 'The range is longer than 400 days.' },
    });
  });

  it('sets the upstream key and legacy mode, and says what is missing when legacy mode names no user', async () => {
    const status = {
      url: 'http://127.0.0.1:7421',
      listen: { host: '127.0.0.1', port: 7421 },
      upstream: { baseUrl: 'https://api.anthropic.com', keyConfigured: true },
      legacyMode: { enabled: true, userId: 'u_0123456789', username: 'ada' },
      defaultRateLimit: { requestsPerMinute: 60, concurrentStreams: 4 },
      inFlight: 0,
    };
    agent.answer = (_, response) => json(response, 200, status);
    const d = dispatcher();
    expect(
      await d.dispatch('gateway:set-upstream-key', { hostId: 'prod', apiKey: ' sk-ant-test-0123 ' }),
    ).toMatchObject({ ok: true, data: { upstream: { keyConfigured: true } } });
    await d.dispatch('gateway:update', {
      hostId: 'prod',
      changes: { legacyMode: { enabled: true, userId: 'u_0123456789' } },
    });
    const unnamed = await d.dispatch('gateway:update', {
      hostId: 'prod',
      changes: { legacyMode: { enabled: true, userId: null } },
    });
    expect(unnamed).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    if (!unnamed.ok) expect(unnamed.error.message).toMatch(/name the user/);
    expect(seen.map((s) => [s.method, s.path, s.body])).toEqual([
      ['PUT', '/api/v1/gateway/upstream-key', { apiKey: 'sk-ant-test-0123' }],
      ['PATCH', '/api/v1/gateway', { legacyMode: { enabled: true, userId: 'u_0123456789' } }],
    ]);
  });
});
