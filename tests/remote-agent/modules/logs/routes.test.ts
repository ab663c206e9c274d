/**
 * The log viewer's routes and the audit of admin actions, on an agent built with buildApp (admin auth included):
 * who may read logs, what a page and a download hold, coded errors, a fuzz test, and the audit row every
 * state-changing admin call leaves (who: the panel's host profile).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import {
  AgentErrorCode,
  CreateKeyBody,
  CreateUserBody,
  LogPage,
  LogSourceList,
  type CreatedKey,
} from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../../remote-agent/src/http/admin-token.js';
import { agentLogPath, createLogger } from '../../../../remote-agent/src/logger.js';
import { idleSupervisor } from '../../helpers/idle-supervisor.js';

let dir: string;
let db: Db;
let agent: Agent;
let token: string;
let userKey: CreatedKey;
let adaId: string;
const SLOT = 'logslot001';
const KNOWN_CODES = new Set<string>(Object.values(AgentErrorCode));

async function call(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  options: { auth?: string | null; payload?: unknown; headers?: Record<string, string> } = {},
) {
  const auth = options.auth === undefined ? `Bearer ${token}` : options.auth;
  const response = await agent.app.inject({
    method,
    url,
    headers: { ...(auth ? { authorization: auth } : {}), ...options.headers },
    ...(options.payload === undefined ? {} : { payload: options.payload as object }),
  });
  return { status: response.statusCode, body: response.body, headers: response.headers };
}

const pm2Line = (text: string): string => `2026-12-01T10:00:00: ${text}\n`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-log-routes-'));
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'admin.port': 0, 'gateway.enabled': false } });
  mkdirSync(config.runDir, { recursive: true });
  token = ensureAdminToken(dir);
  db = openDatabase(join(dir, 'agent.db'));
  agent = await buildApp({
    config,
    db,
    supervisor: idleSupervisor,
    logger: createLogger('silent'),
    tools: { dtach: null, ttyd: null, tmux: null },
  });
  await agent.start();
  const at = new Date().toISOString();
  db.prepare(
    `INSERT INTO slots (id, name, command_json, argv_json, env_json, work_dir, work_dir_managed, home_dir, terminal,
       desired_state, cols, rows, created_at, updated_at, owner_id)
     VALUES (?, 'builder', '["sh"]', '["sh"]', '{}', ?, 0, ?, 'builtin', 'stopped', 80, 24, ?, ?, NULL)`,
  ).run(SLOT, dir, dir, at, at);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(agentLogPath(dir), '{"level":30,"time":1764583200000,"msg":"older"}\n');
  writeFileSync(`${agentLogPath(dir)}.1`, '{"level":50,"time":1764579600000,"msg":"oldest failure"}\n');
  writeFileSync(join(dir, 'logs', `slot-${SLOT}.out.log`), pm2Line('hello from the holder') + pm2Line('second'));
  writeFileSync(join(dir, 'logs', `slot-${SLOT}.err.log`), pm2Line('dtach: cannot bind'));
  const ada = agent.users.create(CreateUserBody.parse({ username: 'ada' }));
  adaId = ada.id;
  userKey = agent.users.createKey(ada.id, CreateKeyBody.parse({ name: 'laptop' }));
});

afterAll(async () => {
  await agent?.close();
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('credentials on the log routes', () => {
  const routes = ['/api/v1/logs', '/api/v1/logs/agent', '/api/v1/logs/agent/download', `/api/v1/logs/slot-${SLOT}.out`];
  it.each([
    ['missing', null, 'AUTH_TOKEN_MISSING'],
    ['wrong', 'Bearer nope', 'AUTH_TOKEN_INVALID'],
    ['stolen (an end user’s key)', 'USER_KEY', 'AUTH_TOKEN_INVALID'],
    ['in the wrong scheme', 'BASIC', 'AUTH_TOKEN_INVALID'],
  ])('refuses a %s credential with 401 and no log line', async (_what, auth, code) => {
    const header =
      auth === 'USER_KEY'
        ? `Bearer ${userKey.secret}`
        : auth === 'BASIC'
          ? `Basic ${Buffer.from(`admin:${token}`).toString('base64')}`
          : auth;
    for (const url of routes) {
      const response = await call('GET', url, { auth: header });
      expect(response.status, url).toBe(401);
      expect(JSON.parse(response.body)).toMatchObject({ error: { code } });
      expect(response.body).not.toContain('hello from the holder');
      expect(response.body).not.toContain('older');
    }
  });
});

describe('sources, pages and downloads', () => {
  it('lists the agent and each slot’s output and errors, with their sizes', async () => {
    const { sources } = LogSourceList.parse(JSON.parse((await call('GET', '/api/v1/logs')).body));
    expect(sources.map((s) => s.id)).toEqual(['agent', `slot-${SLOT}.out`, `slot-${SLOT}.err`]);
    expect(sources[0]).toMatchObject({ kind: 'agent', files: 2 });
    expect(sources[1]).toMatchObject({ label: 'builder (output)', slotId: SLOT, stream: 'out' });
  });

  it('reads the agent’s lines across its rotated file, newest last, with level and time', async () => {
    const page = LogPage.parse(JSON.parse((await call('GET', '/api/v1/logs/agent')).body));
    expect(page.lines.map((l) => [l.level, l.text])).toEqual([
      ['error', 'oldest failure'],
      ['info', 'older'],
    ]);
    expect(page.lines[1]!.time).toBe(new Date(1764583200000).toISOString());
    const errors = LogPage.parse(JSON.parse((await call('GET', '/api/v1/logs/agent?level=error')).body));
    expect(errors.lines.map((l) => l.text)).toEqual(['oldest failure']);
  });

  it('reads a slot’s PM2 output without its time prefix, filtered by text', async () => {
    const page = LogPage.parse(JSON.parse((await call('GET', `/api/v1/logs/slot-${SLOT}.out?q=HOLDER`)).body));
    expect(page.lines.map((l) => l.text)).toEqual(['hello from the holder']);
    expect(page.lines[0]!.time).toBe(new Date('2026-12-01T10:00:00').toISOString());
  });

  it('downloads the whole log, oldest file first', async () => {
    const response = await call('GET', '/api/v1/logs/agent/download');
    expect(response.status).toBe(200);
    expect(response.headers['content-disposition']).toContain('agent.log');
    expect(
      response.body
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
    ).toEqual(['oldest failure', 'older']);
  });

  it('answers coded errors: an unknown log, a bad source, a bad or stale cursor, two positions at once', async () => {
    const expectError = async (url: string, status: number, code: string): Promise<void> => {
      const response = await call('GET', url);
      expect(response.status, url).toBe(status);
      expect(JSON.parse(response.body)).toMatchObject({ error: { code } });
    };
    await expectError('/api/v1/logs/slot-zzzzzzzzzz.out', 404, 'LOG_NOT_FOUND');
    await expectError('/api/v1/logs/slot-zzzzzzzzzz.out/download', 404, 'LOG_NOT_FOUND');
    await expectError('/api/v1/logs/..%2Fagent.db', 400, 'VALIDATION_FAILED');
    await expectError('/api/v1/logs/agent?before=abc', 400, 'LOG_CURSOR_INVALID');
    await expectError(`/api/v1/logs/agent?after=${'a'.repeat(16)}.40.3`, 410, 'LOG_CURSOR_INVALID');
    await expectError('/api/v1/logs/agent?after=x&at=2026-12-01T00:00:00Z', 400, 'VALIDATION_FAILED');
    await expectError('/api/v1/logs/agent?limit=100000', 400, 'VALIDATION_FAILED');
  });

  it('never answers 500 to any path or query (fuzz)', async () => {
    const part = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('agent', `slot-${SLOT}.out`, `slot-${SLOT}.err`, '..', '%00', 'agent.1'),
    );
    const query = fc.dictionary(
      fc.constantFrom('before', 'after', 'at', 'limit', 'level', 'q', 'x'),
      fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('0', '-1', 'error', '2026-12-01T00:00:00Z')),
      { maxKeys: 3 },
    );
    await fc.assert(
      fc.asyncProperty(part, query, fc.boolean(), async (source, params, download) => {
        const url = `/api/v1/logs/${encodeURIComponent(source)}${download ? '/download' : ''}?${new URLSearchParams(params).toString()}`;
        const response = await call('GET', url);
        expect(response.status, url).toBeLessThan(500);
        if (response.status >= 400)
          expect(KNOWN_CODES.has((JSON.parse(response.body) as { error: { code: string } }).error.code)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('audit of admin actions', () => {
  const rows = () => agent.audit.list({ limit: 500 }).entries;

  it('records a state-changing call with the panel’s host profile, the route, its target, ip and outcome', async () => {
    const before = rows().length;
    const name = 'Ada’s EC2 — prod';
    const ok = await call('PATCH', `/api/v1/users/${adaId}`, {
      payload: { displayName: 'Ada L.' },
      headers: { 'x-slotdeck-actor': encodeURIComponent(name) },
    });
    expect(ok.status).toBeLessThan(400);
    const failed = await call('POST', '/api/v1/slots/nosuchslot/start', {
      headers: { 'x-slotdeck-actor': encodeURIComponent(name) },
    });
    expect(failed.status).toBe(404);
    const added = rows().slice(0, rows().length - before);
    expect(added.map((r) => [r.actor, r.action, r.outcome])).toEqual([
      [{ type: 'admin', id: name }, 'POST /api/v1/slots/:id/start', 'failure'],
      [{ type: 'admin', id: name }, 'PATCH /api/v1/users/:id', 'success'],
    ]);
    expect(added[0]).toMatchObject({ target: 'nosuchslot', ip: '127.0.0.1', detail: { status: 404 } });
  });

  it('names "admin token" without the header, refuses a bad one, and leaves reads and refused calls out', async () => {
    const before = rows().length;
    await call('POST', '/api/v1/idle/keep-awake', { payload: { minutes: 5 } });
    expect(rows()[0]).toMatchObject({
      actor: { type: 'admin', id: 'admin token' },
      action: 'POST /api/v1/idle/keep-awake',
    });
    const bad = await call('POST', '/api/v1/idle/keep-awake', {
      payload: { minutes: 5 },
      headers: { 'x-slotdeck-actor': '%E0%A4%A' },
    });
    expect(bad.status).toBe(400);
    await call('GET', '/api/v1/slots');
    await call('POST', '/api/v1/idle/keep-awake', { auth: 'Bearer wrong', payload: { minutes: 5 } });
    await call('POST', '/api/v1/idle/keep-awake', { auth: `Bearer ${userKey.secret}`, payload: { minutes: 5 } });
    expect(rows().length - before).toBe(1);
  });

  it('caps a long name, and a route that writes its own row gets one row, naming the host profile', async () => {
    const before = rows().length;
    const response = await call('PUT', '/api/v1/auth/settings', {
      payload: { ownersMayShare: true },
      headers: { 'x-slotdeck-actor': encodeURIComponent('x'.repeat(300)) },
    });
    expect(response.status).toBe(200);
    const added = rows().slice(0, rows().length - before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ action: 'settings.updated', actor: { type: 'admin', id: 'x'.repeat(64) } });
    // the panel's "admin" filter still finds every admin row
    const filtered = agent.audit.list({ actor: 'admin', limit: 500 }).entries;
    expect(filtered.some((r) => r.actor.id === 'admin token')).toBe(true);
  });

  it('records downloads (a whole backup, a log, the audit export), not other reads', async () => {
    const before = rows().length;
    const actor = { 'x-slotdeck-actor': encodeURIComponent('laptop') };
    const panelKey = generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    expect(
      (await call('PUT', '/api/v1/backups/key', { payload: { publicKey: panelKey.toString('base64') } })).status,
    ).toBe(200);
    const made = await call('POST', '/api/v1/backups');
    expect(made.status).toBeLessThan(300);
    const backupId = (JSON.parse(made.body) as { id: string }).id;
    const file = await call('GET', `/api/v1/backups/${backupId}/file`, { headers: actor });
    expect(file.status).toBe(200);
    expect((await call('GET', '/api/v1/logs/agent/download', { headers: actor })).status).toBe(200);
    expect((await call('GET', '/api/v1/audit?format=csv', { headers: actor })).status).toBe(200);
    await call('GET', '/api/v1/audit');
    await call('GET', '/api/v1/logs/agent');
    const added = rows().slice(0, rows().length - before);
    expect(added.map((r) => [r.actor.id, r.action, r.target, r.outcome])).toEqual([
      ['laptop', 'GET /api/v1/audit', null, 'success'],
      ['laptop', 'GET /api/v1/logs/:source/download', 'agent', 'success'],
      ['laptop', 'GET /api/v1/backups/:id/file', backupId, 'success'],
      ['admin token', 'POST /api/v1/backups', backupId, 'success'],
      ['admin token', 'PUT /api/v1/backups/key', null, 'success'],
    ]);
    expect(added[0]!.detail).toMatchObject({ format: 'csv', status: 200 });
    expect(added[2]!.detail).toMatchObject({ status: 200 });
  });

  it('takes a created thing’s id from the answer: the target of a create, beside the path’s id otherwise', async () => {
    const before = rows().length;
    const user = await call('POST', '/api/v1/users', { payload: { username: 'grace' } });
    const userId = (JSON.parse(user.body) as { id: string }).id;
    const key = await call('POST', `/api/v1/users/${userId}/keys`, { payload: { name: 'ci' } });
    const created = JSON.parse(key.body) as { key: { id: string }; secret: string };
    const added = rows().slice(0, rows().length - before);
    expect(added.map((r) => [r.action, r.target, r.detail.createdId])).toEqual([
      ['POST /api/v1/users/:id/keys', userId, created.key.id],
      ['POST /api/v1/users', userId, undefined],
    ]);
    expect(JSON.stringify(added)).not.toContain(created.secret);
  });

  it('removes invisible format characters from the host profile’s name and refuses control characters', async () => {
    const before = rows().length;
    const send = (name: string) =>
      call('POST', '/api/v1/idle/keep-awake', {
        payload: { minutes: 5 },
        headers: { 'x-slotdeck-actor': encodeURIComponent(name) },
      });
    // A right-to-left override makes "prod\u202Egnp.exe" read "prodexe.png"; zero-width characters hide inside.
    expect((await send('prod\u202Egnp.exe')).status).toBe(200);
    expect((await send('\u200BAda\u200D\u2066 EC2\uFEFF')).status).toBe(200);
    expect((await send('Ada\u0007')).status).toBe(400);
    expect((await send('Ada\u2028EC2')).status).toBe(400);
    expect((await send('\u200B\u200E')).status).toBe(400);
    const added = rows().slice(0, rows().length - before);
    expect(added.map((r) => r.actor.id)).toEqual(['Ada EC2', 'prodgnp.exe']);
  });
});
