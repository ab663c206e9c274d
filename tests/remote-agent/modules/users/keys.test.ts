import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  API_KEY_LENGTH,
  checkKeyFormat,
  generateApiKey,
  hashApiKey,
} from '../../../../remote-agent/src/modules/users/keys.js';

/** Replaces the character at `index` with another character of the key alphabet. */
function changeAt(key: string, index: number): string {
  const replacement = key[index] === 'a' ? 'b' : 'a';
  return key.slice(0, index) + replacement + key.slice(index + 1);
}

describe('generateApiKey', () => {
  it('makes keys of sk_user_ and 28 base62 characters that pass the format check', () => {
    for (let i = 0; i < 1000; i++) {
      const { secret } = generateApiKey();
      expect(secret).toMatch(/^sk_user_[0-9A-Za-z]{28}$/);
      expect(secret).toHaveLength(API_KEY_LENGTH);
      expect(checkKeyFormat(secret)).toBe('ok');
    }
  });

  it('gives the SHA-256 of the whole key as its hash and its first 12 characters as the display prefix', () => {
    const { secret, hash, prefix } = generateApiKey();
    expect(hash.equals(createHash('sha256').update(secret).digest())).toBe(true);
    expect(hashApiKey(secret).equals(hash)).toBe(true);
    expect(prefix).toBe(secret.slice(0, 12));
    expect(prefix.startsWith('sk_user_')).toBe(true);
  });

  it('never repeats a key in 10,000 draws', () => {
    const keys = new Set(Array.from({ length: 10_000 }, () => generateApiKey().secret));
    expect(keys.size).toBe(10_000);
  });

  it('uses all 62 characters in the random part, each about equally often', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      for (const char of generateApiKey().secret.slice(8, 30)) counts.set(char, (counts.get(char) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    // 44,000 characters over 62 symbols: about 710 each. A modulo bias would push the first eight to about 870.
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(590);
      expect(count).toBeLessThan(830);
    }
  });
});

describe('checkKeyFormat', () => {
  const { secret } = generateApiKey();

  it('refuses another prefix as malformed', () => {
    expect(checkKeyFormat(`sk_live_${secret.slice(8)}`)).toBe('malformed');
    expect(checkKeyFormat(`SK_USER_${secret.slice(8)}`)).toBe('malformed');
    expect(checkKeyFormat(`sk-ant-${secret.slice(7)}`)).toBe('malformed');
  });

  it('refuses a key that is too short or too long as malformed', () => {
    expect(checkKeyFormat(secret.slice(0, -1))).toBe('malformed');
    expect(checkKeyFormat(`${secret}a`)).toBe('malformed');
    expect(checkKeyFormat('sk_user_')).toBe('malformed');
    expect(checkKeyFormat('')).toBe('malformed');
  });

  it('refuses characters outside base62, and surrounding whitespace, as malformed', () => {
    expect(checkKeyFormat(`${secret.slice(0, 20)}-${secret.slice(21)}`)).toBe('malformed');
    expect(checkKeyFormat(` ${secret.slice(0, -1)}`)).toBe('malformed');
    expect(checkKeyFormat(`${secret.slice(0, -1)}\n`)).toBe('malformed');
  });

  it('reports a mistyped character of the body or of the checksum as a checksum error', () => {
    for (const index of [8, 15, 29, 30, 35]) expect(checkKeyFormat(changeAt(secret, index))).toBe('checksum');
  });

  it('accepts the key exactly as generated', () => {
    expect(checkKeyFormat(secret)).toBe('ok');
  });
});
