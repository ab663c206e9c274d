import type { ModelPrice } from '../../config.js';

export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  /** All cache writes, both kinds. */
  cacheCreationTokens: number;
  cacheReadTokens: number;
  /** The part of cacheCreationTokens written to the 1-hour cache (usage.cache_creation.ephemeral_1h_input_tokens). */
  cacheCreation1hTokens?: number;
  /** Server-side web searches upstream ran (usage.server_tool_use.web_search_requests), billed per search. */
  webSearchRequests?: number;
}

/**
 * Anthropic bills its web search tool per search on top of tokens: $10 per 1,000, the same for every model. Web fetch
 * has no fee of its own (its content is billed as input tokens, which usage already counts).
 */
export const WEB_SEARCH_USD_PER_REQUEST = 10 / 1000;

/** The key of `gateway.prices` that prices every model no prefix matches. */
export const DEFAULT_PRICE_KEY = '*';

/** Anthropic's multipliers on the base input price: 5-minute cache writes 1.25x, 1-hour 2x, cache reads 0.1x. */
const price = (input: number, output: number, extra: Partial<ModelPrice> = {}): ModelPrice => ({
  input,
  output,
  cacheWrite: input * 1.25,
  cacheRead: input * 0.1,
  cacheWrite1h: input * 2,
  ...extra,
});

/** Sonnet 4 and 4.5 above 200k input tokens: input 2x, output 1.5x, the cache multipliers on the doubled input. */
const SONNET_LONG_CONTEXT = { aboveInputTokens: 200_000, ...price(6, 22.5) };

const OPUS_4 = price(15, 75);
const OPUS_4_5 = price(5, 25);
const SONNET = price(3, 15);
const SONNET_4 = price(3, 15, { longContext: SONNET_LONG_CONTEXT });

/**
 * Anthropic's list prices in USD per million tokens, by model id prefix (platform.claude.com/docs/en/about-claude/
 * pricing). `claude-opus-4-5` and later are listed because the shorter `claude-opus-4` prefix would price them at
 * Opus 4's far higher rate; `claude-sonnet-4-6` because `claude-sonnet-4` would give it Sonnet 4's long-context tier.
 */
export const BUILT_IN_PRICES: Readonly<Record<string, ModelPrice>> = {
  'claude-opus-4': OPUS_4,
  'claude-opus-4-1': OPUS_4,
  'claude-opus-4-5': OPUS_4_5,
  'claude-opus-4-6': OPUS_4_5,
  'claude-opus-4-7': OPUS_4_5,
  'claude-opus-4-8': OPUS_4_5,
  'claude-sonnet-4': SONNET_4,
  'claude-sonnet-4-5': SONNET_4,
  'claude-sonnet-4-6': SONNET,
  'claude-3-7-sonnet': SONNET,
  'claude-haiku-4-5': price(1, 5),
  'claude-3-5-haiku': price(0.8, 4),
};

/** How many unpriced model names are kept for the admin (clients choose model strings: the list is bounded). */
const UNPRICED_LIMIT = 50;

/**
 * Prices per model id prefix, the configured ones over the built-in table; the longest matching prefix wins, and the
 * configured "*" price (if any) covers every other model.
 */
export class PriceTable {
  private readonly prefixes: Array<[string, ModelPrice]>;
  private readonly fallback: ModelPrice | null;
  /** Model ids seen on requests are few: each is resolved once. */
  private readonly resolved = new Map<string, ModelPrice | null>();
  private readonly unpriced = new Set<string>();

  constructor(configured: Record<string, ModelPrice> = {}) {
    const { [DEFAULT_PRICE_KEY]: fallback, ...byPrefix } = configured;
    this.fallback = fallback ?? null;
    this.prefixes = Object.entries({ ...BUILT_IN_PRICES, ...byPrefix }).sort((a, b) => b[0].length - a[0].length);
  }

  /** The price of a model, or null when no prefix matches and no default price is configured. */
  price(model: string): ModelPrice | null {
    let found = this.resolved.get(model);
    if (found === undefined) {
      found = this.prefixes.find(([prefix]) => model.startsWith(prefix))?.[1] ?? this.fallback;
      // Clients choose the model string: bound the cache so that made-up names cannot grow it without end.
      if (this.resolved.size < 10_000) this.resolved.set(model, found);
    }
    return found;
  }

  /** Cost in USD of one request's tokens (0 for a model without a price) and of its web searches. */
  cost(model: string, tokens: TokenCounts): number {
    const searches = (tokens.webSearchRequests ?? 0) * WEB_SEARCH_USD_PER_REQUEST;
    const p = this.price(model);
    if (!p) return searches;
    const promptTokens = tokens.inputTokens + tokens.cacheCreationTokens + tokens.cacheReadTokens;
    const tier = p.longContext && promptTokens > p.longContext.aboveInputTokens ? p.longContext : p;
    const oneHour = Math.min(tokens.cacheCreation1hTokens ?? 0, tokens.cacheCreationTokens);
    return (
      (tokens.inputTokens * tier.input +
        tokens.outputTokens * tier.output +
        (tokens.cacheCreationTokens - oneHour) * tier.cacheWrite +
        oneHour * (tier.cacheWrite1h ?? tier.input * 2) +
        tokens.cacheReadTokens * tier.cacheRead) /
        1_000_000 +
      searches
    );
  }

  /** Notes a model that was used without a price; true the first time (so that it is logged once). */
  noteUnpriced(model: string): boolean {
    const name = model.slice(0, 200);
    if (this.unpriced.has(name) || this.unpriced.size >= UNPRICED_LIMIT) return false;
    this.unpriced.add(name);
    return true;
  }

  /** Models used without a price since the agent started, for the admin to price. */
  unpricedModels(): string[] {
    return [...this.unpriced].filter((model) => this.price(model) === null);
  }
}
