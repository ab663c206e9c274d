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
    expect(prices.cost('claude-sonnet-4-5-20250929', tokens(1_000_000, 0))).toBeCloseTo(3, 10);
    expect(prices.cost('claude-sonnet-4-5-20250929', tokens(0, 1_000_000))).toBeCloseTo(15, 10);
    expect(prices.cost('claude-opus-4-1-20250805', tokens(2000, 1000))).toBeCloseTo(0.03 + 0.075, 10);
    expect(prices.cost('claude-haiku-4-5', tokens(1_000_000, 1_000_000))).toBeCloseTo(6, 10);
    expect(prices.cost('claude-3-5-haiku-20241022', tokens(1_000_000, 1_000_000))).toBeCloseTo(4.8, 10);
    expect(prices.cost('claude-3-7-sonnet-20250219', tokens(1_000_000, 0))).toBeCloseTo(3, 10);
  });

  it('prices cache writes and cache reads at their own rates', () => {
    // Opus 4.5: cache write 6.25, cache read 0.5 per million.
    expect(prices.cost('claude-opus-4-5-20251101', tokens(0, 0, 1_000_000, 0))).toBeCloseTo(6.25, 10);
    expect(prices.cost('claude-opus-4-5-20251101', tokens(0, 0, 0, 1_000_000))).toBeCloseTo(0.5, 10);
    // All four kinds at once on Sonnet 4: 3 + 15 + 3.75 + 0.3 for a million of each.
    expect(prices.cost('claude-sonnet-4-20250514', tokens(1e6, 1e6, 1e6, 1e6))).toBeCloseTo(22.05, 10);
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
    expect(configured.cost('claude-sonnet-4-20250514', tokens(1_000_000, 0))).toBeCloseTo(3, 10);
    expect(configured.cost('my-model-v2', tokens(500_000, 500_000))).toBeCloseTo(1, 10);
  });
});
