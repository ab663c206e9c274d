import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * End-user API keys: `sk_user_` + 22 base62 characters of randomness (about 131 bits) + 6 base62 characters of the
 * body's CRC32. The checksum lets the gateway refuse a mistyped or truncated key without a database lookup; the
 * randomness is what makes a key unguessable.
 */
export const API_KEY_PREFIX = 'sk_user_';
const BODY_LENGTH = 22;
const CHECKSUM_LENGTH = 6;
export const API_KEY_LENGTH = API_KEY_PREFIX.length + BODY_LENGTH + CHECKSUM_LENGTH;
/** Enough of a key to recognise it in lists and logs, too little to help guess it (4 of its random characters). */
export const DISPLAY_PREFIX_LENGTH = 12;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 is the largest multiple of 62 below 256: larger bytes would favour the first characters.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** CRC32 of the body in base62, zero-padded: 62^6 exceeds 2^32, so six characters hold any CRC. */
function checksum(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62]! + out;
    value = Math.floor(value / 62);
  }
  return out;
}

export const hashApiKey = (secret: string): Buffer => createHash('sha256').update(secret).digest();

export function generateApiKey(): { secret: string; hash: Buffer; prefix: string } {
  const body = randomBase62(BODY_LENGTH);
  const secret = `${API_KEY_PREFIX}${body}${checksum(body)}`;
  return { secret, hash: hashApiKey(secret), prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH) };
}

/** Whether `raw` can be a key at all: the shape (prefix, length, characters), then the checksum. No I/O. */
export function checkKeyFormat(raw: string): 'ok' | 'malformed' | 'checksum' {
  if (raw.length !== API_KEY_LENGTH || !KEY_PATTERN.test(raw)) return 'malformed';
  const body = raw.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + BODY_LENGTH);
  return raw.endsWith(checksum(body)) ? 'ok' : 'checksum';
}
