/**
 * The request log and the upstream test as an admin meets them: a real agent process, end users calling its gateway
 * over HTTP, and the fake Messages API as the upstream stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  ApiKey,
  CreatedKey,
  RefusalCount,
  RefusalList,
  UpstreamTestResult,
  User,
} from '../../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { AgentProcess } from '../helpers/agent.js';

let upstream: FakeAnthropic;
let agent: AgentProcess;

async function call(key: string | null): Promise<{ status: number; code?: string }> {
  const response = await fetch(`${agent.gatewayUrl}/v1/messages`, {
    method: 'POST',
    headers: {
      ...(key === null ? {} : { 'x-api-key': key }),
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await response.json()) as { code?: string };
  return { status: response.status, ...(body.code ? { code: body.code } : {}) };
}

beforeAll(async () => {
  upstream = await startFakeAnthropic();
  agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url } });
});

afterAll(async () => {
  await agent?.destroy();
  await upstream?.close();
});

describe('Test upstream (fake upstream stand-in)', () => {
  it('says the key is missing, then that upstream refuses a wrong one, then ok with the right one', async () => {
    const missing = await agent.request('POST', '/api/v1/gateway/upstream-test');
    expect(missing).toMatchObject({ status: 409, body: { error: { code: 'GATEWAY_UPSTREAM_KEY_MISSING' } } });

    const wrong = 'sk-ant-not-the-organisation-key-42';
    await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: wrong });
    const refused = await agent.request<UpstreamTestResult>('POST', '/api/v1/gateway/upstream-test');
    expect(refused.body).toMatchObject({ ok: false, status: 401, problem: 'key_rejected' });
    expect(refused.body.message).toMatch(/refused the organisation key/);

    await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
    const ok = await agent.request<UpstreamTestResult>('POST', '/api/v1/gateway/upstream-test');
    expect(ok.body).toMatchObject({ ok: true, status: 200, problem: null });
    expect(JSON.stringify([refused.body, ok.body])).not.toContain('sk-ant-');
    expect(agent.logs.join('\n')).not.toContain(wrong);
  });
});

describe('request log', () => {
  let user: User;
  let key: CreatedKey;

  beforeAll(async () => {
    user = (await agent.request<User>('POST', '/api/v1/users', { username: 'ada' })).body;
    key = (await agent.request<CreatedKey>('POST', `/api/v1/users/${user.id}/keys`, { name: 'laptop' })).body;
  });

  it('shows a revoked key’s call with its reason, its user and its key, and counts it', async () => {
    expect((await call(key.secret)).status).toBe(200);
    const revoked = await agent.request<ApiKey>('POST', `/api/v1/keys/${key.key.id}/revoke`);
    expect(revoked.body.state).toBe('revoked');
    // The verifier trusts a looked-up key for up to a second: wait until the revocation bites.
    await expect.poll(async () => (await call(key.secret)).code, { timeout: 5000 }).toBe('GATEWAY_KEY_REVOKED');

    const list = await agent.request<RefusalList>(
      'GET',
      `/api/v1/gateway/refusals?userId=${user.id}&keyId=${key.key.id}`,
    );
    expect(list.status).toBe(200);
    expect(list.body.rows[0]).toMatchObject({
      status: 401,
      code: 'GATEWAY_KEY_REVOKED',
      username: 'ada',
      keyName: 'laptop',
      keyPrefix: key.key.prefix,
      path: '/v1/messages',
    });
    expect(list.body.rows[0]!.message).toMatch(/revoked/);
    const count = await agent.request<RefusalCount>(
      'GET',
      `/api/v1/gateway/refusals/count?from=${new Date(Date.now() - 3_600_000).toISOString()}&userId=${user.id}`,
    );
    expect(count.body.refusals).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(list.body)).not.toContain(key.secret);
  });

  it('keeps a spray of made-up keys from one address to one row with its count, holding no key', async () => {
    const sprayed: string[] = [];
    for (let i = 0; i < 100; i++) {
      const made = `sk_user_${Math.random().toString(36).slice(2).padEnd(28, 'x').slice(0, 28)}`;
      sprayed.push(made);
      expect((await call(made)).status).toBe(401);
    }
    const list = await agent.request<RefusalList>('GET', '/api/v1/gateway/refusals?status=401&limit=200');
    const unknown = list.body.rows.filter((r) => r.userId === null);
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ ip: '127.0.0.1', count: 100 });
    const text = JSON.stringify(list.body);
    for (const made of sprayed) expect(text).not.toContain(made);
  });
});
