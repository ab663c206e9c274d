import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// The agent's own Fastify (the root package does not depend on it).
import Fastify, { type FastifyInstance } from '../../../../remote-agent/node_modules/fastify/fastify.js';
import { AgentErrorCode, type ApiKey, type User } from '../../../../remote-agent/src/contract/index.js';
import { AppError } from '../../../../remote-agent/src/errors.js';
import { registerErrorHandling } from '../../../../remote-agent/src/http/errors.js';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';
import { UsageQueries } from '../../../../remote-agent/src/modules/usage/queries.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder } from '../../../../remote-agent/src/modules/usage/recorder.js';
import { registerUsageRoutes, type UserLookup } from '../../../../remote-agent/src/modules/usage/routes.js';
import { addKey, addUser, tempDb, usageEvent, type TempDb } from './helpers.js';

const ADA = 'u_aaaaaaaaaa';
const GONE = 'u_gggggggggg';
const ADA_KEY = 'k_aaaaaaaaaa';

let t: TempDb;
let app: FastifyInstance;
let quotas: QuotaService;

function user(id: string, username: string, deleted = false): User {
  return {
    id,
    username,
    email: null,
    displayName: null,
    role: 'member',
    active: !deleted,
    deleted,
    activeKeys: 0,
    createdAt: '2026-11-01T00:00:00.000Z',
    updatedAt: '2026-11-01T00:00:00.000Z',
    deletedAt: deleted ? '2026-11-02T00:00:00.000Z' : null,
  };
}

/** Stands in for the user service: knows ada, her key and a deleted user. */
const users: UserLookup = {
  get(id) {
    if (id === ADA) return user(ADA, 'ada');
    if (id === GONE) return user(GONE, 'gone', true);
    throw new AppError(AgentErrorCode.USER_NOT_FOUND, 404, `No user ${id}.`);
  },
  getKey(keyId) {
    if (keyId === ADA_KEY) return { id: ADA_KEY, userId: ADA } as ApiKey;
    throw new AppError(AgentErrorCode.KEY_NOT_FOUND, 404, `No key ${keyId}.`);
  },
};

beforeEach(async () => {
  t = tempDb();
  addUser(t.db, ADA, 'ada');
  addKey(t.db, ADA_KEY, ADA, 'laptop', 'sk_user_Ab3');
  // A fixed clock: an empty 5-hour window resets 5 hours from now.
  quotas = new QuotaService({ db: t.db, now: () => Date.UTC(2026, 10, 20) });
  const recorder = new UsageRecorder({ db: t.db, prices: new PriceTable(), quotas });
  await recorder.record(usageEvent({ requestId: 'req_a', startedAt: Date.UTC(2026, 10, 10, 12) }));
  await recorder.record(usageEvent({ requestId: 'req_b', startedAt: Date.UTC(2026, 10, 11, 12), inputTokens: 7 }));
  await recorder.close();
  app = Fastify();
  registerErrorHandling(app);
  registerUsageRoutes(app, {
    queries: new UsageQueries({
      db: t.db,
      archiveFile: join(t.dir, 'usage-archive.db'),
      now: () => Date.UTC(2027, 0, 1),
    }),
    quotas,
    users,
    archiveAfterDays: 30,
  });
  await app.ready();
});

afterEach(async () => {
  await app.close();
  t.cleanup();
});

describe('usage routes', () => {
  it('answers a summary, and a 400 USAGE_RANGE_INVALID for a reversed range', async () => {
    const ok = await app.inject({
      url: '/api/v1/usage/summary?from=2026-11-01T00:00:00Z&to=2026-11-30T00:00:00Z&groupBy=user',
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ totals: { requests: 2 }, groups: [{ key: ADA, label: 'ada' }] });
    const bad = await app.inject({ url: '/api/v1/usage/summary?from=2026-11-30T00:00:00Z&to=2026-11-01T00:00:00Z' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'USAGE_RANGE_INVALID' } });
  });

  it('downloads a CSV export as an attachment', async () => {
    const response = await app.inject({
      url: '/api/v1/usage/export?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z',
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe('attachment; filename="usage-2026-11-01-to-2026-12-01.csv"');
    const lines = response.body.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^id,request_id,user_id,username,/);
    expect(lines[1]).toMatch(/^1,req_a,u_aaaaaaaaaa,ada,/);
  });

  it('downloads a JSON export, and refuses a bad query with 400 VALIDATION_FAILED naming the field', async () => {
    const json = await app.inject({
      url: '/api/v1/usage/export?from=2026-11-11T00:00:00Z&to=2026-12-01T00:00:00Z&format=json',
    });
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json.headers['content-disposition']).toContain('.json"');
    expect(json.json<Array<{ requestId: string }>>().map((r) => r.requestId)).toEqual(['req_b']);

    const bad = await app.inject({ url: '/api/v1/usage/export?from=yesterday&to=2026-12-01T00:00:00Z&format=xls' });
    expect(bad.statusCode).toBe(400);
    const body = bad.json<{ error: { code: string; issues: Array<{ path: string }> } }>();
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.issues.map((i) => i.path).sort()).toEqual(['query.format', 'query.from']);
  });

  it('sets and reads quotas of users and keys, and 404s an unknown one', async () => {
    const set = await app.inject({
      method: 'PUT',
      url: `/api/v1/users/${ADA}/quotas`,
      payload: { quotas: [{ window: 'day', maxTokens: 1000 }] },
    });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toMatchObject({
      quotas: [{ subject: 'user', window: 'day', maxTokens: 1000, maxCostUsd: null }],
    });
    const read = await app.inject({ url: `/api/v1/users/${ADA}/quotas` });
    expect(read.json()).toEqual(set.json());
    expect(quotas.status('user', ADA)).toHaveLength(1);

    const key = await app.inject({
      method: 'PUT',
      url: `/api/v1/keys/${ADA_KEY}/quotas`,
      payload: { quotas: [{ window: '5h', maxCostUsd: 2.5 }] },
    });
    expect(key.json()).toMatchObject({ quotas: [{ subject: 'key', window: '5h', maxCostUsd: 2.5 }] });
    expect((await app.inject({ url: `/api/v1/keys/${ADA_KEY}/quotas` })).json()).toEqual(key.json());

    const unknown = await app.inject({ url: '/api/v1/users/u_zzzzzzzzzz/quotas' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: 'USER_NOT_FOUND' } });
    const unknownKey = await app.inject({
      method: 'PUT',
      url: '/api/v1/keys/k_zzzzzzzzzz/quotas',
      payload: { quotas: [] },
    });
    expect(unknownKey.json()).toMatchObject({ error: { code: 'KEY_NOT_FOUND' } });
  });

  it('refuses quotas for a deleted user and two quotas for one window', async () => {
    const deleted = await app.inject({
      method: 'PUT',
      url: `/api/v1/users/${GONE}/quotas`,
      payload: { quotas: [{ window: 'day', maxTokens: 1 }] },
    });
    expect(deleted.statusCode).toBe(409);
    expect(deleted.json()).toMatchObject({ error: { code: 'USER_DELETED' } });
    const twice = await app.inject({
      method: 'PUT',
      url: `/api/v1/users/${ADA}/quotas`,
      payload: {
        quotas: [
          { window: 'day', maxTokens: 1 },
          { window: 'day', maxCostUsd: 1 },
        ],
      },
    });
    expect(twice.statusCode).toBe(400);
    expect(twice.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
  });

  it('archives rows older than the configured age by default', async () => {
    const response = await app.inject({ method: 'POST', url: '/api/v1/usage/archive', payload: {} });
    expect(response.statusCode).toBe(200);
    // Both rows are over 30 days old on 2027-01-01; the newest one stays so that row ids are never reused.
    expect(response.json()).toMatchObject({ archivedRows: 1, before: '2026-12-02T00:00:00.000Z' });
  });
});
