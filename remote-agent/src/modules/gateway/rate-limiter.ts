/**
 * Per-key request rate (a token bucket holding a minute's allowance, refilled continuously, so a client may burst up
 * to its per-minute limit and then runs at the steady rate) and concurrent streams. State lives in memory: limits
 * protect the upstream account from one runaway client, and a restart that forgets a minute of history is harmless.
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  /** Whole requests left right now. */
  remaining: number;
  /** Epoch seconds at which the bucket is full again. */
  resetAt: number;
  /** Seconds to wait before the next request can pass (when refused). */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  limit: number;
}

/** Buckets untouched for this long are full again and can be forgotten. */
const IDLE_MS = 60_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly streams = new Map<string, number>();
  private sweptAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes one request from the key's bucket, or says how long to wait. */
  take(subject: string, perMinute: number, now = this.now()): RateDecision {
    this.sweep(now);
    const ratePerMs = perMinute / 60_000;
    let bucket = this.buckets.get(subject);
    if (!bucket) {
      bucket = { tokens: perMinute, updatedAt: now, limit: perMinute };
      this.buckets.set(subject, bucket);
    } else {
      // A changed limit applies at once; the bucket never holds more than the new allowance.
      if (bucket.limit !== perMinute) bucket.limit = perMinute;
      bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updatedAt) * ratePerMs);
      bucket.updatedAt = now;
    }
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    const missingForFull = perMinute - bucket.tokens;
    return {
      allowed,
      limit: perMinute,
      remaining: Math.max(0, Math.floor(bucket.tokens)),
      resetAt: Math.ceil((now + missingForFull / ratePerMs) / 1000),
      // Whole seconds, at most a minute: Claude Code gives up on a Retry-After above 60 s.
      retryAfterSeconds: allowed ? 0 : Math.min(60, Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000))),
    };
  }

  /** The key's bucket as it stands, without taking a request from it (for the headers of routes that take none). */
  peek(subject: string, perMinute: number, now = this.now()): RateDecision {
    const bucket = this.buckets.get(subject);
    const ratePerMs = perMinute / 60_000;
    const tokens = bucket ? Math.min(perMinute, bucket.tokens + (now - bucket.updatedAt) * ratePerMs) : perMinute;
    return {
      allowed: tokens >= 1,
      limit: perMinute,
      remaining: Math.max(0, Math.floor(tokens)),
      resetAt: Math.ceil((now + (perMinute - tokens) / ratePerMs) / 1000),
      retryAfterSeconds: 0,
    };
  }

  /** Claims one of the key's concurrent streams; returns the release function, or null when all are in use. */
  openStream(subject: string, max: number): (() => void) | null {
    const open = this.streams.get(subject) ?? 0;
    if (open >= max) return null;
    this.streams.set(subject, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.streams.get(subject) ?? 1) - 1;
      if (left <= 0) this.streams.delete(subject);
      else this.streams.set(subject, left);
    };
  }

  openStreams(subject: string): number {
    return this.streams.get(subject) ?? 0;
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < IDLE_MS) return;
    this.sweptAt = now;
    for (const [subject, bucket] of this.buckets) {
      if (now - bucket.updatedAt > IDLE_MS) this.buckets.delete(subject);
    }
  }
}
