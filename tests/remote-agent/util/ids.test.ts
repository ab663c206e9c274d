import { describe, expect, it } from 'vitest';
import { randomId } from '../../../remote-agent/src/util/ids.js';

describe('randomId', () => {
  it('makes ids of 10 lowercase letters and digits, as slot ids and PM2 names expect', () => {
    for (let i = 0; i < 1000; i++) expect(randomId()).toMatch(/^[a-z0-9]{10}$/);
  });

  it('never repeats an id in 10,000 draws', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => randomId()));
    expect(ids.size).toBe(10_000);
  });

  it('uses every letter and digit, each about equally often', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) for (const char of randomId()) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect(counts.size).toBe(36);
    // 100,000 characters over 36 symbols: about 2,778 each. A modulo bias would push the first four to about 3,100.
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(2450);
      expect(count).toBeLessThan(3100);
    }
  });

  it('makes ids of other lengths on request', () => {
    expect(randomId(32)).toMatch(/^[a-z0-9]{32}$/);
    expect(randomId(1)).toMatch(/^[a-z0-9]$/);
  });
});
