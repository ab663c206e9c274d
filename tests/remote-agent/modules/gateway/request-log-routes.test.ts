/**
 * The request log's and the upstream test's admin routes, on an agent built with buildApp (admin auth included) and
 * the fake Messages API as the upstream stand-in.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import {
  CreateKeyBody,
  CreateUserBody,
  ErrorBody,
  RefusalCount,
  RefusalList,
  UpstreamTestResult,
  type CreatedKey,
  type User,
} from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../../remote-agent/src/http/admin-token.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { testUpstream } from '../../../../remote-agent/src/modules/gateway/upstream-test.js';
import { idleSupervisor } from '../../helpers/idle-supervisor.js';
import {
  FAKE_UPSTREAM_KEY,
  startFakeAnthropic,
  type FakeAnthropic,
} from '../../../integration/fixtures/fake-anthropic.js';

const REFUSALS = '/api/v1/gateway/refusals';
const COUNT = '/api/v1/gateway/refusals/count';
const UPSTREAM_TEST = '/api/v1/gateway/upstream-test';

let dir: string;
let db: Db;
let agent: Agent;
let upstream: FakeAnthropic;
let token: string;
let gatewayUrl: string;
let ada: User;
let adaKey: CreatedKey;
const logs: string[] = [];

async function admin(method: 'GET' | 'POST' | 'PUT', url: string, payload?: object, auth = `Bearer ${token}`) {
  const response = await agent.app.inject({
    method,
    url,
    headers: auth ? { authorization: auth } : {},
    ...(payload ? { payload } : {}),
  });
  return { status: response.statusCode, body: response.json<unknown>() };
}

beforeAll(async () => {
  upstream = await startFakeAnthropic();
  dir = mkdtempSync(join(tmpdir(), 'sd-reqlog-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'admin.port': 0,
      'gateway.enabled': true,
      'gateway.host': '127.0.0.1',
      'gateway.port': 0,
      'gateway.upstreamBaseUrl': upstream.url,
    },
  });
  mkdirSync(config.runDir, { recursive: true });
  token = ensureAdminToken(dir);
  db = openDatabase(join(dir, 'agent.db'));
  agent = await buildApp({
    config,
    db,
    supervisor: idleSupervisor,
    logger: createLogger('debug', { write: (line: string) => void logs.push(line) }),
    tools: { dtach: null, ttyd: null, tmux: null },
  });
  await agent.start();
  gatewayUrl = await agent.gateway!.listen();
  ada = agent.users.create(CreateUserBody.parse({ username: 'ada' }));
  adaKey = agent.users.createKey(ada.id, CreateKeyBody.parse({ name: 'laptop' }));
});

afterAll(async () => {
  await agent?.close();
  db?.close();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('admin credentials on the new routes', () => {
  const routes: Array<['GET' | 'POST', string]> = [
    ['GET', REFUSALS],
    ['GET', `${COUNT}?from=2026-01-01T00:00:00Z`],
    ['POST', UPSTREAM_TEST],
  ];

  it('refuses a request without the admin token (401 AUTH_TOKEN_MISSING)', async () => {
    for (const [method, url] of routes) {
      const response = await admin(method, url, undefined, '');
      expect(response, url).toMatchObject({ status: 401, body: { error: { code: 'AUTH_TOKEN_MISSING' } } });
    }
  });

  it('refuses a wrong admin token (401 AUTH_TOKEN_INVALID)', async () => {
    for (const [method, url] of routes) {
      const response = await admin(method, url, undefined, `Bearer ${token.slice(0, -2)}xx`);
      expect(response, url).toMatchObject({ status: 401, body: { error: { code: 'AUTH_TOKEN_INVALID' } } });
    }
  });

  it('refuses stolen credentials of another kind: an end user’s key or the organisation’s upstream key', async () => {
    for (const stolen of [adaKey.secret, FAKE_UPSTREAM_KEY]) {
      for (const [method, url] of routes) {
        const response = await admin(method, url, undefined, `Bearer ${stolen}`);
        expect(response, url).toMatchObject({ status: 401, body: { error: { code: 'AUTH_TOKEN_INVALID' } } });
      }
    }
  });

  it('is not on the public listener, even with the real admin token', async () => {
    for (const [method, url] of routes) {
      const response = await fetch(`${gatewayUrl}${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'x-api-key': adaKey.secret },
      });
      expect(response.status, url).toBe(404);
      expect(await response.text()).not.toContain('"rows"');
    }
  });
});

describe('refusal list and count', () => {
  it('lists refusals with their reason and counts them in a window', async () => {
    // Refusals made the way the gateway reports them (its onRefused hook feeds record()).
    const at = Date.now();
    agent.requestLog.record({
      at,
      status: 401,
      code: 'GATEWAY_KEY_REVOKED',
      message: 'This API key was revoked. Ask your Slotdeck admin for a new key.',
      userId: ada.id,
      keyId: adaKey.key.id,
      keyPrefix: null,
      model: 'claude-sonnet-4-6',
      method: 'POST',
      path: '/v1/messages',
      ip: '127.0.0.1',
    });
    const list = await admin('GET', `${REFUSALS}?userId=${ada.id}&keyId=${adaKey.key.id}&status=401`);
    expect(list.status).toBe(200);
    const rows = RefusalList.parse(list.body).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ code: 'GATEWAY_KEY_REVOKED', username: 'ada', keyName: 'laptop' });
    expect(JSON.stringify(list.body)).not.toContain(adaKey.secret);

    const count = await admin('GET', `${COUNT}?from=${new Date(at - 86_400_000).toISOString()}`);
    expect(RefusalCount.parse(count.body).refusals).toBe(1);
  });

  it('answers 400 VALIDATION_FAILED naming each bad field, and a reversed range', async () => {
    const bad = await admin('GET', `${REFUSALS}?userId=ada&status=200&limit=0&cursor=x&code=lower&extra=1`);
    expect(bad.status).toBe(400);
    const issues = ErrorBody.parse(bad.body).error.issues!.map((i) => i.path);
    expect(issues.sort()).toEqual([
      'query',
      'query.code',
      'query.cursor',
      'query.limit',
      'query.status',
      'query.userId',
    ]);
    const reversed = await admin('GET', `${COUNT}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z`);
    expect(reversed).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(ErrorBody.parse(reversed.body).error.message).toContain('swap them');
  });

  it('answers any query with a list or a 400, never a 500 (fuzz)', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('', '0', '-1', '401', '1e3', '999999999999999999999', 'null', '[]', '%00', 'u_aaaaaaaaaa'),
      fc.constantFrom('GATEWAY_KEY_REVOKED', '2026-12-01T00:00:00Z', '2026-13-01T00:00:00Z', 'k_aaaaaaaaaa'),
    );
    const field = fc.constantFrom('userId', 'keyId', 'status', 'code', 'from', 'to', 'limit', 'cursor', 'x', 'from[]');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(field, value), { maxLength: 6 }), fc.boolean(), async (pairs, counting) => {
        const query = new URLSearchParams(pairs).toString();
        const response = await admin('GET', `${counting ? COUNT : REFUSALS}?${query}`);
        expect([200, 400], query).toContain(response.status);
        if (response.status === 400) {
          expect(ErrorBody.parse(response.body).error.code).toBe('VALIDATION_FAILED');
          return;
        }
        if (counting) {
          RefusalCount.parse(response.body);
          return;
        }
        const rows = RefusalList.parse(response.body).rows;
        const params = new URLSearchParams(query);
        for (const row of rows) {
          if (params.has('userId')) expect(row.userId).toBe(params.get('userId'));
          if (params.has('status')) expect(row.status).toBe(Number(params.get('status')));
        }
      }),
      { numRuns: 300 },
    );
    expect(logs.join('\n')).not.toMatch(/"level":50/);
  });
});

describe('Test upstream (fake upstream stand-in)', () => {
  it('answers 409 GATEWAY_UPSTREAM_KEY_MISSING before a key is set', async () => {
    const response = await admin('POST', UPSTREAM_TEST);
    expect(response).toMatchObject({ status: 409, body: { error: { code: 'GATEWAY_UPSTREAM_KEY_MISSING' } } });
  });

  it('reports a key upstream refuses, in words, without the key', async () => {
    const wrongKey = 'sk-ant-wrong-organisation-key-000000';
    await admin('PUT', '/api/v1/gateway/upstream-key', { apiKey: wrongKey });
    const response = await admin('POST', UPSTREAM_TEST);
    expect(response.status).toBe(200);
    const result = UpstreamTestResult.parse(response.body);
    expect(result).toMatchObject({ ok: false, status: 401, problem: 'key_rejected', baseUrl: upstream.url });
    expect(result.message).toContain('Upstream refused the organisation key');
    expect(JSON.stringify(result)).not.toContain(wrongKey);
    expect(logs.join('\n')).not.toContain(wrongKey);
  });

  it('reports ok and the latency with the right key, through one real call upstream', async () => {
    await admin('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
    const before = upstream.requests.length;
    const response = await admin('POST', UPSTREAM_TEST);
    const result = UpstreamTestResult.parse(response.body);
    expect(result).toMatchObject({ ok: true, status: 200, problem: null });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(upstream.requests.slice(before)).toMatchObject([{ method: 'GET', path: '/v1/models' }]);
    expect(upstream.requests.at(-1)!.headers['x-api-key']).toBe(FAKE_UPSTREAM_KEY);
    expect(JSON.stringify(result)).not.toContain(FAKE_UPSTREAM_KEY);
  });
});

describe('testUpstream failures in words', () => {
  let silent: Server;
  let silentPort = 0;
  beforeAll(async () => {
    // Accepts connections and never answers.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(() => {
    silent.close();
  });

  it('says unreachable when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await testUpstream({ baseUrl: `http://127.0.0.1:${port}`, apiKey: FAKE_UPSTREAM_KEY });
    expect(result).toMatchObject({ ok: false, problem: 'unreachable', status: null });
    expect(result.message).toContain('ECONNREFUSED');
  });

  it('says TLS when the address does not speak TLS', async () => {
    const result = await testUpstream({ baseUrl: upstream.url.replace('http:', 'https:'), apiKey: FAKE_UPSTREAM_KEY });
    expect(result).toMatchObject({ ok: false, problem: 'tls' });
    expect(result.message).toContain('TLS');
  });

  it('says timeout when upstream never answers', async () => {
    const result = await testUpstream({
      baseUrl: `http://127.0.0.1:${silentPort}`,
      apiKey: FAKE_UPSTREAM_KEY,
      timeoutMs: 300,
    });
    expect(result).toMatchObject({ ok: false, problem: 'timeout' });
    expect(JSON.stringify(result)).not.toContain(FAKE_UPSTREAM_KEY);
  });
});
