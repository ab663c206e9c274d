import { describe, expect, it } from 'vitest';
import { json, TOKEN, useAgentStandIn } from './agent-stand-in';

/**
 * The request log and upstream test channels from the renderer's side: IPC input in, agent HTTP request out, answer
 * back. The agent here is a small HTTP server answering as the contract says (an agent stand-in); the real agent is
 * exercised by tests/remote-agent/modules/gateway/request-log-routes.test.ts and the E2E test.
 */
const agent = useAgentStandIn();
const { seen, dispatcher } = agent;

const row = {
  id: 7,
  at: '2026-12-01T10:00:00.000Z',
  lastAt: '2026-12-01T10:00:00.000Z',
  count: 1,
  status: 401,
  code: 'GATEWAY_KEY_REVOKED',
  message: 'This API key was revoked. Ask your Slotdeck admin for a new key.',
  userId: 'u_0123456789',
  username: 'ada',
  keyId: 'k_0123456789',
  keyName: 'laptop',
  keyPrefix: 'sk_user_Ab3x',
  model: 'claude-sonnet-4-6',
  method: 'POST',
  path: '/v1/messages',
  ip: '127.0.0.1',
};

describe('request log and upstream test over IPC (agent stand-in)', () => {
  it('asks for a page of refusals of a user and key with the filters as query parameters', async () => {
    agent.answer = (_, response) => json(response, 200, { rows: [row], nextCursor: '7' });
    const result = await dispatcher().dispatch('gateway:refusals', {
      hostId: 'prod',
      query: { userId: 'u_0123456789', keyId: 'k_0123456789', status: 401, cursor: '12', limit: 25 },
    });
    expect(result).toMatchObject({ ok: true, data: { rows: [{ code: 'GATEWAY_KEY_REVOKED' }], nextCursor: '7' } });
    expect(seen.map((s) => [s.method, s.path, s.query, s.authorization])).toEqual([
      [
        'GET',
        '/api/v1/gateway/refusals',
        { userId: 'u_0123456789', keyId: 'k_0123456789', status: '401', cursor: '12', limit: '25' },
        `Bearer ${TOKEN}`,
      ],
    ]);
  });

  it('counts refusals in a window, and refuses a reversed one before anything reaches the agent', async () => {
    agent.answer = (_, response) =>
      json(response, 200, { from: '2026-11-30T10:00:00.000Z', to: '2026-12-01T10:00:00.000Z', refusals: 3 });
    const d = dispatcher();
    expect(
      await d.dispatch('gateway:refusal-count', { hostId: 'prod', query: { from: '2026-11-30T10:00:00Z' } }),
    ).toMatchObject({ ok: true, data: { refusals: 3 } });
    const reversed = await d.dispatch('gateway:refusal-count', {
      hostId: 'prod',
      query: { from: '2026-12-02T00:00:00Z', to: '2026-12-01T00:00:00Z' },
    });
    expect(reversed).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    expect(seen).toHaveLength(1);
  });

  it('tests upstream and passes back the result in words', async () => {
    agent.answer = (_, response) =>
      json(response, 200, {
        ok: false,
        baseUrl: 'https://api.anthropic.com',
        status: 401,
        latencyMs: 80,
        problem: 'key_rejected',
        message: 'Upstream refused the organisation key (401).',
        testedAt: '2026-12-01T10:00:00.000Z',
      });
    const result = await dispatcher().dispatch('gateway:test-upstream', { hostId: 'prod' });
    expect(result).toMatchObject({ ok: true, data: { ok: false, problem: 'key_rejected' } });
    expect(seen.map((s) => [s.method, s.path])).toEqual([['POST', '/api/v1/gateway/upstream-test']]);
  });
});
