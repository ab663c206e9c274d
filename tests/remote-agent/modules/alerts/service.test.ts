/**
 * Alert evaluation and delivery: each rule fires once per subject, resolves itself, is notified again at most once
 * an hour; recovery events join the history; the webhook retries with backoff, follows no redirect and speaks JSON
 * or Slack's format.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { webhookTarget } from '../../../../remote-agent/src/modules/alerts/webhook.js';
import { healthDetails, Receiver, slot, startAlerts, type AlertHarness } from './harness.js';

const HOUR = 3_600_000;
let h: AlertHarness;
let receiver: Receiver;

beforeEach(async () => {
  receiver = await new Receiver().start();
  h = startAlerts();
  h.webhook.update({ url: receiver.url, format: 'json', enabled: true });
});
afterEach(async () => {
  await h.close();
  await receiver.close();
});

const events = (): Array<[unknown, unknown, unknown]> =>
  receiver.received.map((r) => {
    const alert = r.body.alert as { rule: string; subject: string };
    return [r.body.event, alert.rule, alert.subject];
  });

describe('a failed slot', () => {
  it('fires once, is not notified again within the hour, reminds after it, and resolves when the slot is gone', async () => {
    h.details = healthDetails({ slots: [slot('s1', 'failed'), slot('s2', 'running')] });
    await h.tick();
    expect(events()).toEqual([['firing', 'slot_failed', 's1']]);
    const first = receiver.received[0]!.body;
    expect(first).toMatchObject({
      source: 'slotdeck-agent',
      alert: { severity: 'critical', state: 'firing', title: 'Slot name-s1 failed' },
    });
    for (let i = 0; i < 5; i += 1) {
      h.clock.advance(10 * 60_000 - 1);
      await h.tick();
    }
    expect(events()).toHaveLength(1);
    expect(h.alerts.list({ filter: 'firing' }).alerts).toHaveLength(1);

    h.clock.advance(10 * 60_000 + 5);
    await h.tick();
    expect(events()).toEqual([
      ['firing', 'slot_failed', 's1'],
      ['reminder', 'slot_failed', 's1'],
    ]);

    h.details = healthDetails({ slots: [slot('s2', 'running')] });
    await h.tick();
    expect(events()[2]).toEqual(['resolved', 'slot_failed', 's1']);
    const list = h.alerts.list({ filter: 'all' });
    expect(list.alerts).toHaveLength(1);
    expect(list.alerts[0]).toMatchObject({ state: 'resolved', rule: 'slot_failed', read: false });
    expect(list).toMatchObject({ firing: 0 });
  });

  it('a slot that fails again within the hour is in the history but not notified again', async () => {
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    await h.tick();
    h.details = healthDetails({ slots: [slot('s1', 'running')] });
    h.clock.advance(60_000);
    await h.tick();
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    h.clock.advance(60_000);
    await h.tick();
    expect(events()).toEqual([
      ['firing', 'slot_failed', 's1'],
      ['resolved', 'slot_failed', 's1'],
    ]);
    const [again] = h.alerts.list({ filter: 'firing' }).alerts;
    expect(again).toMatchObject({ state: 'firing', notified: false });
    // Once the hour since the last notification is over, it is announced.
    h.clock.advance(HOUR);
    await h.tick();
    expect(events()[2]).toEqual(['firing', 'slot_failed', 's1']);
  });
});

describe('thresholds', () => {
  it('a slot restarting 3 times in 10 minutes fires, fewer or slower does not', async () => {
    h.details = healthDetails({ slots: [slot('s1', 'running', 0)] });
    await h.tick();
    for (const restarts of [1, 2]) {
      h.details = healthDetails({ slots: [slot('s1', 'restarting', restarts)] });
      h.clock.advance(6 * 60_000);
      await h.tick();
    }
    expect(events()).toEqual([]);
    h.details = healthDetails({ slots: [slot('s1', 'restarting', 4)] });
    h.clock.advance(60_000);
    await h.tick();
    expect(events()).toEqual([['firing', 'slot_restarting', 's1']]);
  });

  it('disk below 10 % or 2 GB and memory above 90 % fire; changing a rule takes effect at once', async () => {
    h.details = healthDetails({
      disk: { path: '/data', freeBytes: 1.5 * 1024 ** 3, totalBytes: 10 * 1024 ** 3, freePercent: 15 },
      memory: { totalBytes: 100, availableBytes: 5, usedPercent: 95 },
    });
    await h.tick();
    expect(events().sort()).toEqual([
      ['firing', 'disk_low', '/data'],
      ['firing', 'memory_high', ''],
    ]);
    h.alerts.rules.update({
      rules: [
        { id: 'memory_high', params: { usedPercent: 99 } },
        { id: 'disk_low', enabled: false },
      ],
    });
    await h.tick();
    // Memory resolves (notified); the disabled disk rule's alert ends quietly.
    expect(events().slice(2)).toEqual([['resolved', 'memory_high', '']]);
    expect(h.alerts.list({ filter: 'firing' }).firing).toBe(0);
    expect(h.alerts.rules.list().find((r) => r.id === 'memory_high')).toMatchObject({
      params: { usedPercent: 99 },
      defaults: { usedPercent: 90 },
    });
  });

  it('upstream errors need the share and a minimum count: 1 failure of 2 does not page, 10 of 100 does', async () => {
    const exchange = (outcome: 'ok' | 'upstream_error') =>
      h.ops.emit('upstream.answer', { status: outcome === 'ok' ? 200 : 529, error: null, at: h.clock.now() });
    exchange('ok');
    exchange('upstream_error');
    await h.tick();
    expect(events()).toEqual([]);
    for (let i = 0; i < 90; i += 1) exchange('ok');
    for (let i = 0; i < 9; i += 1) exchange('upstream_error');
    await h.tick();
    expect(events()).toEqual([['firing', 'upstream_errors', '']]);
    // Five minutes later the window holds nothing: resolved.
    h.clock.advance(6 * 60_000);
    await h.tick();
    expect(events()[1]).toEqual(['resolved', 'upstream_errors', '']);
  });

  it('quota at 80 % and at 100 % fire per user; a stale backup only while backups are on', async () => {
    const quota = (used: number) => ({
      subject: 'user' as const,
      window: 'day' as const,
      maxTokens: 1000,
      maxCostUsd: null,
      usedTokens: used,
      usedCostUsd: 0,
      resetsAt: '2026-12-02T00:00:00.000Z',
      exceeded: used >= 1000,
    });
    h.quotas = [
      { userId: 'u1', username: 'ada', quotas: [quota(850)] },
      { userId: 'u2', username: 'bob', quotas: [quota(1000)] },
    ];
    h.details = healthDetails({
      uptimeS: 30 * 3600,
      backup: { lastSuccessAt: null, ageS: 27 * 3600, lastError: 'disk full' },
    });
    await h.tick();
    expect(events().sort()).toEqual([
      ['firing', 'quota_100', 'u2'],
      ['firing', 'quota_80', 'u1'],
      ['firing', 'quota_80', 'u2'],
    ]);
    h.backupsEnabled = true;
    await h.tick();
    expect(events()[3]).toEqual(['firing', 'backup_stale', '']);
    expect((receiver.received[3]!.body.alert as { message: string }).message).toContain('disk full');
  });

  it('storage_full fires on the storage event at once and resolves when the disk takes writes again', async () => {
    h.ops.emit('storage', { full: true, path: '/data', error: 'ENOSPC' });
    await h.alerts.evaluate();
    await h.webhook.idle();
    expect(events()).toEqual([['firing', 'storage_full', '/data']]);
    h.ops.emit('storage', { full: false, path: '/data', error: null });
    await h.alerts.evaluate();
    await h.webhook.idle();
    expect(events()[1]).toEqual(['resolved', 'storage_full', '/data']);
  });
});

describe('history', () => {
  it('recovery events are info rows; the same kind and target within a minute counts up instead', async () => {
    h.ops.emit('recovery', { kind: 'slot-restarted', target: 's1', message: 'PM2 restarted slot one' });
    h.clock.advance(10_000);
    h.ops.emit('recovery', { kind: 'slot-restarted', target: 's1', message: 'PM2 restarted slot one again' });
    h.ops.emit('recovery', { kind: 'supervisor-restarted', target: null, message: 'reconnected to PM2' });
    const list = h.alerts.list({ filter: 'recovery' });
    expect(list.alerts.map((a) => [a.rule, a.occurrences, a.state, a.severity])).toEqual([
      ['supervisor-restarted', 1, 'info', 'info'],
      ['slot-restarted', 2, 'info', 'info'],
    ]);
    // Recovery is history, not a page.
    await h.webhook.idle();
    expect(receiver.received).toEqual([]);
    expect(h.alerts.markRead({ ids: [list.alerts[0]!.id] })).toEqual({ marked: 1, unread: 1 });
    expect(h.alerts.markRead({ all: true })).toEqual({ marked: 1, unread: 0 });
  });

  it('keeps 30 days: older ended rows are pruned, a firing alert stays', async () => {
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    await h.tick();
    h.ops.emit('recovery', { kind: 'reconcile', target: 's9', message: 'fixed' });
    h.clock.advance(31 * 24 * HOUR);
    h.ops.emit('recovery', { kind: 'reconcile', target: 's9', message: 'fixed again' });
    await h.tick();
    expect(h.alerts.list({ filter: 'all' }).alerts.map((a) => [a.rule, a.message])).toEqual([
      ['reconcile', 'fixed again'],
      ['slot_failed', 'Slot "name-s1" failed and was left stopped.'],
    ]);
  });

  it('a second start of the agent records agent_restarted, saying whether the last run stopped cleanly', async () => {
    const dir = h.dir;
    await h.alerts.close();
    const second = startAlerts({ dir, db: h.db });
    const [restarted] = second.alerts.list({ filter: 'all' }).alerts;
    expect(restarted).toMatchObject({ rule: 'agent_restarted', state: 'resolved', severity: 'info' });
    expect(restarted!.message).toContain('stopped cleanly');
    // Not stopped cleanly this time (as after kill -9):
    const third = startAlerts({ dir, db: h.db });
    const [crashed] = third.alerts.list({ filter: 'all' }).alerts;
    expect(crashed).toMatchObject({ rule: 'agent_restarted', severity: 'warning' });
    expect(crashed!.message).toContain('without stopping cleanly');
    await third.alerts.close();
    h.alerts = second.alerts;
  });
});

describe('webhook delivery', () => {
  it('retries 5xx with backoff until it is taken, and records the last delivery', async () => {
    receiver.statuses = [503, 500];
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    await h.tick();
    expect(receiver.received).toHaveLength(3);
    expect(h.webhook.settings().lastDelivery).toMatchObject({ ok: true, status: 200, attempts: 3, test: false });
  });

  it('gives up after the attempts, does not retry a 404, and follows no redirect', async () => {
    receiver.statuses = [500, 500, 500, 500];
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    await h.tick();
    expect(receiver.received).toHaveLength(4);
    expect(h.webhook.settings().lastDelivery).toMatchObject({ ok: false, status: 500, attempts: 4 });

    receiver.statuses = [404];
    expect(await h.webhook.test()).toMatchObject({ ok: false, status: 404, attempts: 1 });
    receiver.statuses = [302];
    const before = receiver.received.length;
    const redirected = await h.webhook.test();
    expect(redirected).toMatchObject({ ok: false, status: 302 });
    expect(redirected!.error).toContain('redirect');
    // The redirect's target was never asked.
    expect(receiver.received).toHaveLength(before + 1);
  });

  it('abandons an attempt that gets no answer in time, and its error does not quote the URL', async () => {
    await h.alerts.close();
    h = startAlerts({ delivery: { timeoutMs: 100, attempts: 1 } });
    h.webhook.update({ url: receiver.url });
    receiver.delayMs = 1000;
    const delivery = await h.webhook.test();
    expect(delivery).toMatchObject({ ok: false, status: null });
    expect(delivery!.error).toContain('no answer within 100 ms');
    h.webhook.update({ url: 'http://127.0.0.1:9/hooks/SECRETPATHxyz' });
    const refused = await h.webhook.test();
    expect(refused!.error).not.toContain('SECRETPATH');
  });

  it('speaks Slack’s format when asked: text plus blocks', async () => {
    h.webhook.update({ format: 'slack' });
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    await h.tick();
    const body = receiver.received[0]!.body as { text: string; blocks: Array<{ type: string }> };
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toContain('Firing: Slot name-s1 failed');
    expect(body.blocks.map((b) => b.type)).toEqual(['section', 'context']);
  });

  it('sends nothing while the webhook is off, and answers only the host of its URL', async () => {
    h.webhook.update({ enabled: false });
    h.details = healthDetails({ slots: [slot('s1', 'failed')] });
    await h.tick();
    expect(receiver.received).toEqual([]);
    const settings = h.webhook.settings();
    expect(settings).toMatchObject({ configured: true, enabled: false, format: 'json' });
    expect(settings.target).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/…$/);
    expect(JSON.stringify(settings)).not.toContain('SECRETPATH');
  });

  it('masks the host of a hosted receiver down to its domain and never shows the path', () => {
    expect(webhookTarget('https://eo1a2b3c4d5e6f.m.pipedream.net/some/path?token=x')).toBe('https://…pipedream.net/…');
    expect(webhookTarget('https://hooks.slack.com/services/T0/B0/SECRET')).toBe('https://…slack.com/…');
    expect(webhookTarget('https://example.com')).toBe('https://example.com');
    expect(webhookTarget('http://[::1]:8080/x')).toBe('http://[::1]:8080/…');
  });

  it('refuses a plain http URL unless the receiver is on this host: use https', () => {
    for (const url of ['http://hooks.example.com/x', 'http://10.0.0.5/x', 'http://127.0.0.1.nip.io/x'])
      expect(() => h.webhook.update({ url })).toThrow(expect.objectContaining({ code: 'ALERT_WEBHOOK_INVALID' }));
    expect(() => h.webhook.update({ url: 'http://hooks.example.com/x' })).toThrow(/use https/);
    // The refused URL replaced nothing.
    expect(h.webhook.settings().target).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/…$/);
    expect(h.webhook.update({ url: 'http://localhost:9/x' }).target).toBe('http://localhost:9/…');
    expect(h.webhook.update({ url: 'https://hooks.example.com/x' }).target).toBe('https://…example.com/…');
  });

  it('escapes Slack’s control sequences in names and messages, so a slot name cannot mention @channel or link', async () => {
    h.webhook.update({ format: 'slack' });
    h.details = healthDetails({
      slots: [{ ...slot('s1', 'failed'), name: '<!channel> & <https://evil.example|click>' }],
    });
    await h.tick();
    const body = receiver.received[0]!.body as { text: string; blocks: Array<{ text?: { text: string } }> };
    const all = JSON.stringify(body);
    expect(all).not.toContain('<!channel>');
    expect(all).not.toContain('<https://evil');
    expect(body.text).toContain('&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;');
    expect(body.blocks[0]!.text!.text).toContain('&lt;!channel&gt;');
  });
});
