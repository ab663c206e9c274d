import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupManifest, SecretsEnvelope } from '../../contract/backups.js';

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

/** Seals `plaintext` to the recipient: the envelope (for the manifest) and the sealed bytes. */
export function sealToRecipient(
  recipientRawBase64: string,
  plaintext: Buffer,
): { envelope: SecretsEnvelope; sealed: Buffer } {
  const { envelope, dataKey } = newDataKeyFor(recipientRawBase64);
  return { envelope, sealed: sealWithKey(dataKey, plaintext) };
}

/** A fresh data key for one backup, and its envelope sealed to the recipient (the panel). */
export function newDataKeyFor(recipientRawBase64: string): { envelope: SecretsEnvelope; dataKey: Buffer } {
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
    dataKey,
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

/**
 * Streamed sealing of a backup's parts (database, secrets, homes) with the backup's data key: AES-256-GCM per 1 MiB
 * chunk, so a large home is never held whole. Layout: nonce prefix (8 random bytes), then per chunk ciphertext | tag.
 * The nonce is the prefix and the chunk's index; the AAD binds the chunk to the manifest header (its hash), to the
 * part's name, to its index and to whether it is the last one, so chunks cannot be reordered, cut, moved between
 * parts or between backups.
 */
export const SEAL_CHUNK = 1024 * 1024;
const TAG = 16;
const PREFIX = 8;

function chunkAad(binding: Buffer, part: string, index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail[4] = final ? 1 : 0;
  return Buffer.concat([binding, Buffer.from(`${part}\0`), tail]);
}

function chunkNonce(prefix: Buffer, index: number): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, PREFIX);
  return nonce;
}

/** The sealed size of `size` plaintext bytes. */
export const sealedSize = (size: number): number => PREFIX + size + TAG * Math.max(1, Math.ceil(size / SEAL_CHUNK));

export async function sealFile(
  key: Buffer,
  binding: Buffer,
  part: string,
  source: string,
  target: string,
): Promise<void> {
  const input = await open(source, 'r');
  const output = await open(target, 'wx', 0o600);
  try {
    const { size } = await input.stat();
    const prefix = randomBytes(PREFIX);
    await output.write(prefix);
    const buffer = Buffer.alloc(SEAL_CHUNK);
    const chunks = Math.max(1, Math.ceil(size / SEAL_CHUNK));
    for (let index = 0; index < chunks; index++) {
      const want = Math.min(SEAL_CHUNK, size - index * SEAL_CHUNK);
      const { bytesRead } = await input.read(buffer, 0, want, index * SEAL_CHUNK);
      if (bytesRead !== want) throw new Error(`${source} changed while it was sealed`);
      const cipher = createCipheriv('aes-256-gcm', key, chunkNonce(prefix, index));
      cipher.setAAD(chunkAad(binding, part, index, index === chunks - 1));
      await output.write(Buffer.concat([cipher.update(buffer.subarray(0, want)), cipher.final(), cipher.getAuthTag()]));
    }
    buffer.fill(0);
    await output.sync();
  } finally {
    await input.close();
    await output.close();
  }
}

/** Opens a sealed part (`size` bytes at `offset` of `file`) into `target`; throws on a wrong key or any change. */
export async function openSealedPart(
  key: Buffer,
  binding: Buffer,
  part: string,
  file: string,
  offset: number,
  size: number,
  target: string,
): Promise<void> {
  const input = await open(file, 'r');
  const output = await open(target, 'w', 0o600);
  try {
    if (size < PREFIX + TAG) throw new Error(`the part ${part} is cut short`);
    const prefix = Buffer.alloc(PREFIX);
    await input.read(prefix, 0, PREFIX, offset);
    const body = size - PREFIX;
    const chunks = Math.ceil(body / (SEAL_CHUNK + TAG));
    const buffer = Buffer.alloc(SEAL_CHUNK + TAG);
    for (let index = 0; index < chunks; index++) {
      const start = index * (SEAL_CHUNK + TAG);
      const length = Math.min(SEAL_CHUNK + TAG, body - start);
      if (length < TAG) throw new Error(`the part ${part} is cut short`);
      await input.read(buffer, 0, length, offset + PREFIX + start);
      const decipher = createDecipheriv('aes-256-gcm', key, chunkNonce(prefix, index));
      decipher.setAAD(chunkAad(binding, part, index, index === chunks - 1));
      decipher.setAuthTag(buffer.subarray(length - TAG, length));
      await output.write(Buffer.concat([decipher.update(buffer.subarray(0, length - TAG)), decipher.final()]));
    }
  } catch (error) {
    await output.close();
    await rm(target, { force: true });
    throw error;
  }
  await input.close();
  await output.close();
}

/** Sorted keys, no spaces: the bytes a manifest is hashed and signed as (the panel computes the same). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** The manifest's header (all but its parts list, known before the parts are sealed): bound into every chunk. */
export function manifestBinding(manifest: Omit<BackupManifest, 'parts'> & { parts?: unknown }): Buffer {
  const { parts: _parts, ...header } = manifest;
  return createHash('sha256').update('slotdeck-backup-v2\0').update(canonicalJson(header)).digest();
}

/** Signing: each agent's Ed25519 key (secrets/backup-signing-key, never in a backup) signs the whole manifest. */
export const SIGNING_KEY_FILE = 'backup-signing-key';
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function loadOrCreateSigningKey(dataDir: string): KeyObject {
  const file = join(dataDir, 'secrets', SIGNING_KEY_FILE);
  if (existsSync(file)) return createPrivateKey(readFileSync(file));
  mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  try {
    linkSync(tmp, file); // two writers at once: the first key wins, the other reads it
  } catch {
    /* already made */
  } finally {
    rmSync(tmp, { force: true });
  }
  return createPrivateKey(readFileSync(file));
}

/** The raw 32-byte Ed25519 public key, base64. */
export const signingPublicKey = (key: KeyObject): string =>
  (createPublicKey(key).export({ format: 'der', type: 'spki' }) as Buffer)
    .subarray(ED25519_SPKI_PREFIX.length)
    .toString('base64');

export const signManifest = (key: KeyObject, manifest: BackupManifest): string =>
  sign(null, Buffer.from(canonicalJson(manifest)), key).toString('base64');

/** Whether `signature` is the key's over the manifest (any malformed input: false). */
export function verifyManifest(publicKeyRaw: string, manifest: BackupManifest, signature: string): boolean {
  try {
    const raw = Buffer.from(publicKeyRaw, 'base64');
    if (raw.length !== 32) return false;
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    return verify(null, Buffer.from(canonicalJson(manifest)), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
