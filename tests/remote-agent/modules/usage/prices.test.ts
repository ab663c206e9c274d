import { describe, expect, it } from 'vitest';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';

const tokens = (inputTokens: number, outputTokens: number, cacheCreationTokens = 0, cacheReadTokens = 0) => ({
  inputTokens,
  outputTokens,
  cacheCreationTokens,
  cacheReadTokens,
});

describe('PriceTable', () => {
  const prices = new PriceTable();

  it('prices input and output tokens at the list price per million tokens', () => {
    expect(prices.cost('claude-sonnet-4-5-20250929', tokens(100_000, 0))).toBeCloseTo(0.3, 10);
    expect(prices.cost('claude-sonnet-4-5-20250929', tokens(0, 1_000_000))).toBeCloseTo(15, 10);
    expect(prices.cost('claude-sonnet-4-6', tokens(1_000_000, 0))).toBeCloseTo(3, 10);
    expect(prices.cost('claude-opus-4-1-20250805', tokens(2000, 1000))).toBeCloseTo(0.03 + 0.075, 10);
    expect(prices.cost('claude-haiku-4-5', tokens(1_000_000, 1_000_000))).toBeCloseTo(6, 10);
    expect(prices.cost('claude-3-5-haiku-20241022', tokens(1_000_000, 1_000_000))).toBeCloseTo(4.8, 10);
    expect(prices.cost('claude-3-7-sonnet-20250219', tokens(1_000_000, 0))).toBeCloseTo(3, 10);
  });

  it('prices cache writes and cache reads at their own rates', () => {
    // Opus 4.5: cache write 6.25, cache read 0.5 per million.
    expect(prices.cost('claude-opus-4-5-20251101', tokens(0, 0, 1_000_000, 0))).toBeCloseTo(6.25, 10);
    expect(prices.cost('claude-opus-4-5-20251101', tokens(0, 0, 0, 1_000_000))).toBeCloseTo(0.5, 10);
    // All four kinds at once on Sonnet 4: 3 + 15 + 3.75 + 0.3 for a million of each (50k each here).
    expect(prices.cost('claude-sonnet-4-20250514', tokens(5e4, 5e4, 5e4, 5e4))).toBeCloseTo(22.05 / 20, 10);
  });

  it('uses the longest matching prefix: Opus 4.5 is not priced as Opus 4', () => {
    expect(prices.cost('claude-opus-4-20250514', tokens(1_000_000, 0))).toBeCloseTo(15, 10);
    expect(prices.cost('claude-opus-4-5-20251101', tokens(1_000_000, 0))).toBeCloseTo(5, 10);
    expect(prices.cost('claude-opus-4-6', tokens(1_000_000, 0))).toBeCloseTo(5, 10);
  });

  it('costs nothing for a model without a price, and says so', () => {
    expect(prices.price('gpt-4o')).toBeNull();
    expect(prices.cost('gpt-4o', tokens(1_000_000, 1_000_000, 5, 5))).toBe(0);
  });

  it('lets the configuration add models and override built-in prices', () => {
    const configured = new PriceTable({
      'claude-sonnet-4-5': { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2 },
      'my-model': { input: 1, output: 1, cacheWrite: 0, cacheRead: 0 },
    });
    expect(configured.cost('claude-sonnet-4-5-20250929', tokens(1_000_000, 1_000_000))).toBeCloseTo(12, 10);
    // Other Sonnet 4 models keep the built-in price.
    expect(configured.cost('claude-sonnet-4-20250514', tokens(100_000, 0))).toBeCloseTo(0.3, 10);
    expect(configured.cost('my-model-v2', tokens(500_000, 500_000))).toBeCloseTo(1, 10);
  });

  it('prices 1-hour cache writes at twice the input price and 5-minute writes at 1.25 times', () => {
    // Sonnet 4.6: input $3, so 5-minute writes $3.75 and 1-hour writes $6 per million.
    const mixed = { ...tokens(0, 0, 100_000, 0), cacheCreation1hTokens: 40_000 };
    expect(prices.cost('claude-sonnet-4-6', mixed)).toBeCloseTo((60_000 * 3.75 + 40_000 * 6) / 1e6, 12);
    // Opus 4.5 from the table: $10 per million 1-hour writes; Haiku 3.5: $1.6.
    const oneHour = { ...tokens(0, 0, 1_000_000, 0), cacheCreation1hTokens: 1_000_000 };
    expect(prices.cost('claude-opus-4-5-20251101', oneHour)).toBeCloseTo(10, 10);
    expect(prices.cost('claude-3-5-haiku-20241022', oneHour)).toBeCloseTo(1.6, 10);
    // A configured price without cacheWrite1h gets Anthropic's 2x input.
    const configured = new PriceTable({ mine: { input: 4, output: 8, cacheWrite: 5, cacheRead: 0.4 } });
    expect(configured.cost('mine', oneHour)).toBeCloseTo(8, 10);
  });

  it('prices Sonnet 4 and 4.5 requests above 200k input tokens, cache included, at the long-context rate', () => {
    // 200,000 tokens of prompt is the base tier; one more (input + cache writes + cache reads) is the premium one.
    expect(prices.cost('claude-sonnet-4-5-20250929', tokens(150_000, 10_000, 0, 50_000))).toBeCloseTo(
      (150_000 * 3 + 10_000 * 15 + 50_000 * 0.3) / 1e6,
      12,
    );
    expect(prices.cost('claude-sonnet-4-5-20250929', tokens(150_000, 10_000, 1, 50_000))).toBeCloseTo(
      (150_000 * 6 + 10_000 * 22.5 + 1 * 7.5 + 50_000 * 0.6) / 1e6,
      12,
    );
    expect(
      prices.cost('claude-sonnet-4-20250514', { ...tokens(0, 0, 300_000, 0), cacheCreation1hTokens: 300_000 }),
    ).toBeCloseTo((300_000 * 12) / 1e6, 12);
    // Sonnet 4.6 and Haiku have no such tier.
    expect(prices.cost('claude-sonnet-4-6', tokens(1_000_000, 1_000_000))).toBeCloseTo(18, 10);
    expect(prices.cost('claude-haiku-4-5', tokens(1_000_000, 0))).toBeCloseTo(1, 10);
  });

  it('takes a long-context tier from the configuration too', () => {
    const configured = new PriceTable({
      big: {
        input: 1,
        output: 2,
        cacheWrite: 1.25,
        cacheRead: 0.1,
        longContext: { aboveInputTokens: 1000, input: 10, output: 20, cacheWrite: 12.5, cacheRead: 1 },
      },
    });
    expect(configured.cost('big', tokens(1000, 1000))).toBeCloseTo(0.003, 12);
    expect(configured.cost('big', tokens(1001, 1000))).toBeCloseTo((1001 * 10 + 1000 * 20) / 1e6, 12);
  });

  it('prices models no prefix matches at the configured "*" price', () => {
    const withDefault = new PriceTable({ '*': { input: 20, output: 100, cacheWrite: 25, cacheRead: 2 } });
    expect(withDefault.cost('claude-next-1', tokens(1_000_000, 0))).toBeCloseTo(20, 10);
    // Known models keep their own price; "*" is no prefix of anything.
    expect(withDefault.cost('claude-haiku-4-5', tokens(1_000_000, 0))).toBeCloseTo(1, 10);
    expect(withDefault.price('*weird')).toBe(withDefault.price('other'));
  });

  it('lists the models used without a price, each once and bounded, until they get one', () => {
    const table = new PriceTable();
    expect(table.noteUnpriced('gpt-4o')).toBe(true);
    expect(table.noteUnpriced('gpt-4o')).toBe(false);
    for (let i = 0; i < 500; i++) table.noteUnpriced(`made-up-${i}`);
    expect(table.unpricedModels()).toContain('gpt-4o');
    expect(table.unpricedModels().length).toBeLessThanOrEqual(50);
  });
});
