import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

const MODEL = 'claude-sonnet-4-6';
/** Sonnet 4.6: $3 per million input tokens, $15 per million output; web search $10 per 1,000 searches. */
const sonnetCost = (input: number, output: number): number => (input * 3 + output * 15) / 1e6;

describe('costs beyond tokens (fake upstream stand-in)', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await startHarness();
    url = await h.listen();
  });
  afterAll(() => h.close());

  async function send(secret: string, text: string, stream: boolean): Promise<Response> {
    const response = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': secret, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        max_tokens: 64,
        stream,
        tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }],
        messages: [{ role: 'user', content: text }],
      }),
    });
    await response.text();
    return response;
  }

  it.each([
    ['a JSON answer', false],
    ['a stream (searches reported with message_delta)', true],
  ])('prices the web searches of %s into the recorded cost', async (_what, stream) => {
    const { created } = h.newKey();
    const rows = h.rows().length;
    const response = await send(created.secret, 'look it up !usage in=1000 out=200 cw=0 cr=0 !search 3', stream);
    expect(response.status).toBe(200);
    await expect.poll(() => h.rows().length).toBe(rows + 1);
    const row = h.rows()[rows]!;
    expect(row).toMatchObject({ status: 'success', input_tokens: 1000, output_tokens: 200 });
    expect(row.cost_usd).toBeCloseTo(sonnetCost(1000, 200) + 0.03, 12);
  });

  it('refuses the next request once web searches used up a cost quota that tokens alone would not', async () => {
    const { userId, created } = h.newKey();
    // Tokens of one request cost $0.006; its 5 searches $0.05 fill the $0.05 budget.
    h.setQuotas('user', userId, [{ window: 'day', maxTokens: null, maxCostUsd: 0.05 }]);
    const first = await send(created.secret, 'search a lot !usage in=1000 out=200 cw=0 cr=0 !search 5', true);
    expect(first.status).toBe(200);
    await expect.poll(() => h.quotas.status('user', userId)[0]!.exceeded).toBe(true);
    const second = await send(created.secret, 'again !usage in=1000 out=200 cw=0 cr=0', true);
    expect(second.status).toBe(429);
  });

  it('logs a request upstream served on a non-standard service tier, whose premium the price table does not know', async () => {
    const { created } = h.newKey();
    const response = await send(created.secret, 'quick !tier priority', false);
    expect(response.status).toBe(200);
    await expect
      .poll(() => h.logs.some((line) => line.includes('"serviceTier":"priority"') && line.includes('service tier')))
      .toBe(true);
    expect(h.logs.some((line) => line.includes('"serviceTier":"standard"'))).toBe(false);
  });
});
