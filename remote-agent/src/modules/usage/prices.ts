import type { ModelPrice } from '../../config.js';

export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
}

const price = (input: number, output: number, cacheWrite: number, cacheRead: number): ModelPrice => ({
  input,
  output,
  cacheWrite,
  cacheRead,
});

const OPUS_4 = price(15, 75, 18.75, 1.5);
const OPUS_4_5 = price(5, 25, 6.25, 0.5);
const SONNET = price(3, 15, 3.75, 0.3);

/**
 * Anthropic's list prices in USD per million tokens, by model id prefix (cache writes are the 5-minute kind).
 * `claude-opus-4-6` is listed because the shorter `claude-opus-4` prefix would price it at Opus 4's far higher rate.
 */
export const BUILT_IN_PRICES: Readonly<Record<string, ModelPrice>> = {
  'claude-opus-4': OPUS_4,
  'claude-opus-4-1': OPUS_4,
  'claude-opus-4-5': OPUS_4_5,
  'claude-opus-4-6': OPUS_4_5,
  'claude-opus-4-7': OPUS_4_5,
  'claude-opus-4-8': OPUS_4_5,
  'claude-sonnet-4': SONNET,
  'claude-sonnet-4-5': SONNET,
  'claude-3-7-sonnet': SONNET,
  'claude-haiku-4-5': price(1, 5, 1.25, 0.1),
  'claude-3-5-haiku': price(0.8, 4, 1, 0.08),
};

/** Prices per model id prefix, the configured ones over the built-in table; the longest matching prefix wins. */
export class PriceTable {
  private readonly prefixes: Array<[string, ModelPrice]>;
  /** Model ids seen on requests are few: each is resolved once. */
  private readonly resolved = new Map<string, ModelPrice | null>();

  constructor(configured: Record<string, ModelPrice> = {}) {
    this.prefixes = Object.entries({ ...BUILT_IN_PRICES, ...configured }).sort((a, b) => b[0].length - a[0].length);
  }

  /** The price of a model, or null when no prefix matches (its usage is metered in tokens at cost 0). */
  price(model: string): ModelPrice | null {
    let found = this.resolved.get(model);
    if (found === undefined) {
      found = this.prefixes.find(([prefix]) => model.startsWith(prefix))?.[1] ?? null;
      // Clients choose the model string: bound the cache so that made-up names cannot grow it without end.
      if (this.resolved.size < 10_000) this.resolved.set(model, found);
    }
    return found;
  }

  /** Cost in USD of one request's tokens; 0 for a model without a price. */
  cost(model: string, tokens: TokenCounts): number {
    const p = this.price(model);
    if (!p) return 0;
    return (
      (tokens.inputTokens * p.input +
        tokens.outputTokens * p.output +
        tokens.cacheCreationTokens * p.cacheWrite +
        tokens.cacheReadTokens * p.cacheRead) /
      1_000_000
    );
  }
}
