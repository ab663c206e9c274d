/**
 * A usage row that cannot be committed (the database is full: SQLite's max_page_count makes it so without filling a
 * real disk). The recorder rejects it and tells the storage monitor; the gateway does not hand out an answer that is
 * not on record (stand-in upstream: the fake Messages API).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../../../remote-agent/src/db/database.js';
import { OpsEvents, type OpsEventMap } from '../../../../remote-agent/src/ops/events.js';
import { StorageMonitor } from '../../../../remote-agent/src/ops/storage.js';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder } from '../../../../remote-agent/src/modules/usage/recorder.js';
import { startHarness, type Harness } from '../gateway/harness.js';
import { tempDb, usageEvent, type TempDb } from '../usage/helpers.js';

/** Caps the database a few pages above its size, then records small rows until a commit fails for want of room. */
async function fillDatabase(db: Db, recorder: UsageRecorder): Promise<number> {
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma(`max_page_count = ${pages + 2}`);
  for (let i = 0; i < 100_000; i++) {
    try {
      await recorder.record(usageEvent({ requestId: null, userId: null, keyId: null, model: 'm' }));
    } catch (error) {
      expect((error as { code?: string }).code).toBe('SQLITE_FULL');
      return i;
    }
  }
  throw new Error('the database never filled up');
}

describe('the usage recorder on a full database', () => {
  let t: TempDb;
  let ops: OpsEvents;
  let storage: StorageMonitor;
  let recorder: UsageRecorder;

  beforeEach(() => {
    t = tempDb();
    ops = new OpsEvents();
    storage = new StorageMonitor({ dir: t.dir, ops });
    recorder = new UsageRecorder({
      db: t.db,
      prices: new PriceTable(),
      quotas: new QuotaService({ db: t.db }),
      ops,
      storage,
    });
  });

  afterEach(async () => {
    await recorder.close();
    t.cleanup();
  });

  it('rejects the row it could not commit, flips the storage monitor, and reports only committed rows', async () => {
    const recorded: Array<OpsEventMap['usage.recorded']> = [];
    const commits: number[] = [];
    ops.on('usage.recorded', (event) => recorded.push(event));
    ops.on('db.commit', (event) => commits.push(event.ms));

    await recorder.record(usageEvent({ model: 'claude-sonnet-4-6', inputTokens: 7, outputTokens: 3 }));
    expect(recorded[0]).toMatchObject({ model: 'claude-sonnet-4-6', inputTokens: 7, outputTokens: 3 });
    expect(commits.length).toBe(1);
    expect(commits[0]).toBeGreaterThanOrEqual(0);
    expect(storage.full).toBe(false);

    const committed = await fillDatabase(t.db, recorder);
    expect(storage.state()).toMatchObject({ full: true, error: 'usage rows: database or disk is full' });
    expect(recorded).toHaveLength(1 + committed);
    const rows = t.db.prepare('SELECT COUNT(*) AS n FROM usage_events').get() as { n: number };
    expect(rows.n).toBe(1 + committed);
  });
});

describe('the gateway when a usage row cannot be committed', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });

  afterEach(() => h.close());

  const body = (stream: boolean): string =>
    JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 64, stream, messages: [{ role: 'user', content: 'hi' }] });

  it('answers 503 GATEWAY_STORAGE_FULL instead of a JSON answer it could not record', async () => {
    const { created } = h.newKey();
    await fillDatabase(h.db, h.recorder);
    const response = await h.gateway.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      payload: body(false),
    });
    expect(response.statusCode).toBe(503);
    const answer = response.json<{ type: string; error: { type: string; message: string }; code: string }>();
    expect(answer.code).toBe('GATEWAY_STORAGE_FULL');
    expect(answer.error.message).toMatch(/could not record.*free space on the host/);
    expect(response.body).not.toContain('msg_fake');
    expect(h.upstream!.requests).toHaveLength(1);
  });

  it('ends a stream it could not record with an error event and no clean end, never message_stop', async () => {
    const { created } = h.newKey();
    const url = await h.listen();
    await fillDatabase(h.db, h.recorder);
    const response = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      body: body(true),
    });
    expect(response.status).toBe(200);
    let text = '';
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    let aborted = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      aborted = true;
    }
    expect(aborted).toBe(true);
    expect(text).toContain('event: error');
    expect(text).toContain('could not record');
    expect(text).not.toContain('message_stop');
  });

  it('answers as usual while rows can be committed', async () => {
    const { created } = h.newKey();
    const response = await h.gateway.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { 'x-api-key': created.secret, 'content-type': 'application/json' },
      payload: body(false),
    });
    expect(response.statusCode).toBe(200);
    expect(h.rows()).toHaveLength(1);
  });
});
