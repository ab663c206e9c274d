import { createHash } from 'node:crypto';

export interface HostKeyInfo {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`... */
  algorithm: string;
  /** As OpenSSH prints it: `SHA256:` and the unpadded base64 of the key blob's SHA-256. */
  fingerprint: string;
}

/** Reads a host key blob (the wire format: a length-prefixed algorithm name first) into what the admin compares. */
export function describeHostKey(blob: Buffer): HostKeyInfo {
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const algorithm =
    nameLength > 0 && nameLength < 64 && blob.length >= 4 + nameLength
      ? blob.subarray(4, 4 + nameLength).toString('ascii')
      : 'unknown';
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { algorithm, fingerprint };
}
