import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder } from '../../../../remote-agent/src/modules/usage/recorder.js';
import { HOUR_MS, MINUTE_MS } from '../../../../remote-agent/src/modules/usage/time.js';
import { addKey, addUser, tempDb, usageEvent, type TempDb } from './helpers.js';

const ADA = 'u_aaaaaaaaaa';
const BOB = 'u_bbbbbbbbbb';
const ADA_LAPTOP = 'k_aaaaaaaaaa';
const ADA_SERVER = 'k_cccccccccc';

let t: TempDb;
let clock: number;
let quotas: QuotaService;
let recorder: UsageRecorder;

function service(): QuotaService {
  return new QuotaService({ db: t.db, now: () => clock });
}

/** Records a request of `tokens` input tokens (Sonnet 4.5: $3 per million) started now. */
async function use(tokens: number, userId = ADA, keyId = ADA_LAPTOP, startedAt = clock): Promise<void> {
  await recorder.record(usageEvent({ userId, keyId, startedAt, inputTokens: tokens, outputTokens: 0 }));
}

beforeEach(() => {
  t = tempDb();
  addUser(t.db, ADA, 'ada');
  addUser(t.db, BOB, 'bob');
  addKey(t.db, ADA_LAPTOP, ADA, 'laptop', 'sk_user_Ab3');
  addKey(t.db, ADA_SERVER, ADA, 'server', 'sk_user_Zz9');
  clock = Date.UTC(2026, 10, 30, 20, 0, 0);
  quotas = service();
  recorder = new UsageRecorder({ db: t.db, prices: new PriceTable(), quotas });
});

afterEach(async () => {
  await recorder.close();
  t.cleanup();
});

describe('QuotaService', () => {
  it('counts what a rotated key used against its replacement, after a restart too', async () => {
    const replacement = 'k_dddddddddd';
    addKey(t.db, replacement, ADA, 'laptop', 'sk_user_Dd4');
    await use(700, ADA, ADA_LAPTOP);
    t.db.prepare('UPDATE api_keys SET rotated_to = ? WHERE id = ?').run(replacement, ADA_LAPTOP);
    quotas.set('key', replacement, [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    await use(400, ADA, replacement);
    const restarted = service();
    expect(restarted.status('key', replacement)[0]).toMatchObject({ usedTokens: 1100, exceeded: true });
    expect(restarted.check(ADA, replacement)).toMatchObject({ ok: false });
  });

  it('counts running requests against the quota until their rows are committed, once', async () => {
    quotas.set('user', ADA, [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    const first = quotas.hold(ADA, ADA_LAPTOP);
    first.set(600, 0.001);
    const second = quotas.hold(ADA, ADA_SERVER);
    second.set(500, 0.001);
    // Neither has finished, but together they used the budget up: a third request is refused.
    expect(quotas.check(ADA, ADA_LAPTOP)).toMatchObject({ ok: false, quota: { usedTokens: 1100 } });
    // A hold grows in place rather than adding up.
    second.set(300, 0.001);
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 900, exceeded: false });
    // Committed, then released: counted once.
    await use(600);
    first.release();
    first.release();
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 900 });
    second.release();
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 600 });
    expect(quotas.check(ADA, ADA_LAPTOP)).toEqual({ ok: true });
  });

  it('reserves an admitted request at once, capped by what is left, until its real usage is known and released', () => {
    quotas.set('user', ADA, [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    quotas.set('key', ADA_LAPTOP, [{ window: 'month', maxTokens: null, maxCostUsd: 0.05 }]);
    // Nothing is known of the first request yet, but it may use 700 tokens ($0.03): both budgets count it.
    const first = quotas.hold(ADA, ADA_LAPTOP, { tokens: 700, cost: 0.03 });
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 700 });
    expect(quotas.status('key', ADA_LAPTOP)[0]!.usedCostUsd).toBeCloseTo(0.03, 12);
    // The second may use as much again, but only 300 tokens and $0.02 are left: it reserves that, and the budget is
    // then spoken for, so a third request is refused before any of them used a token.
    const second = quotas.hold(ADA, ADA_LAPTOP, { tokens: 700, cost: 0.03 });
    expect(quotas.pendingOf('user', ADA).tokens).toBe(1000);
    expect(quotas.pendingOf('key', ADA_LAPTOP).cost).toBeCloseTo(0.05, 12);
    expect(quotas.check(ADA, ADA_LAPTOP)).toMatchObject({ ok: false });
    // Usage below the reservation keeps the reservation; usage above it replaces it.
    first.set(100, 0.001);
    expect(quotas.pendingOf('user', ADA).tokens).toBe(1000);
    second.set(450, 0.01);
    expect(quotas.pendingOf('user', ADA).tokens).toBe(1150);
    first.release();
    second.release();
    expect(quotas.pendingOf('user', ADA)).toEqual({ tokens: 0, cost: 0 });
    expect(quotas.check(ADA, ADA_LAPTOP)).toEqual({ ok: true });
  });

  it('refuses the next request once reservations fill a cost budget, though the float sum lands a hair below it', () => {
    quotas.set('user', ADA, [{ window: 'day', maxTokens: null, maxCostUsd: 83.83 }]);
    quotas.hold(ADA, ADA_LAPTOP, { tokens: 0, cost: 19.30070163290859 });
    // Reserves what is left; 19.30070163290859 + (83.83 − 19.30070163290859) is 83.82999999999998 in floating point.
    quotas.hold(ADA, ADA_LAPTOP, { tokens: 0, cost: 1000 });
    expect(quotas.pendingOf('user', ADA).cost).toBeLessThan(83.83);
    expect(quotas.check(ADA, ADA_LAPTOP)).toMatchObject({ ok: false, quota: { window: 'day', exceeded: true } });
    expect(quotas.status('user', ADA)[0]).toMatchObject({ exceeded: true });
  });

  it('reserves nothing for a user and key without quotas', () => {
    const hold = quotas.hold(BOB, null, { tokens: 700, cost: 0.03 });
    expect(quotas.pendingOf('user', BOB)).toEqual({ tokens: 0, cost: 0 });
    hold.release();
  });

  it('refuses a user whose daily token quota is used up, naming it and when it resets', async () => {
    quotas.set('user', ADA, [{ window: 'day', maxTokens: 100_000, maxCostUsd: null }]);
    await use(60_000);
    expect(quotas.check(ADA, ADA_LAPTOP)).toEqual({ ok: true });
    await use(40_412);
    const refused = quotas.check(ADA, ADA_LAPTOP);
    expect(refused).toEqual({
      ok: false,
      quota: {
        subject: 'user',
        window: 'day',
        maxTokens: 100_000,
        maxCostUsd: null,
        usedTokens: 100_412,
        usedCostUsd: expect.closeTo(0.301236, 9) as number,
        resetsAt: '2026-12-01T00:00:00.000Z',
        exceeded: true,
      },
      message:
        'Daily token quota of 100000 tokens for user ada is used up (100412 used); it resets at ' +
        '2026-12-01T00:00:00.000Z. Ask your admin to raise it.',
    });
    // Another user is not affected.
    expect(quotas.check(BOB, null).ok).toBe(true);
  });

  it('counts all four kinds of tokens, cache included', async () => {
    quotas.set('user', ADA, [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    await recorder.record(
      usageEvent({ startedAt: clock, inputTokens: 1, outputTokens: 2, cacheCreationTokens: 300, cacheReadTokens: 697 }),
    );
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 1000, exceeded: true });
  });

  it('lets the user in again at the next UTC day', async () => {
    quotas.set('user', ADA, [{ window: 'day', maxTokens: 1000, maxCostUsd: null }]);
    await use(1000);
    expect(quotas.check(ADA, ADA_LAPTOP).ok).toBe(false);
    clock = Date.UTC(2026, 11, 1, 0, 0, 0);
    expect(quotas.check(ADA, ADA_LAPTOP).ok).toBe(true);
    expect(quotas.status('user', ADA)[0]).toMatchObject({
      usedTokens: 0,
      usedCostUsd: 0,
      resetsAt: '2026-12-02T00:00:00.000Z',
    });
  });

  it('refuses on cost as well as tokens, whichever runs out', async () => {
    quotas.set('user', ADA, [{ window: 'month', maxTokens: 10_000_000, maxCostUsd: 3 }]);
    // Requests of at most 200k input tokens, so that Sonnet 4.5 costs its base $3 a million (not the long-context rate).
    for (let i = 0; i < 5; i++) await use(199_999);
    await use(4); // 999,999 tokens: $2.999997
    expect(quotas.check(ADA, ADA_LAPTOP).ok).toBe(true);
    await use(1);
    const refused = quotas.check(ADA, ADA_LAPTOP);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.quota).toMatchObject({
      window: 'month',
      usedTokens: 1_000_000,
      resetsAt: '2026-12-01T00:00:00.000Z',
    });
    expect(refused.message).toBe(
      'Monthly cost quota of $3.00 for user ada is used up ($3.00 used); it resets at 2026-12-01T00:00:00.000Z. ' +
        'Ask your admin to raise it.',
    );
  });

  it('keeps a monthly quota across days and resets it with the calendar month', async () => {
    clock = Date.UTC(2026, 10, 1, 8, 0, 0);
    quotas.set('user', ADA, [{ window: 'month', maxTokens: 3000, maxCostUsd: null }]);
    await use(1000);
    clock = Date.UTC(2026, 10, 15, 8, 0, 0);
    await use(1000);
    clock = Date.UTC(2026, 10, 30, 23, 59, 0);
    await use(1000);
    expect(quotas.check(ADA, null).ok).toBe(false);
    clock = Date.UTC(2026, 11, 1, 0, 0, 0);
    expect(quotas.check(ADA, null).ok).toBe(true);
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 0, resetsAt: '2027-01-01T00:00:00.000Z' });
  });

  it('rolls the 5-hour window: usage leaves it 5 hours after its minute, and resetsAt says when', async () => {
    quotas.set('user', ADA, [{ window: '5h', maxTokens: 1000, maxCostUsd: null }]);
    expect(quotas.status('user', ADA)[0]!.resetsAt).toBe(new Date(clock + 5 * HOUR_MS).toISOString());
    const first = clock;
    await use(600);
    clock += 2 * HOUR_MS;
    await use(400);
    const refused = quotas.check(ADA, ADA_LAPTOP);
    expect(refused.ok).toBe(false);
    // The oldest use (at `first`) leaves once its whole minute is 5 hours old.
    const firstLeaves = first + 5 * HOUR_MS + MINUTE_MS;
    expect(!refused.ok && refused.quota.resetsAt).toBe(new Date(firstLeaves).toISOString());
    expect(!refused.ok && refused.message).toMatch(/^5-hour token quota of 1000 tokens for user ada is used up/);

    clock = firstLeaves - 1;
    expect(quotas.check(ADA, ADA_LAPTOP).ok).toBe(false);
    clock = firstLeaves;
    expect(quotas.check(ADA, ADA_LAPTOP).ok).toBe(true);
    expect(quotas.status('user', ADA)[0]).toMatchObject({
      usedTokens: 400,
      resetsAt: new Date(first + 2 * HOUR_MS + 5 * HOUR_MS + MINUTE_MS).toISOString(),
    });
    clock += 3 * HOUR_MS;
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 0, usedCostUsd: 0 });
  });

  it("applies a key's quota to that key only, and a user's quota to all their keys", async () => {
    quotas.set('key', ADA_LAPTOP, [{ window: 'day', maxTokens: 500, maxCostUsd: null }]);
    await use(500, ADA, ADA_LAPTOP);
    const refused = quotas.check(ADA, ADA_LAPTOP);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.quota.subject).toBe('key');
    expect(!refused.ok && refused.message).toMatch(
      /^Daily token quota of 500 tokens for key "laptop" \(sk_user_Ab3…\)/,
    );
    expect(quotas.check(ADA, ADA_SERVER).ok).toBe(true);

    quotas.set('user', ADA, [{ window: 'day', maxTokens: 800, maxCostUsd: null }]);
    await use(300, ADA, ADA_SERVER);
    expect(quotas.check(ADA, ADA_SERVER).ok).toBe(false);
    expect(quotas.status('user', ADA)[0]).toMatchObject({ usedTokens: 800 });
    expect(quotas.status('key', ADA_LAPTOP)[0]).toMatchObject({ usedTokens: 500 });
    expect(quotas.status('key', ADA_SERVER)).toEqual([]);
  });

  it('reads earlier usage from the database when a quota is set later or the agent restarts', async () => {
    await use(700);
    clock += 1000;
    await use(200, ADA, ADA_LAPTOP, clock - 4 * HOUR_MS);
    quotas.set('user', ADA, [
      { window: 'day', maxTokens: 5000, maxCostUsd: null },
      { window: '5h', maxTokens: 5000, maxCostUsd: null },
    ]);
    const restarted = service();
    for (const q of [quotas, restarted]) {
      expect(q.status('user', ADA).map((s) => [s.window, s.usedTokens])).toEqual([
        ['day', 900],
        ['5h', 900],
      ]);
    }
    // The restarted service saw the quota rows, and counts new usage from here on.
    const other = new UsageRecorder({ db: t.db, prices: new PriceTable(), quotas: restarted });
    await other.record(usageEvent({ startedAt: clock, inputTokens: 4100, outputTokens: 0 }));
    expect(restarted.check(ADA, null).ok).toBe(false);
  });

  it('replaces the quota list on set, and an empty list removes every quota', async () => {
    await use(2000);
    expect(
      quotas.set('user', ADA, [
        { window: 'month', maxTokens: null, maxCostUsd: 50 },
        { window: 'day', maxTokens: 1000, maxCostUsd: null },
      ]),
    ).toMatchObject([
      { window: 'day', maxTokens: 1000, usedTokens: 2000, exceeded: true },
      { window: 'month', maxCostUsd: 50, usedTokens: 2000, exceeded: false },
    ]);
    expect(quotas.set('user', ADA, [{ window: 'month', maxTokens: null, maxCostUsd: 50 }])).toHaveLength(1);
    expect(quotas.check(ADA, ADA_LAPTOP).ok).toBe(true);
    expect(quotas.set('user', ADA, [])).toEqual([]);
    expect(service().status('user', ADA)).toEqual([]);
  });
});
