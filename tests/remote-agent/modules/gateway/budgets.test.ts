/**
 * Quotas under parallel load: each request reserves what it may use when it is admitted, so that requests sent
 * together cannot each see the same unspent budget. Real gateway, SQLite and recorder; the fake upstream (a
 * stand-in for Anthropic) answers after a pause, so that every request is admitted before any usage is known.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

const MODEL = 'claude-sonnet-4-6';
/** Sonnet 4.x list prices, USD per token. */
const sonnetCost = (input: number, output: number): number => (input * 3 + output * 15) / 1e6;
const PATIENCE_MS = 10_000;

interface Sent {
  status: number;
  code: string | null;
}

describe('budgets under parallel requests (stand-in upstream)', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness({ config: { upstreamTimeoutMs: 1500 } });
    url = await h.listen();
  });
  afterAll(() => h.close());

  /** A key whose rate limits never get in the way of `parallel` requests at once. */
  const roomyKey = () => h.newKey({ rateLimit: { requestsPerMinute: 10_000, concurrentStreams: 1000 } });

  async function send(secret: string, body: unknown, signal?: AbortSignal): Promise<Sent> {
    const response = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': secret, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    const text = await response.text();
    const code = response.ok ? null : ((JSON.parse(text) as { code?: string }).code ?? null);
    return { status: response.status, code };
  }

  /** Waits until every request of the user is settled: nothing held, every answered request on record. */
  async function settled(userId: string, rows: number): Promise<void> {
    await expect.poll(() => h.rows().length, { timeout: PATIENCE_MS }).toBe(rows);
    await expect
      .poll(() => h.quotas.pendingOf('user', userId), { timeout: PATIENCE_MS })
      .toEqual({ tokens: 0, cost: 0 });
  }

  it.each([
    [10, false],
    [10, true],
    [50, false],
    [50, true],
  ])(
    '%i parallel requests (stream: %s) stay within a 100-token day quota but for one request',
    async (parallel, stream) => {
      const { userId, created } = roomyKey();
      h.setQuotas('user', userId, [{ window: 'day', maxTokens: 100, maxCostUsd: null }]);
      const rowsBefore = h.rows().length;
      // 45 tokens each (25 input, 12 output, 3 + 5 cache); the pause keeps every answer back until all are admitted.
      const body = {
        model: MODEL,
        max_tokens: 64,
        stream,
        messages: [{ role: 'user', content: '!usage in=25 out=12 cw=3 cr=5 !wait 400' }],
      };
      const results = await Promise.all(Array.from({ length: parallel }, () => send(created.secret, body)));
      const passed = results.filter((r) => r.status === 200).length;
      expect(passed).toBeGreaterThanOrEqual(1);
      expect(
        results.filter((r) => r.status !== 200).every((r) => r.status === 429 && r.code === 'GATEWAY_QUOTA_EXCEEDED'),
      ).toBe(true);
      await settled(userId, rowsBefore + passed);
      const [day] = h.quotas.status('user', userId);
      // Without reservations every request was admitted: 10 × 45 = 450 tokens against a budget of 100.
      expect(day!.usedTokens).toBeLessThanOrEqual(100 + 45);
      expect(day!.usedTokens).toBe(passed * 45);
    },
  );

  it('holds a cost quota the same way, pricing each reservation', async () => {
    const { userId, created } = roomyKey();
    h.setQuotas('user', userId, [{ window: 'month', maxTokens: null, maxCostUsd: 0.01 }]);
    const rowsBefore = h.rows().length;
    // A 1000-token prompt is some 4000 bytes of text; 100 tokens of output of at most 200.
    const body = {
      model: MODEL,
      max_tokens: 200,
      messages: [{ role: 'user', content: `${'word '.repeat(800)} !usage in=1000 out=100 cw=0 cr=0 !wait 400` }],
    };
    const results = await Promise.all(Array.from({ length: 10 }, () => send(created.secret, body)));
    const passed = results.filter((r) => r.status === 200).length;
    await settled(userId, rowsBefore + passed);
    const [month] = h.quotas.status('user', userId);
    // Without reservations: 10 × $0.0045 = $0.045 against a budget of $0.01.
    expect(month!.usedCostUsd).toBeLessThanOrEqual(0.01 + sonnetCost(1000, 100) + 1e-9);
    expect(results.some((r) => r.code === 'GATEWAY_QUOTA_EXCEEDED')).toBe(true);
  });

  it('admits a request near the end of a budget, reserving only what is left', async () => {
    const { userId, created } = roomyKey();
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: 60, maxCostUsd: null }]);
    // max_tokens 4096 would not fit in 60 tokens: the request still goes, and takes the rest of the budget.
    const result = await send(created.secret, {
      model: MODEL,
      max_tokens: 4096,
      messages: [{ role: 'user', content: '!usage in=20 out=10 cw=0 cr=0' }],
    });
    expect(result.status).toBe(200);
    await expect
      .poll(() => h.quotas.pendingOf('user', userId), { timeout: PATIENCE_MS })
      .toEqual({ tokens: 0, cost: 0 });
    expect(h.quotas.status('user', userId)[0]).toMatchObject({ usedTokens: 30, exceeded: false });
  });

  describe('releases what a request reserved on every way it ends', () => {
    /** A user with a 200-token budget, whose every request reserves most of it (max_tokens 150). */
    function tightUser() {
      const { userId, created } = roomyKey();
      h.setQuotas('user', userId, [{ window: 'day', maxTokens: 200, maxCostUsd: null }]);
      const ask = (text: string, stream = false) => ({
        model: MODEL,
        max_tokens: 150,
        stream,
        messages: [{ role: 'user', content: text }],
      });
      /** The budget is free again: nothing held, and a request that needs most of it is admitted. */
      const free = async (): Promise<void> => {
        await expect
          .poll(() => h.quotas.pendingOf('user', userId), { timeout: PATIENCE_MS })
          .toEqual({ tokens: 0, cost: 0 });
        expect((await send(created.secret, ask('!usage in=1 out=1 cw=0 cr=0'))).status).toBe(200);
      };
      return { userId, created, ask, free };
    }

    it('an upstream error', async () => {
      const user = tightUser();
      expect((await send(user.created.secret, user.ask('!error 529 overloaded_error'))).status).toBe(529);
      await user.free();
    });

    it('an upstream that does not answer in time', async () => {
      const user = tightUser();
      expect((await send(user.created.secret, user.ask('!hang'))).status).toBe(504);
      await user.free();
    });

    it('a client that leaves a stream', async () => {
      const user = tightUser();
      const abort = new AbortController();
      const response = await fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': user.created.secret, 'content-type': 'application/json' },
        body: JSON.stringify(user.ask('!usage in=5 out=5 cw=0 cr=0 !slow 200', true)),
        signal: abort.signal,
      });
      await response.body!.getReader().read();
      abort.abort();
      await user.free();
    });

    it('a client that leaves before upstream answered', async () => {
      const user = tightUser();
      const before = h.upstream!.requests.length;
      const abort = new AbortController();
      const sent = send(user.created.secret, user.ask('!usage in=5 out=5 cw=0 cr=0 !wait 300'), abort.signal).catch(
        (error: unknown) => error,
      );
      await expect.poll(() => h.upstream!.requests.length, { timeout: PATIENCE_MS }).toBe(before + 1);
      abort.abort();
      expect(await sent).toBeInstanceOf(Error);
      await user.free();
    });
  });
});
