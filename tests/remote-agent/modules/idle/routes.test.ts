/**
 * The idle routes and the activity hooks on an agent built with buildApp (admin auth and the gateway's public
 * listener included): who may read and change the policy, and what counts as activity.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import {
  CreateKeyBody,
  CreateUserBody,
  ErrorBody,
  IdleStatus,
  type CreatedKey,
} from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../../remote-agent/src/http/admin-token.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { IdleStore } from '../../../../remote-agent/src/modules/idle/store.js';
import { idleSupervisor } from '../../helpers/idle-supervisor.js';

const IDLE = '/api/v1/idle';
const KEEP_AWAKE = '/api/v1/idle/keep-awake';

let dir: string;
let db: Db;
let agent: Agent;
let token: string;
let gatewayUrl: string;
let userKey: CreatedKey;
let stopScript: string;
const logs: string[] = [];

type Method = 'GET' | 'PUT' | 'POST';

async function admin(method: Method, url: string, payload?: unknown, auth: string | null = `Bearer ${token}`) {
  const response = await agent.app.inject({
    method,
    url,
    headers: {
      ...(auth ? { authorization: auth } : {}),
      ...(typeof payload === 'string' ? { 'content-type': 'application/json' } : {}),
    },
    ...(payload === undefined ? {} : { payload: payload as string | object }),
  });
  return { status: response.statusCode, body: response.json<unknown>() };
}

const clock = (): Pick<IdleStatus, 'lastActivity' | 'lastActivityAt'> => {
  const { lastActivity, lastActivityAt } = agent.idle.status();
  return { lastActivity, lastActivityAt };
};

/** Marks the clock with a keep-awake done a moment ago, so a later activity is seen by its kind and time. */
async function markClock(): Promise<Pick<IdleStatus, 'lastActivity' | 'lastActivityAt'>> {
  agent.idle.keepAwake(1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  return clock();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-idle-routes-'));
  stopScript = join(dir, 'stop.sh');
  writeFileSync(stopScript, '#!/bin/sh\necho stopped >> "$1"\n');
  chmodSync(stopScript, 0o755);
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'admin.port': 0,
      'gateway.enabled': true,
      'gateway.host': '127.0.0.1',
      'gateway.port': 0,
      'idle.stopCommand': [stopScript, join(dir, 'stops.log')],
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
  const ada = agent.users.create(CreateUserBody.parse({ username: 'ada' }));
  userKey = agent.users.createKey(ada.id, CreateKeyBody.parse({ name: 'laptop' }));
});

afterAll(async () => {
  await agent?.close();
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  agent.idle.setPolicy({ enabled: false, minutes: 60 });
});

describe('admin credentials on the idle routes', () => {
  const routes: Array<[Method, string, unknown]> = [
    ['GET', IDLE, undefined],
    ['PUT', IDLE, { enabled: true, minutes: 5 }],
    ['POST', KEEP_AWAKE, { minutes: 600 }],
  ];

  async function expectRefused(auth: string | null, code: string): Promise<void> {
    const before = await markClock();
    for (const [method, url, body] of routes) {
      const response = await admin(method, url, body, auth);
      expect(response, `${method} ${url}`).toMatchObject({ status: 401, body: { error: { code } } });
    }
    // Refused calls change nothing and are not activity: knocking must not keep a host awake.
    expect(clock()).toEqual(before);
    expect(agent.idle.status()).toMatchObject({ policy: { enabled: false, minutes: 60 } });
    expect(agent.idle.status().keepAwakeUntil).not.toBeNull();
    expect(Date.parse(agent.idle.status().keepAwakeUntil!) - Date.now()).toBeLessThan(2 * 60_000);
  }

  it('refuses a request without the admin token (401 AUTH_TOKEN_MISSING), counting it as no activity', async () => {
    await expectRefused(null, 'AUTH_TOKEN_MISSING');
  });

  it('refuses a wrong admin token (401 AUTH_TOKEN_INVALID), counting it as no activity', async () => {
    await expectRefused(`Bearer ${token.slice(0, -2)}xx`, 'AUTH_TOKEN_INVALID');
  });

  it('refuses stolen credentials of another kind: an end user’s key, or the token in the wrong scheme', async () => {
    await expectRefused(`Bearer ${userKey.secret}`, 'AUTH_TOKEN_INVALID');
    await expectRefused(`Basic ${Buffer.from(`admin:${token}`).toString('base64')}`, 'AUTH_TOKEN_INVALID');
  });

  it('is not on the public listener, even with the real admin token and a user key', async () => {
    for (const [method, url, body] of routes) {
      const response = await fetch(`${gatewayUrl}${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'x-api-key': userKey.secret, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      expect(response.status, url).toBe(404);
      expect(await response.text()).not.toContain('"policy"');
    }
    expect(agent.idle.status().policy).toEqual({ enabled: false, minutes: 60 });
  });
});

describe('policy and keep-awake', () => {
  it('sets the policy, answers the countdown, and keeps it in the database', async () => {
    const set = await admin('PUT', IDLE, { enabled: true, minutes: 45 });
    expect(set.status).toBe(200);
    const status = IdleStatus.parse(set.body);
    expect(status).toMatchObject({
      policy: { enabled: true, minutes: 45 },
      state: 'counting',
      secondsLeft: 45 * 60,
      stopCommand: `${stopScript} ${join(dir, 'stops.log')}`,
    });
    expect(IdleStatus.parse((await admin('GET', IDLE)).body).policy).toEqual({ enabled: true, minutes: 45 });
    expect(new IdleStore(db).policy()).toEqual({ enabled: true, minutes: 45 });
  });

  it('keep-awake defaults to an hour and answers when it ends', async () => {
    await admin('PUT', IDLE, { enabled: true, minutes: 1 });
    const response = await admin('POST', KEEP_AWAKE, {});
    expect(response.status).toBe(200);
    const status = IdleStatus.parse(response.body);
    expect(status.lastActivity).toBe('keep-awake');
    const until = Date.parse(status.keepAwakeUntil!);
    expect(until - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(until - Date.now()).toBeLessThanOrEqual(60 * 60_000);
    expect(status.stopAt).toBe(status.keepAwakeUntil);
  });

  it('answers 400 VALIDATION_FAILED naming each bad field, with what to send instead', async () => {
    const bad = await admin('PUT', IDLE, { enabled: 'yes', minutes: 0, extra: 1 });
    expect(bad.status).toBe(400);
    const issues = ErrorBody.parse(bad.body).error.issues!;
    expect(issues.map((i) => i.path).sort()).toEqual(['body', 'body.enabled', 'body.minutes']);
    expect(issues.find((i) => i.path === 'body.minutes')!.message).toBe('at least 1 minute');
    const tooLong = await admin('PUT', IDLE, { enabled: true, minutes: 10_081 });
    expect(ErrorBody.parse(tooLong.body).error.message).toContain('at most a week');
    const fraction = await admin('PUT', IDLE, { enabled: true, minutes: 1.5 });
    expect(ErrorBody.parse(fraction.body).error.message).toContain('whole number');
    const missing = await admin('PUT', IDLE, {});
    expect(ErrorBody.parse(missing.body).error.issues!.map((i) => i.path)).toEqual(['body.enabled', 'body.minutes']);
    const keep = await admin('POST', KEEP_AWAKE, { minutes: 24 * 60 + 1 });
    expect(keep).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(agent.idle.status().policy).toEqual({ enabled: false, minutes: 60 });
  });

  it('answers any body with a status or a 400, never a 500 (fuzz)', async () => {
    const minutes = fc.oneof(
      fc.integer({ min: -5, max: 10_090 }),
      fc.double(),
      fc.constantFrom('60', null, [], {}, 1e300, -0, 2 ** 53),
    );
    const body = fc.oneof(
      fc.record({ enabled: fc.oneof(fc.boolean(), fc.anything()), minutes }, { requiredKeys: [] }),
      fc.record({ minutes }, { requiredKeys: [] }),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.anything(), { maxKeys: 3 }),
      fc.anything(),
      fc.string({ maxLength: 40 }).map((text) => ({ raw: text })),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (generated, keepAwake) => {
        const payload =
          generated !== null &&
          typeof generated === 'object' &&
          'raw' in generated &&
          Object.keys(generated).length === 1
            ? (generated as { raw: string }).raw
            : JSON.stringify(generated ?? null);
        const response = await admin(keepAwake ? 'POST' : 'PUT', keepAwake ? KEEP_AWAKE : IDLE, payload);
        expect([200, 400], payload).toContain(response.status);
        if (response.status === 400) {
          expect(['VALIDATION_FAILED', 'BODY_INVALID_JSON']).toContain(ErrorBody.parse(response.body).error.code);
          return;
        }
        const status = IdleStatus.parse(response.body);
        if (!keepAwake) expect(status.policy).toEqual(JSON.parse(payload));
      }),
      { numRuns: 300 },
    );
    expect(logs.join('\n')).not.toMatch(/"level":50/);
  });
});

describe('what counts as activity', () => {
  it('reads do not: the panel polling the idle status (and anything else) leaves the clock alone', async () => {
    const before = await markClock();
    for (const url of [IDLE, '/api/v1/users', '/api/v1/gateway', '/health']) {
      expect((await admin('GET', url)).status, url).toBe(200);
    }
    expect(clock()).toEqual(before);
  });

  it('an admin call that changes something does', async () => {
    await markClock();
    expect((await admin('POST', '/api/v1/users', { username: 'grace' })).status).toBe(201);
    expect(clock().lastActivity).toBe('admin');
  });

  it('a gateway request counts only once its key let it in, so scanners cannot keep the host awake', async () => {
    const before = await markClock();
    const call = (headers: Record<string, string>) =>
      fetch(`${gatewayUrl}/v1/me/quota`, { headers }).then((r) => r.status);
    expect(await call({})).toBe(401);
    expect(await call({ 'x-api-key': 'sk-ant-api03-scanner-guess-0000000000000' })).toBe(401);
    expect(await call({ 'x-api-key': `${userKey.secret.slice(0, -1)}x` })).toBe(401);
    // A path outside /v1/ is the public site's: not found, and no activity either.
    expect(await fetch(`${gatewayUrl}/wp-login.php`).then((r) => r.status)).toBe(404);
    expect(await fetch(`${gatewayUrl}/health`).then((r) => r.status)).toBe(200);
    expect(clock()).toEqual(before);

    expect(await call({ 'x-api-key': userKey.secret })).toBe(200);
    expect(clock().lastActivity).toBe('gateway');
  });
});
