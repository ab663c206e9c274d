import { describe, expect, it } from 'vitest';
import { formatRelative, formatTokens, formatUsd } from '../../../src/renderer/src/lib/format';

describe('figures as the admin reads them', () => {
  it('shows small costs with enough digits to tell them apart, and cents from a dollar up', () => {
    expect([0, 0.0109, 0.008, 0.002, 0.5, 0.00001, 1234.5].map(formatUsd)).toEqual([
      '$0.00',
      '$0.0109',
      '$0.008',
      '$0.002',
      '$0.50',
      '<$0.0001',
      '$1,234.50',
    ]);
  });

  it('groups token counts and shortens millions', () => {
    expect([2700, 1_234_567, 3_000_000_000].map(formatTokens)).toEqual(['2,700', '1.23M', '3.00B']);
  });

  it('says how long ago or how soon, and never for no time', () => {
    const now = Date.parse('2026-03-10T12:00:00Z');
    expect(formatRelative(null, now)).toBe('never');
    expect(formatRelative('2026-03-10T11:59:30Z', now)).toBe('just now');
    expect(formatRelative('2026-03-10T11:55:00Z', now)).toBe('5 min ago');
    expect(formatRelative('2026-03-10T15:00:00Z', now)).toBe('in 3 h');
    expect(formatRelative('2026-03-07T12:00:00Z', now)).toBe('3 days ago');
  });
});
