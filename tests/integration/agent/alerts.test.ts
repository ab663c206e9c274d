/**
 * Alerts end to end: a real agent process (PM2, dtach, SQLite) evaluating every 300 ms, and a loopback HTTP server as
 * the webhook's receiver. A slot whose program fails again and again is delivered as an alert (JSON, then Slack's
 * format), is not notified twice within the hour, and resolves when the slot is deleted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertList, WebhookSettings } from '../../../remote-agent/src/contract/index.js';
import { Receiver } from '../../remote-agent/modules/alerts/harness.js';
import { AgentProcess } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

let agent: AgentProcess;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await new Receiver().start('/services/T0/B0/integrationSecret');
  agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_CRASH_MAX_RESTARTS: '2',
      SLOTDECK_AGENT_CRASH_WINDOW_S: '60',
      SLOTDECK_AGENT_ALERTS_INTERVAL_MS: '300',
    },
  });
}, 60_000);

afterAll(async () => {
  await agent?.destroy();
  await receiver?.close();
});

const alertsOf = (rule: string) =>
  receiver.received
    .map((r) => r.body)
    .filter((body) => {
      const alert = (body.alert as { rule?: string } | undefined)?.rule;
      return alert === rule || (typeof body.text === 'string' && body.text.includes('failing'));
    });

async function failingSlot(name: string): Promise<string> {
  const slot = await agent.createSlot({
    name,
    command: { preset: 'custom', command: 'sh', args: ['-c', 'echo broken; exit 1'] },
  });
  await until(
    `${name} to fail`,
    () => agent.slot(slot.id),
    (s) => s.state === 'failed',
    { timeoutMs: 60_000 },
  );
  return slot.id;
}

describe('a slot that fails repeatedly', () => {
  it('is delivered to the webhook as JSON once, and resolves when the slot is deleted', async () => {
    const set = await agent.request<WebhookSettings>('PUT', '/api/v1/alerts/webhook', {
      url: receiver.url,
      format: 'json',
    });
    expect(set.body).toMatchObject({ configured: true, format: 'json' });
    expect(JSON.stringify(set.body)).not.toContain('integrationSecret');

    const slotId = await failingSlot('failing-json');
    const fired = await until(
      'the alert at the webhook',
      () => Promise.resolve(receiver.received.filter((r) => (r.body.alert as { rule: string }).rule === 'slot_failed')),
      (list) => list.length >= 1,
      { timeoutMs: 20_000 },
    );
    expect(fired[0]!.body).toMatchObject({
      source: 'slotdeck-agent',
      event: 'firing',
      alert: { rule: 'slot_failed', subject: slotId, severity: 'critical', state: 'firing' },
    });
    expect(fired[0]!.headers['content-type']).toBe('application/json');

    // PM2's restarts before the failure were recorded as what healed itself.
    const recovery = await agent.request<AlertList>('GET', '/api/v1/alerts?filter=recovery');
    expect(recovery.body.alerts.some((a) => a.subject === slotId)).toBe(true);

    // Many evaluations later it is still one notification (the hour is not over).
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(receiver.received.filter((r) => (r.body.alert as { rule: string }).rule === 'slot_failed')).toHaveLength(1);
    const firing = await agent.request<AlertList>('GET', '/api/v1/alerts?filter=firing');
    expect(firing.body.alerts.filter((a) => a.rule === 'slot_failed')).toHaveLength(1);

    expect((await agent.request('DELETE', `/api/v1/slots/${slotId}`)).status).toBe(200);
    const resolved = await until(
      'the resolution at the webhook',
      () => Promise.resolve(receiver.received.map((r) => r.body)),
      (list) => list.some((body) => body.event === 'resolved'),
      { timeoutMs: 20_000 },
    );
    expect(resolved.find((body) => body.event === 'resolved')).toMatchObject({
      alert: { rule: 'slot_failed', subject: slotId, state: 'resolved' },
    });
    const after = await agent.request<AlertList>('GET', '/api/v1/alerts?filter=resolved');
    expect(after.body.alerts.find((a) => a.subject === slotId)).toMatchObject({ state: 'resolved', read: false });
    expect(after.body.firing).toBe(0);
  }, 120_000);

  it('in Slack’s format when the admin picks it; a test shows as the last delivery', async () => {
    await agent.request('PUT', '/api/v1/alerts/webhook', { format: 'slack' });
    const tested = await agent.request<{ ok: boolean; status: number }>('POST', '/api/v1/alerts/webhook/test');
    expect(tested.body).toMatchObject({ ok: true, status: 200 });
    const before = receiver.received.length;
    await failingSlot('failing-slack');
    const slack = await until(
      'the Slack message',
      () => Promise.resolve(receiver.received.slice(before).map((r) => r.body)),
      (list) => list.some((body) => typeof body.text === 'string' && body.text.includes('failing-slack')),
      { timeoutMs: 20_000 },
    );
    const message = slack.find((body) => typeof body.text === 'string' && body.text.includes('failing-slack'))!;
    expect(Object.keys(message).sort()).toEqual(['blocks', 'text']);
    expect(message.text).toContain('Firing: Slot failing-slack failed');
    // The receiver has the message before the agent has read the answer and recorded the delivery.
    const lastDelivery = await until(
      'the delivery to be recorded',
      async () => (await agent.request<WebhookSettings>('GET', '/api/v1/alerts/webhook')).body.lastDelivery,
      (delivery) => delivery?.test === false,
    );
    expect(lastDelivery).toMatchObject({ ok: true, test: false, what: 'firing slot_failed' });
    expect(alertsOf('slot_failed').length).toBeGreaterThanOrEqual(2);
    // The URL's secret path is in no log line of the agent.
    expect(agent.logs.join('\n')).not.toContain('integrationSecret');
  }, 120_000);
});
