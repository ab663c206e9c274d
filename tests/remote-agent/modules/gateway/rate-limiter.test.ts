import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../../remote-agent/src/modules/gateway/rate-limiter.js';

describe('RateLimiter', () => {
  it('lets a burst of the per-minute limit through, then refuses with the wait until the next request', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(() => now);
    const decisions = Array.from({ length: 4 }, () => limiter.take('k1', 3));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0]);
    // 3 a minute: one request comes back every 20 s.
    expect(decisions[3]!.retryAfterSeconds).toBe(20);
    expect(decisions[3]!.resetAt).toBe(Math.ceil((now + 60_000) / 1000));
    now += 20_000;
    expect(limiter.take('k1', 3).allowed).toBe(true);
    expect(limiter.take('k1', 3).allowed).toBe(false);
  });

  it('keeps keys apart', () => {
    const limiter = new RateLimiter(() => 0);
    expect(limiter.take('a', 1).allowed).toBe(true);
    expect(limiter.take('a', 1).allowed).toBe(false);
    expect(limiter.take('b', 1).allowed).toBe(true);
  });

  it('applies a lowered limit at once: the bucket never holds more than the new allowance', () => {
    const limiter = new RateLimiter(() => 0);
    limiter.take('a', 100);
    const passed = Array.from({ length: 5 }, () => limiter.take('a', 2)).filter((d) => d.allowed);
    expect(passed).toHaveLength(2);
    expect(passed[0]!.limit).toBe(2);
  });

  it('counts concurrent streams and frees one when released, once', () => {
    const limiter = new RateLimiter();
    const first = limiter.openStream('k', 2);
    const second = limiter.openStream('k', 2);
    expect(first).not.toBeNull();
    expect(second).not.toBeNull();
    expect(limiter.openStream('k', 2)).toBeNull();
    first!();
    first!();
    expect(limiter.openStreams('k')).toBe(1);
    expect(limiter.openStream('k', 2)).not.toBeNull();
  });
});
