/**
 * storage_full while the database takes no writes (as on a full disk). The alert cannot be recorded at the very time it matters, so it must be delivered without its row,
 * shown in the list from memory, and written once (no duplicates) when writes work again.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../../../remote-agent/src/db/database.js';
import { Receiver, startAlerts, type AlertHarness } from './harness.js';

let h: AlertHarness;
let receiver: Receiver;

/**
 * Every write to the alerts' tables fails as on a full disk (max_page_count left the alert's small row room in a
 * half-empty page, so the failure is injected with temporary triggers on the same real SQLite).
 */
function fillDatabase(db: Db): void {
  for (const table of ['alerts', 'alert_state'])
    for (const op of ['INSERT', 'UPDATE'])
      db.exec(
        `CREATE TEMP TRIGGER full_${table}_${op} BEFORE ${op} ON ${table} BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
      );
}

/** Space is back. */
function freeSpace(db: Db): void {
  for (const table of ['alerts', 'alert_state'])
    for (const op of ['INSERT', 'UPDATE']) db.exec(`DROP TRIGGER IF EXISTS temp.full_${table}_${op}`);
}

const storageRows = (): Array<{ state: string; notified: number }> =>
  h.db
    .prepare("SELECT state, notified FROM alerts WHERE kind = 'alert' AND rule = 'storage_full' ORDER BY id")
    .all() as Array<{
    state: string;
    notified: number;
  }>;

const events = (): unknown[][] => receiver.received.map((r) => [r.body.event, (r.body.alert as { rule: string }).rule]);

beforeEach(async () => {
  receiver = await new Receiver().start();
  h = startAlerts();
  h.webhook.update({ url: receiver.url, format: 'json', enabled: true });
});
afterEach(async () => {
  freeSpace(h.db);
  await h.close();
  await receiver.close();
});

describe('storage_full on a full database', () => {
  it('is delivered and listed while nothing can be written, then recorded once and resolved when space is back', async () => {
    fillDatabase(h.db);

    h.ops.emit('storage', { full: true, path: '/data', error: 'ENOSPC' });
    await h.tick();
    expect(events()).toEqual([['firing', 'storage_full']]);
    expect(storageRows()).toEqual([]);
    const listed = h.alerts.list({ filter: 'firing' });
    expect(listed.firing).toBe(1);
    expect(listed.alerts[0]).toMatchObject({ rule: 'storage_full', subject: '/data', state: 'firing' });

    // Still full at the next evaluations: not notified again.
    await h.tick();
    await h.tick();
    expect(events()).toHaveLength(1);

    // Space comes back while the condition still holds: the row is written once, not notified again.
    freeSpace(h.db);
    await h.tick();
    await h.tick();
    expect(storageRows()).toEqual([{ state: 'firing', notified: 1 }]);
    expect(h.alerts.list({ filter: 'firing' }).alerts.filter((a) => a.rule === 'storage_full')).toHaveLength(1);
    expect(events()).toHaveLength(1);

    h.ops.emit('storage', { full: false, path: '/data', error: null });
    await h.tick();
    expect(events()).toEqual([
      ['firing', 'storage_full'],
      ['resolved', 'storage_full'],
    ]);
    expect(storageRows()).toEqual([{ state: 'resolved', notified: 1 }]);
  });

  it('resolves while the disk is still full: notified, then recorded once as resolved when space is back', async () => {
    fillDatabase(h.db);
    h.ops.emit('storage', { full: true, path: '/data', error: 'ENOSPC' });
    await h.tick();
    h.ops.emit('storage', { full: false, path: '/data', error: null });
    await h.tick();
    expect(events()).toEqual([
      ['firing', 'storage_full'],
      ['resolved', 'storage_full'],
    ]);
    expect(h.alerts.list({ filter: 'firing' }).firing).toBe(0);
    expect(storageRows()).toEqual([]);
    freeSpace(h.db);
    await h.tick();
    await h.tick();
    expect(events()).toHaveLength(2);
    expect(storageRows()).toEqual([{ state: 'resolved', notified: 1 }]);
  });
});
