import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RequestLog, UNKNOWN_ROUTE } from '../../../../remote-agent/src/modules/gateway/request-log.js';
import type { Refusal } from '../../../../remote-agent/src/modules/gateway/refusal.js';
import { generateApiKey } from '../../../../remote-agent/src/modules/users/keys.js';
import { addKey, addUser, tempDb, type TempDb } from '../usage/helpers.js';

const ADA = 'u_aaaaaaaaaa';
const ADA_KEY = 'k_aaaaaaaaaa';
const GRACE = 'u_gggggggggg';
const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);

let t: TempDb;
let log: RequestLog;
let clock = T0;

const REVOKED = {
  status: 401,
  code: 'GATEWAY_KEY_REVOKED',
  message: 'This API key was revoked. Ask your Slotdeck admin for a new key.',
} as const;

/** A refusal of a caller the gateway admitted (its key was valid), unless overridden. */
function refusal(overrides: Partial<Refusal> = {}): Refusal {
  return {
    at: clock,
    status: 403,
    code: 'GATEWAY_SCOPE_MISSING',
    message: 'This key lacks the gateway scope. Ask your Slotdeck admin for a key with it.',
    userId: ADA,
    keyId: ADA_KEY,
    keyPrefix: null,
    model: 'claude-sonnet-4-6',
    method: 'POST',
    path: '/v1/messages',
    ip: '127.0.0.1',
    ...overrides,
  };
}

const unknownKey = (ip: string, keyPrefix: string): Refusal =>
  refusal({
    status: 401,
    code: 'GATEWAY_KEY_UNKNOWN',
    message: 'This API key is not known to this Slotdeck host.',
    userId: null,
    keyId: null,
    keyPrefix,
    model: null,
    ip,
  });

const tableRows = (): Array<Record<string, unknown>> => t.db.prepare('SELECT * FROM gateway_refusals').all() as never;

beforeEach(() => {
  t = tempDb();
  clock = T0;
  addUser(t.db, ADA, 'ada');
  addUser(t.db, GRACE, 'grace');
  addKey(t.db, ADA_KEY, ADA, 'laptop', 'sk_user_Ab3x');
  log = new RequestLog({ db: t.db, now: () => clock, flushDelayMs: 10 });
});

afterEach(() => {
  log.close();
  t.cleanup();
});

describe('request log', () => {
  it('keeps a refused request with its reason, user name and key name, newest first', () => {
    log.record(refusal(REVOKED));
    clock += 120_000;
    log.record(refusal({ status: 429, code: 'GATEWAY_RATE_LIMITED', message: 'Slow down: 60 requests a minute.' }));
    log.flush();
    const { rows, nextCursor } = log.list({ limit: 50 });
    expect(nextCursor).toBeNull();
    expect(rows.map((r) => r.code)).toEqual(['GATEWAY_RATE_LIMITED', 'GATEWAY_KEY_REVOKED']);
    expect(rows[1]).toMatchObject({
      at: new Date(T0).toISOString(),
      count: 1,
      status: 401,
      message: 'This API key was revoked. Ask your Slotdeck admin for a new key.',
      username: 'ada',
      keyName: 'laptop',
      keyPrefix: 'sk_user_Ab3x',
      model: 'claude-sonnet-4-6',
    });
  });

  it('writes later, together, so that recording never waits on the disk', async () => {
    for (let i = 0; i < 100; i++) log.record(refusal({ at: clock + i * 60_000 }));
    expect(tableRows()).toHaveLength(0);
    await expect.poll(() => tableRows().length).toBe(100);
  });

  it('writes a burst of different refusals a chunk per turn of the event loop, so the gateway is never held long', () => {
    log.close();
    vi.useFakeTimers();
    try {
      log = new RequestLog({ db: t.db, now: () => clock, flushDelayMs: 10 });
      for (let i = 0; i < 1000; i++) log.record(unknownKey(`198.51.100.${i % 250}`, 'sk_user_0000'));
      // A thousand different keys: each may make its own rows.
      for (let i = 0; i < 1000; i++) {
        log.record(refusal({ keyId: `k_${String(i).padStart(10, '0')}`, ip: `10.0.${i >> 8}.${i & 255}` }));
      }
      vi.advanceTimersByTime(10);
      expect(tableRows()).toHaveLength(200);
      vi.advanceTimersToNextTimer();
      expect(tableRows()).toHaveLength(400);
      const written = [400];
      while (written.at(-1)! < 1250 && written.length < 20) {
        vi.advanceTimersToNextTimer();
        written.push(tableRows().length);
      }
      expect(written).toEqual([400, 600, 800, 1000, 1200, 1250]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('filters by user, key, status, code and time, and pages through everything exactly once', () => {
    for (let i = 0; i < 30; i++) {
      clock = T0 + i * 60_000;
      log.record(refusal({ userId: i % 2 === 0 ? ADA : GRACE, keyId: i % 2 === 0 ? ADA_KEY : null }));
      log.record(refusal({ status: 429, code: 'GATEWAY_QUOTA_EXCEEDED', userId: GRACE, keyId: null }));
    }
    log.flush();
    expect(log.list({ limit: 200, userId: ADA }).rows).toHaveLength(15);
    expect(log.list({ limit: 200, keyId: ADA_KEY }).rows.every((r) => r.keyName === 'laptop')).toBe(true);
    expect(log.list({ limit: 200, status: 429 }).rows).toHaveLength(30);
    expect(log.list({ limit: 200, code: 'GATEWAY_SCOPE_MISSING', userId: GRACE }).rows).toHaveLength(15);
    const window = log.list({
      limit: 200,
      from: new Date(T0 + 10 * 60_000).toISOString(),
      to: new Date(T0 + 14 * 60_000).toISOString(),
    });
    expect(window.rows).toHaveLength(10);

    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = log.list({ limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.rows.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(60);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
  });

  it('keeps a spray of made-up keys from one address (or one IPv6 /64) to one row per hour, with its count', () => {
    for (let i = 0; i < 20_000; i++) log.record(unknownKey('203.0.113.9', generateApiKey().prefix));
    for (let i = 0; i < 5_000; i++) log.record(unknownKey(`2001:db8:1:2::${i.toString(16)}`, 'sk_user_zzzz'));
    log.flush();
    clock += 30 * 60_000;
    for (let i = 0; i < 1_000; i++) log.record(unknownKey('203.0.113.9', 'sk_user_0000'));
    log.flush();
    const rows = tableRows();
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.count).sort()).toEqual([21_000, 5_000].sort());
    expect(log.count({ from: new Date(T0 - 1).toISOString() }).refusals).toBe(26_000);
    // The next hour starts a new row.
    clock += 60 * 60_000;
    log.record(unknownKey('203.0.113.9', 'sk_user_0000'));
    log.flush();
    expect(tableRows()).toHaveLength(3);
  });

  it('merges a known caller’s repeats within a minute, and counts them in the window', () => {
    for (let i = 0; i < 500; i++) log.record(refusal({ status: 429, code: 'GATEWAY_RATE_LIMITED' }));
    log.flush();
    // Made-up model ids in the path or the body do not make new rows either.
    for (let i = 0; i < 500; i++) {
      log.record(
        refusal({ status: 429, code: 'GATEWAY_RATE_LIMITED', at: clock + 1000, model: `m${i}`, path: `/v1/messages` }),
      );
    }
    for (let i = 0; i < 100; i++) {
      log.record(refusal({ ...REVOKED, method: 'GET', path: `/v1/models/x${i}` }));
    }
    log.flush();
    const [models, row] = log.list({ limit: 10 }).rows;
    expect(log.list({ limit: 10 }).rows).toHaveLength(2);
    expect(models).toMatchObject({ count: 100, path: '/v1/models/x0' });
    expect(row).toMatchObject({ count: 1000, lastAt: new Date(T0 + 1000).toISOString() });
    expect(log.count({ from: new Date(T0).toISOString(), userId: ADA }).refusals).toBe(1100);
    expect(log.count({ from: new Date(T0).toISOString(), userId: GRACE }).refusals).toBe(0);
  });

  it('keeps a revoked key replayed at 300 made-up paths to a handful of rows, with its count', () => {
    const leaked = (i: number, over: Partial<Refusal> = {}): Refusal =>
      refusal({ ...REVOKED, method: 'GET', path: `/nope-${i}`, model: null, at: clock + i * 100, ...over });
    for (let i = 0; i < 300; i++) log.record(leaked(i));
    // The same key disabled with its user, from a second address: a second kind of refusal, not 300 more rows.
    for (let i = 0; i < 300; i++) {
      log.record(leaked(i, { code: 'GATEWAY_USER_DISABLED', message: 'Your account is disabled.', ip: '10.9.9.9' }));
    }
    // A valid key's refusals at made-up paths share one route label too.
    for (let i = 0; i < 300; i++) log.record(refusal({ path: `/v1/x${i}`, userId: GRACE, keyId: null }));
    log.flush();
    const rows = log.list({ limit: 50 }).rows;
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => [r.code, r.count, r.path])).toEqual([
      ['GATEWAY_SCOPE_MISSING', 300, UNKNOWN_ROUTE],
      ['GATEWAY_USER_DISABLED', 300, UNKNOWN_ROUTE],
      ['GATEWAY_KEY_REVOKED', 300, UNKNOWN_ROUTE],
    ]);
    expect(log.count({ from: new Date(T0).toISOString(), keyId: ADA_KEY }).refusals).toBe(600);
  });

  it('keeps other users’ history when one key floods from thousands of addresses', async () => {
    log.close();
    log = new RequestLog({ db: t.db, now: () => clock, maxRows: 200, flushDelayMs: 10 });
    for (let i = 0; i < 5; i++) log.record(refusal({ userId: GRACE, keyId: null, at: T0 + i * 60_000 }));
    log.flush();
    // Ada's key, valid or revoked, from 10,000 IPv6 /64 blocks within the next hour.
    clock = T0 + 10 * 60_000;
    for (let i = 0; i < 10_000; i++) {
      const over = i % 2 === 0 ? REVOKED : {};
      log.record(
        refusal({ ...over, ip: `2001:db8:${(i >> 8).toString(16)}:${(i & 255).toString(16)}::1`, at: clock + i * 300 }),
      );
    }
    log.flush();
    await log.prune();
    expect(log.list({ limit: 200, userId: GRACE }).rows).toHaveLength(5);
    const ada = log.list({ limit: 200, keyId: ADA_KEY }).rows;
    expect(ada.length).toBeLessThanOrEqual(61);
    expect(ada.reduce((sum, r) => sum + r.count, 0)).toBe(10_000);
  });

  it('drops rows past 30 days and the oldest beyond the row cap', async () => {
    log.close();
    log = new RequestLog({ db: t.db, now: () => clock, maxRows: 100, flushDelayMs: 10 });
    log.record(refusal({ at: T0 - 31 * 86_400_000 }));
    for (let i = 0; i < 250; i++) log.record(refusal({ at: T0 + i * 60_000 }));
    // Writing far past the cap starts a prune by itself.
    log.flush();
    await expect.poll(() => tableRows().length).toBe(100);
    const left = tableRows();
    expect(left).toHaveLength(100);
    expect(Math.min(...left.map((r) => r.at as number))).toBe(T0 + 150 * 60_000);
    // And on its timer, past the retention: the newest row is 31 days old now.
    clock = T0 + 250 * 60_000 + 31 * 86_400_000;
    expect(await log.prune()).toBe(100);
  });

  it('never stores a key, whatever the gateway reports', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('sk_user_', 'sk-ant-api03-'),
        fc.stringMatching(/^[A-Za-z0-9_-]{24,60}$/),
        fc.constantFrom('keyPrefix', 'message', 'path', 'model'),
        (start, rest, field) => {
          const secret = `${start}${rest}`;
          const own = generateApiKey().secret;
          const leak = { keyPrefix: secret, message: `bad ${secret}`, path: `/v1/${secret}`, model: secret }[field];
          log.record(unknownKey('198.51.100.1', own));
          log.record(refusal({ [field]: leak }));
          log.flush();
          const stored = JSON.stringify(tableRows()) + JSON.stringify(log.list({ limit: 200 }));
          expect(stored).not.toContain(secret);
          expect(stored).not.toContain(own);
          t.db.prepare('DELETE FROM gateway_refusals').run();
        },
      ),
      { numRuns: 200 },
    );
  });
});
