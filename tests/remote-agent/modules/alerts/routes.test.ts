/**
 * The alert routes on an agent built with buildApp (admin auth, the gateway's public listener, sign-in): who may call
 * them, what they validate, and that the webhook's URL (a credential for Slack) is nowhere but its secrets file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentErrorCode,
  AlertList,
  AlertRuleList,
  CreateKeyBody,
  type WebhookSettings,
} from '../../../../remote-agent/src/contract/index.js';
import { startAuthHarness, type Harness } from '../auth/harness.js';
import { Receiver } from './harness.js';

const A = '/api/v1/alerts';
const SECRET_PATH = 'T0AAAA/B0BBBB/SlackSecretXYZ123';
let h: Harness;
let receiver: Receiver;
let userKey: string;
let session: { cookie: string; csrf: string };
const answers: string[] = [];

async function admin<T = unknown>(method: string, url: string, payload?: unknown, token?: string | null) {
  const answer = await h.admin<T>(method, url, payload, token);
  answers.push(JSON.stringify(answer.body));
  return answer;
}

beforeAll(async () => {
  h = await startAuthHarness();
  receiver = await new Receiver().start(`/services/${SECRET_PATH}`);
  const ada = h.newUser('ada');
  userKey = h.agent.users.createKey(ada.id, CreateKeyBody.parse({ name: 'laptop' })).secret;
  const signedIn = await h.signedInUser('grace', 'a violet lantern 42 sings');
  session = { cookie: signedIn.jar.header()!, csrf: signedIn.csrf };
}, 60_000);
afterAll(async () => {
  await h?.close();
  await receiver?.close();
});

const ROUTES: Array<[string, string, unknown]> = [
  ['GET', A, undefined],
  ['POST', `${A}/read`, { all: true }],
  ['GET', `${A}/rules`, undefined],
  ['PUT', `${A}/rules`, { rules: [{ id: 'memory_high', enabled: false }] }],
  ['GET', `${A}/webhook`, undefined],
  ['PUT', `${A}/webhook`, { url: 'http://127.0.0.1:9/hooks/planted' }],
  ['POST', `${A}/webhook/test`, undefined],
];

describe('credentials', () => {
  it.each([
    ['no token', null, 'AUTH_TOKEN_MISSING'],
    ['a wrong token', 'not-the-admin-token-0123456789abcdef', 'AUTH_TOKEN_INVALID'],
  ])('refuses %s on every route (401 %s) and changes nothing', async (_, token, code) => {
    for (const [method, url, body] of ROUTES) {
      const answer = await admin(method, url, body, token);
      expect(answer, `${method} ${url}`).toMatchObject({ status: 401, body: { error: { code } } });
    }
    expect(h.agent.alerts.rules.list().find((r) => r.id === 'memory_high')!.enabled).toBe(true);
  });

  it('refuses stolen credentials of another kind: an end user’s API key, a portal session', async () => {
    for (const [method, url, body] of ROUTES) {
      const withKey = await admin(method, url, body, userKey);
      expect(withKey.status, `${method} ${url} with a user key`).toBe(401);
      const withSession = await h.agent.app.inject({
        method: method as 'GET',
        url,
        headers: { cookie: session.cookie, 'x-slotdeck-csrf': session.csrf },
        ...(body === undefined ? {} : { payload: body as object }),
      });
      expect(withSession.statusCode, `${method} ${url} with a portal session`).toBe(401);
    }
    expect(h.agent.alerts.rules.list().find((r) => r.id === 'memory_high')!.enabled).toBe(true);
    expect((await admin<WebhookSettings>('GET', `${A}/webhook`)).body.configured).toBe(false);
  });

  it('is not on the public listener, even with the admin token, a user key or a session', async () => {
    for (const [method, url, body] of ROUTES) {
      const answer = await h.site(method, url, {
        headers: { authorization: `Bearer ${userKey}`, cookie: session.cookie },
        ...(body === undefined ? {} : { payload: body }),
        csrf: session.csrf,
      });
      expect(answer.status, `${method} ${url}`).toBe(404);
    }
  });
});

describe('validation', () => {
  it('answers 400 VALIDATION_FAILED naming the field, for rules, read marks and the webhook', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['PUT', `${A}/rules`, { rules: [{ id: 'nope' }] }, 'body.rules.0.id'],
      [
        'PUT',
        `${A}/rules`,
        { rules: [{ id: 'memory_high', params: { usedPercent: 300 } }] },
        'body.rules.0.params.usedPercent',
      ],
      [
        'PUT',
        `${A}/rules`,
        { rules: [{ id: 'disk_low', params: { freePercent: 5, extra: 1 } }] },
        'body.rules.0.params',
      ],
      ['POST', `${A}/read`, { ids: ['abc'] }, 'body.ids.0'],
      ['PUT', `${A}/webhook`, { url: 'ftp://example.com/hook' }, 'body.url'],
      ['PUT', `${A}/webhook`, { url: 'https://user:pw@hooks.example/x' }, 'body.url'],
      ['PUT', `${A}/webhook`, { format: 'xml' }, 'body.format'],
      ['GET', `${A}?filter=everything`, undefined, 'query.filter'],
    ];
    for (const [method, url, body, path] of cases) {
      const answer = await admin<{ error: { code: string; issues: Array<{ path: string }>; message: string } }>(
        method,
        url,
        body,
      );
      expect(answer.status, `${method} ${url} ${JSON.stringify(body)}`).toBe(400);
      expect(answer.body.error.code).toBe('VALIDATION_FAILED');
      expect(answer.body.error.issues.map((i) => i.path)).toContain(path);
    }
  });

  it('a test without a webhook is 409 ALERT_WEBHOOK_NOT_SET, one that fails is 502 ALERT_WEBHOOK_FAILED', async () => {
    expect(await admin('POST', `${A}/webhook/test`)).toMatchObject({
      status: 409,
      body: { error: { code: AgentErrorCode.ALERT_WEBHOOK_NOT_SET } },
    });
    // A port that was just free: nothing listens there.
    const closed = await new Receiver().start('/');
    const port = new URL(closed.url).port;
    await closed.close();
    await admin('PUT', `${A}/webhook`, { url: `http://127.0.0.1:${port}/nothing-listens-here` });
    const failed = await admin<{ error: { code: string; message: string } }>('POST', `${A}/webhook/test`);
    expect(failed.status).toBe(502);
    expect(failed.body.error.code).toBe(AgentErrorCode.ALERT_WEBHOOK_FAILED);
    expect(failed.body.error.message).toContain('ECONNREFUSED');
    expect(failed.body.error.message).not.toContain('nothing-listens-here');
    await admin('PUT', `${A}/webhook`, { url: null });
  });
});

describe('the webhook URL is a secret', () => {
  it('is kept 0600 in the secrets folder and never in SQLite, its WAL, the logs or any answer', async () => {
    const set = await admin<WebhookSettings>('PUT', `${A}/webhook`, { url: receiver.url, format: 'slack' });
    expect(set.body).toMatchObject({ configured: true, format: 'slack' });
    expect(set.body.target).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/…$/);
    const file = join(h.dir, 'secrets', 'alert-webhook');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(receiver.url);

    expect((await admin('POST', `${A}/webhook/test`)).status).toBe(200);
    // An alert delivered for real: the data dir cannot be written.
    h.agent.ops.emit('storage', { full: true, path: h.dir, error: 'ENOSPC: no space left on device' });
    await h.agent.alerts.evaluate();
    await expect.poll(() => receiver.received.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    const slack = receiver.received[1]!.body as { text: string };
    expect(slack.text).toContain('Storage full');
    const list = await admin<AlertList>('GET', `${A}?filter=firing`);
    expect(AlertList.parse(list.body).alerts.map((a) => a.rule)).toContain('storage_full');
    h.agent.ops.emit('storage', { full: false, path: h.dir, error: null });
    await h.agent.alerts.evaluate();
    await admin('GET', `${A}/webhook`);
    await admin('GET', A);

    const needles = [SECRET_PATH, 'SlackSecretXYZ123'];
    for (const name of readdirSync(h.dir)) {
      if (!/^agent\.db/.test(name)) continue;
      const bytes = readFileSync(join(h.dir, name));
      for (const needle of needles) expect(bytes.includes(needle), `${name} holds the webhook's path`).toBe(false);
    }
    expect(existsSync(join(h.dir, 'agent.db-wal'))).toBe(true);
    for (const needle of needles) {
      expect(h.logs.join('\n')).not.toContain(needle);
      expect(answers.join('\n')).not.toContain(needle);
    }
  });
});

describe('rules and history over HTTP', () => {
  it('lists every rule with its defaults, changes one, resets it', async () => {
    const rules = AlertRuleList.parse((await admin('GET', `${A}/rules`)).body).rules;
    expect(rules.map((r) => r.id)).toHaveLength(11);
    expect(rules.find((r) => r.id === 'upstream_errors')).toMatchObject({
      enabled: true,
      params: { errorPercent: 5, windowMinutes: 5, minRequests: 20 },
    });
    const changed = await admin<AlertRuleList>('PUT', `${A}/rules`, {
      rules: [
        { id: 'disk_low', params: { freePercent: 20 } },
        { id: 'quota_80', enabled: false },
      ],
    });
    expect(changed.body.rules.find((r) => r.id === 'disk_low')!.params).toEqual({ freePercent: 20, freeGb: 2 });
    expect(changed.body.rules.find((r) => r.id === 'quota_80')!.enabled).toBe(false);
    const reset = await admin<AlertRuleList>('PUT', `${A}/rules`, {
      rules: [{ id: 'quota_80', enabled: true }],
      reset: ['disk_low'],
    });
    expect(reset.body.rules.find((r) => r.id === 'disk_low')!.params).toEqual({ freePercent: 10, freeGb: 2 });
  });

  it('marks alerts read by id and all at once; the unread count is what the bell shows', async () => {
    h.agent.ops.emit('recovery', { kind: 'slot-restarted', target: 'x1', message: 'PM2 restarted x1' });
    h.agent.ops.emit('recovery', { kind: 'slot-adopted', target: 'x2', message: 'x2 adopted' });
    const list = AlertList.parse((await admin('GET', `${A}?filter=unread`)).body);
    expect(list.unread).toBeGreaterThanOrEqual(2);
    const one = await admin<{ marked: number; unread: number }>('POST', `${A}/read`, { ids: [list.alerts[0]!.id] });
    expect(one.body).toEqual({ marked: 1, unread: list.unread - 1 });
    const all = await admin<{ marked: number; unread: number }>('POST', `${A}/read`, { all: true });
    expect(all.body.unread).toBe(0);
  });
});

describe('under fuzz', () => {
  it('never answers 5xx, and every error is coded with a message', async () => {
    const known = new Set<string>(Object.values(AgentErrorCode));
    const ruleId = fc.constantFrom('slot_failed', 'disk_low', 'upstream_errors', 'quota_100', 'nope', '', 1);
    // URLs only on loopback or invalid: a fuzzed webhook must never send anything off this machine.
    const url = fc.oneof(
      fc.constant(null),
      fc.constant('http://127.0.0.1:9/x'),
      fc.constantFrom('ftp://x', 'not a url', 'http://u:p@127.0.0.1/', '', 'javascript:alert(1)'),
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.json().map((text) => text),
      fc.record(
        {
          rules: fc.array(
            fc.record(
              {
                id: ruleId,
                enabled: fc.oneof(fc.boolean(), fc.string()),
                params: fc.dictionary(
                  fc.constantFrom('usedPercent', 'freeGb', 'restarts', 'x'),
                  fc.oneof(fc.double(), fc.integer(), fc.string()),
                ),
              },
              { requiredKeys: [] },
            ),
            { maxLength: 4 },
          ),
          reset: fc.array(ruleId, { maxLength: 3 }),
          ids: fc.array(fc.oneof(fc.string(), fc.nat().map(String)), { maxLength: 3 }),
          all: fc.oneof(fc.boolean(), fc.constant('yes')),
          url,
          format: fc.constantFrom('json', 'slack', 'xml'),
          enabled: fc.oneof(fc.boolean(), fc.integer()),
        },
        { requiredKeys: [] },
      ),
    );
    const target = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      path: fc.constantFrom('', '/read', '/rules', '/webhook', '/webhook/test', '/nope'),
      query: fc.oneof(
        fc.constant(''),
        fc.constantFrom('?filter=firing', '?filter=x', '?limit=0', '?limit=9999', '?cursor=abc', '?cursor=1&limit=2'),
        fc.string({ maxLength: 30 }).map((s) => `?${encodeURIComponent(s)}=1`),
      ),
    });
    await fc.assert(
      fc.asyncProperty(target, body, async ({ method, path, query }, payload) => {
        const response = await h.agent.app.inject({
          method: method as 'GET',
          url: `${A}${path}${query}`,
          headers: {
            authorization: `Bearer ${readFileSync(join(h.dir, 'secrets', 'admin-token'), 'utf8').trim()}`,
            ...(typeof payload === 'string' ? { 'content-type': 'application/json' } : {}),
          },
          ...(payload === undefined || method === 'GET' ? {} : { payload: payload as object }),
        });
        // 502 is the answer of a webhook test whose receiver failed (nothing listens at the fuzzed loopback URL).
        if (response.statusCode === 502)
          expect(response.json<{ error: { code: string } }>().error.code).toBe('ALERT_WEBHOOK_FAILED');
        else expect(response.statusCode, `${method} ${path}${query}: ${response.body}`).toBeLessThan(500);
        if (response.statusCode >= 400) {
          const error = response.json<{ error: { code: string; message: string } }>().error;
          expect(known.has(error.code), response.body).toBe(true);
          expect(error.message.length).toBeGreaterThan(10);
        }
      }),
      { numRuns: 1500 },
    );
    const stored = join(h.dir, 'secrets', 'alert-webhook');
    if (existsSync(stored)) expect(new URL(readFileSync(stored, 'utf8')).hostname).toBe('127.0.0.1');
  }, 300_000);
});
