/**
 * The upstream error rate (the upstream_errors alert and the health details' errorRate5m) is over requests forwarded
 * to the upstream only. A key holder looping GET /v1/me/quota, or clients refused before the upstream, must not
 * dilute it below the alert's 5 %. A real gateway on SQLite, with the Messages API stand-in as upstream.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HealthDetailsService, type HealthDetailsDeps } from '../../../../remote-agent/src/modules/health/details.js';
import { startHarness, type Harness } from '../gateway/harness.js';
import { Receiver, startAlerts, type AlertHarness } from './harness.js';

let alerts: AlertHarness;
let gateway: Harness;
let health: HealthDetailsService;
let receiver: Receiver;

beforeEach(async () => {
  receiver = await new Receiver().start();
  alerts = startAlerts();
  alerts.webhook.update({ url: receiver.url, format: 'json', enabled: true });
  gateway = await startHarness({ ops: alerts.ops });
  // Only the error-rate part of the details service is under test: it listens on the bus from its constructor.
  health = new HealthDetailsService({ ops: alerts.ops, db: alerts.db } as unknown as HealthDetailsDeps);
});
afterEach(async () => {
  health.close();
  await gateway.close();
  await alerts.close();
  await receiver.close();
});

const ask = (key: string, text: string) =>
  gateway.gateway.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    payload: JSON.stringify({
      model: 'claude-sonnet-4-6',
      max_tokens: 16,
      messages: [{ role: 'user', content: text }],
    }),
  });

describe('the upstream error rate with the Messages API stand-in', () => {
  it('counts forwarded requests only: /v1/me/quota loops and refused clients do not dilute it', async () => {
    const { created } = gateway.newKey();
    for (let i = 0; i < 18; i += 1) expect((await ask(created.secret, 'hello')).statusCode).toBe(200);
    for (let i = 0; i < 2; i += 1)
      expect((await ask(created.secret, '!error 529 overloaded_error')).statusCode).toBe(529);
    // 500 answers of the gateway's own, and 100 clients without a key: none reached the upstream.
    for (let i = 0; i < 500; i += 1) {
      const quota = await gateway.gateway.app.inject({
        method: 'GET',
        url: '/v1/me/quota',
        headers: { 'x-api-key': created.secret },
      });
      expect(quota.statusCode).toBe(200);
    }
    for (let i = 0; i < 100; i += 1) expect((await ask('sk-ant-wrong', 'hello')).statusCode).toBe(401);

    // 2 of 20 forwarded requests failed: 10 %, not 2 of 620.
    expect(health.upstream().errorRate5m).toBe(0.1);
    await alerts.tick();
    const fired = receiver.received.map((r) => [r.body.event, (r.body.alert as { rule: string }).rule]);
    expect(fired).toEqual([['firing', 'upstream_errors']]);
    expect((receiver.received[0]!.body.alert as { message: string }).message).toMatch(/^2 of 20 /);
  });
});
