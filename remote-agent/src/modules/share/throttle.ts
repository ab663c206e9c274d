/** A token bucket per key, in memory: `burst` tries at once, then one more every `refillMs`. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly now: () => number = Date.now,
    /** Most keys kept; the oldest are forgotten beyond it (a full bucket is what a forgotten key gets back). */
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one token for `key`: 0 when allowed, else the milliseconds until the next token. */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    const refilled = Math.min(this.burst, bucket.tokens + (now - bucket.at) / this.refillMs);
    this.buckets.delete(key);
    if (refilled < 1) {
      this.buckets.set(key, { tokens: refilled, at: now });
      return Math.ceil((1 - refilled) * this.refillMs);
    }
    this.buckets.set(key, { tokens: refilled - 1, at: now });
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    return 0;
  }
}

/** At most one `true` per key per `intervalMs` (the audit log's failure rows for one share and address). */
export class OncePer {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {}

  allow(key: string): boolean {
    const now = this.now();
    const at = this.last.get(key);
    if (at !== undefined && now - at < this.intervalMs) return false;
    this.last.delete(key);
    this.last.set(key, now);
    if (this.last.size > this.maxKeys) this.last.delete(this.last.keys().next().value!);
    return true;
  }
}
