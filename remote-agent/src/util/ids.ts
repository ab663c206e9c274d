import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random id of lowercase letters and digits, without modulo bias (about 5.17 bits a character). */
export function randomId(length = 10): string {
  let id = '';
  while (id.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 252 is the largest multiple of 36 below 256: larger bytes would favour the first characters.
      if (byte < 252) id += ALPHABET[byte % 36];
      if (id.length === length) break;
    }
  }
  return id;
}
