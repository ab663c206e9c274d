/**
 * Main's alert watcher: it asks only connected hosts, tells the windows when a host's counts change, and shows one
 * desktop notification (Electron's Notification, mocked: there is no display here) per alert that starts firing
 * while the panel runs, none for alerts already firing when it first looks.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Alert, AlertList } from '../../../../remote-agent/src/contract/index';
import type { Host } from '../../../../src/shared/ipc/contract';

const shown: Array<{ title: string; body: string }> = [];
vi.mock('electron', () => ({
  Notification: class {
    static isSupported = () => true;
    constructor(private readonly options: { title: string; body: string }) {}
    show() {
      shown.push(this.options);
    }
  },
}));

const { Notification } = await import('electron');
const { AlertWatcher } = await import('../../../../src/main/services/alerts/alert-watcher');
const { createDesktopNotifier } = await import('../../../../src/main/services/alerts/desktop-notifier');

const alert = (id: string, extra: Partial<Alert> = {}): Alert => ({
  id,
  kind: 'alert',
  rule: 'slot_failed',
  subject: `slot-${id}`,
  severity: 'critical',
  title: `Slot ${id} failed`,
  message: `Slot "${id}" failed and was left stopped.`,
  state: 'firing',
  firedAt: '2026-12-01T12:00:00.000Z',
  resolvedAt: null,
  lastSeenAt: '2026-12-01T12:00:00.000Z',
  occurrences: 1,
  notified: true,
  read: false,
  ...extra,
});

function setup() {
  const answers: Record<string, AlertList> = {
    one: { alerts: [alert('a')], nextCursor: null, unread: 1, firing: 1 },
    two: { alerts: [], nextCursor: null, unread: 0, firing: 0 },
  };
  const asked: string[] = [];
  const hosts: Host[] = [
    { id: 'one', name: 'Alpha', status: { state: 'connected' } } as Host,
    { id: 'two', name: 'Beta', status: { state: 'disconnected' } } as Host,
  ];
  const events: Array<{ hostId: string; unread: number; firing: number }> = [];
  const watcher = new AlertWatcher({
    hosts: {
      list: () => hosts,
      client: (id) => ({
        call: (() => {
          asked.push(id);
          return Promise.resolve(answers[id]);
        }) as never,
      }),
    },
    events: { emit: (_channel, payload) => void events.push(payload as (typeof events)[number]) },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    notify: createDesktopNotifier(Notification),
  });
  return { answers, asked, hosts, events, watcher };
}

describe('AlertWatcher', () => {
  it('asks connected hosts only, and notifies once per newly firing alert', async () => {
    shown.length = 0;
    const { answers, asked, events, watcher } = setup();
    await watcher.poll();
    expect(asked).toEqual(['one']);
    // Already firing at the first look: counted, not notified.
    expect(shown).toEqual([]);
    expect(events).toEqual([{ hostId: 'one', unread: 1, firing: 1 }]);

    answers.one = { alerts: [alert('a'), alert('b')], nextCursor: null, unread: 2, firing: 2 };
    await watcher.poll();
    await watcher.poll();
    expect(shown).toEqual([{ title: 'Alpha: Slot b failed', body: 'Slot "b" failed and was left stopped.' }]);
    expect(events.at(-1)).toEqual({ hostId: 'one', unread: 2, firing: 2 });
    expect(events).toHaveLength(2);

    // One held back by the agent (fired again within the hour) is not a notification.
    answers.one = {
      alerts: [alert('a'), alert('b'), alert('c', { notified: false })],
      nextCursor: null,
      unread: 3,
      firing: 3,
    };
    await watcher.poll();
    expect(shown).toHaveLength(1);
    watcher.dispose();
  });

  it('starts on a host when it connects, and a failing host does not stop the others', async () => {
    shown.length = 0;
    const { asked, hosts, watcher, events } = setup();
    hosts[1]!.status = { state: 'connected' } as Host['status'];
    await watcher.poll();
    expect(asked.sort()).toEqual(['one', 'two']);
    expect(events.map((e) => e.hostId).sort()).toEqual(['one', 'two']);
    watcher.dispose();
  });
});
