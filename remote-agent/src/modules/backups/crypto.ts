import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import type { SecretsEnvelope } from '../../contract/backups.js';

/**
 * Hybrid encryption of a backup's secrets to the panel's X25519 public key (the panel keeps the private half in its
 * keychain). A stolen backup holds only ciphertext; the agent never has the private key. The panel's copy of the
 * unwrapping (src/main/services/backups/keys.ts) must agree with this file; a test checks that it does.
 */
export const ENVELOPE_ALG = 'x25519-hkdf-sha256-aes256gcm';
const HKDF_INFO = 'slotdeck backup secrets v1';

/** SPKI DER prefix of an X25519 public key; the raw 32 bytes follow. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export function publicKeyFromRaw(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new Error('an X25519 public key has 32 bytes');
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  return (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(X25519_SPKI_PREFIX.length);
}

export const keyIdOf = (rawPublicKeyBase64: string): string =>
  createHash('sha256').update(Buffer.from(rawPublicKeyBase64, 'base64')).digest('hex').slice(0, 16);

function wrappingKey(shared: Buffer, salt: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(
    hkdfSync('sha256', shared, salt, Buffer.concat([Buffer.from(HKDF_INFO), ephemeral, recipient]), 32),
  );
}

/** iv (12) | tag (16) | ciphertext */
export function sealWithKey(key: Buffer, plaintext: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

/** Throws when the key is wrong or the bytes were changed (GCM's tag). */
export function openWithKey(key: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
}

/** Seals `plaintext` to the recipient: the envelope (for the manifest) and the sealed bytes (the secrets part). */
export function sealToRecipient(
  recipientRawBase64: string,
  plaintext: Buffer,
): { envelope: SecretsEnvelope; sealed: Buffer } {
  const recipientRaw = Buffer.from(recipientRawBase64, 'base64');
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralRaw = rawPublicKey(ephemeral.publicKey);
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: publicKeyFromRaw(recipientRaw) });
  const salt = randomBytes(16);
  const dataKey = randomBytes(32);
  const wrapped = sealWithKey(wrappingKey(shared, salt, ephemeralRaw, recipientRaw), dataKey);
  return {
    envelope: {
      alg: ENVELOPE_ALG,
      keyId: keyIdOf(recipientRawBase64),
      ephemeralPublicKey: ephemeralRaw.toString('base64'),
      salt: salt.toString('base64'),
      wrappedKey: wrapped.toString('base64'),
    },
    sealed: sealWithKey(dataKey, plaintext),
  };
}

/** The data key of an envelope, with the recipient's private key (the CLI's --key-file; the panel has its own copy). */
export function unwrapDataKey(privateKey: KeyObject, envelope: SecretsEnvelope): Buffer {
  const recipientRaw = rawPublicKey(createPublicKey(privateKey));
  const ephemeralRaw = Buffer.from(envelope.ephemeralPublicKey, 'base64');
  const shared = diffieHellman({ privateKey, publicKey: publicKeyFromRaw(ephemeralRaw) });
  return openWithKey(
    wrappingKey(shared, Buffer.from(envelope.salt, 'base64'), ephemeralRaw, recipientRaw),
    Buffer.from(envelope.wrappedKey, 'base64'),
  );
}
