import { describe, expect, it } from 'vitest';
import { expiryFromDays } from '../../src/portal/app/pages/Keys';
import { totpSecret } from '../../src/portal/app/pages/Settings';
import { parseOrigins } from '../../src/portal/app/pages/ShareSlot';
import { githubErrorMessage } from '../../src/portal/app/pages/SignIn';
import { slotActions } from '../../src/portal/app/pages/Slots';
import { effectiveTheme } from '../../src/portal/app/theme';
import { barPercent, dailyTotals, formatTokens, formatUsd, lastDays } from '../../src/portal/app/usage-math';

describe('portal page logic', () => {
  it('offers start for stopped and failed slots, stop and restart for running ones', () => {
    expect(slotActions('stopped')).toEqual(['start']);
    expect(slotActions('failed')).toEqual(['start']);
    expect(slotActions('running')).toEqual(['stop', 'restart']);
    expect(slotActions('starting')).toEqual(['stop']);
  });

  it('sums usage per UTC day over the whole range, days without usage at zero', () => {
    const { from, to } = lastDays(3, new Date('2026-12-01T15:00:00Z'));
    expect(from.toISOString()).toBe('2026-11-29T00:00:00.000Z');
    expect(to.toISOString()).toBe('2026-12-02T00:00:00.000Z');
    const rows = dailyTotals(
      [
        { bucketStart: '2026-11-29T00:00:00.000Z', totals: { totalTokens: 100, costUsd: 0.5 } },
        { bucketStart: '2026-11-29T00:00:00.000Z', totals: { totalTokens: 50, costUsd: 0.25 } },
        { bucketStart: '2026-12-01T00:00:00.000Z', totals: { totalTokens: 10, costUsd: 0.01 } },
      ],
      from,
      to,
    );
    expect(rows).toEqual([
      { day: '2026-11-29', tokens: 150, costUsd: 0.75 },
      { day: '2026-11-30', tokens: 0, costUsd: 0 },
      { day: '2026-12-01', tokens: 10, costUsd: 0.01 },
    ]);
    expect(barPercent(0.75, 0.75)).toBe(100);
    expect(barPercent(5, 0)).toBe(0);
    expect(formatTokens(1_234_567)).toBe('1.2M');
    expect(formatUsd(0.01)).toBe('$0.0100');
    expect(formatUsd(0)).toBe('$0');
  });

  it('shows the secret of an otpauth URI for typing, and GitHub failures in words', () => {
    expect(totpSecret('otpauth://totp/Slotdeck:ada?secret=JBSWY3DPEHPK3PXP&issuer=Slotdeck')).toBe('JBSWY3DPEHPK3PXP');
    expect(totpSecret('not a uri')).toBeNull();
    expect(githubErrorMessage('AUTH_GITHUB_NOT_LINKED')).toContain('not linked');
    expect(githubErrorMessage('SOMETHING_NEW')).toContain('GitHub failed');
    expect(githubErrorMessage(null)).toBeNull();
  });

  it('follows the device for the system theme, and key expiries count whole days from now', () => {
    expect(effectiveTheme('system', true)).toBe('dark');
    expect(effectiveTheme('system', false)).toBe('light');
    expect(effectiveTheme('light', true)).toBe('light');
    expect(expiryFromDays(null)).toBeNull();
    expect(expiryFromDays(30, new Date('2026-12-01T00:00:00Z'))).toBe('2026-12-31T00:00:00.000Z');
  });

  it('reads the embedding origins typed one per line or with commas, without trailing slashes', () => {
    expect(parseOrigins(' https://wiki.example.com/,\nhttp://localhost:8080  ')).toEqual([
      'https://wiki.example.com',
      'http://localhost:8080',
    ]);
    expect(parseOrigins('  ')).toEqual([]);
  });
});
