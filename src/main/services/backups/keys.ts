import {
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import type { SecretsEnvelope } from '../../../../remote-agent/src/contract/backups';
import { AgentErrorCode } from '../../../../remote-agent/src/contract/errors';
import { IpcError } from '../../ipc/errors';
import type { SecretVault } from '../secrets/vault';

/** The vault entry of the panel's backup key (X25519, PKCS#8 PEM). One per panel: any host's backup restores anywhere. */
export const BACKUP_KEY_NAME = 'backup-key';
const HKDF_INFO = 'slotdeck backup secrets v1';
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

const rawPublic = (key: KeyObject): Buffer =>
  (createPublicKey(key).export({ format: 'der', type: 'spki' }) as Buffer).subarray(X25519_SPKI_PREFIX.length);
const keyIdOf = (raw: Buffer): string => createHash('sha256').update(raw).digest('hex').slice(0, 16);

/**
 * The panel's half of backup encryption (the agent's is remote-agent/src/modules/backups/crypto.ts): the private key
 * lives in the OS keychain and never leaves main; a restore sends the agent only the one backup's data key.
 */
export class BackupKeys {
  constructor(private readonly vault: Pick<SecretVault, 'get' | 'set'>) {}

  private async privateKey(create: boolean): Promise<KeyObject | null> {
    const stored = await this.vault.get(BACKUP_KEY_NAME);
    if (stored) return createPrivateKey(stored);
    if (!create) return null;
    const { privateKey } = generateKeyPairSync('x25519');
    await this.vault.set(BACKUP_KEY_NAME, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    return privateKey;
  }

  /** The public key (raw, base64) and its id; made and kept on first use. */
  async publicKey(): Promise<{ publicKey: string; keyId: string }> {
    const raw = rawPublic((await this.privateKey(true))!);
    return { publicKey: raw.toString('base64'), keyId: keyIdOf(raw) };
  }

  /** Writes the private key (PKCS#8 PEM, 0600) to a file the admin picked; it never goes to the renderer. */
  async exportTo(file: string): Promise<void> {
    const key = (await this.privateKey(true))!;
    await writeFile(file, key.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    await chmod(file, 0o600);
  }

  async keyId(): Promise<string | null> {
    const key = await this.privateKey(false);
    return key ? keyIdOf(rawPublic(key)) : null;
  }

  /** The data key of one backup's sealed secrets, base64, for the agent to open them with during this restore. */
  async unwrap(envelope: SecretsEnvelope): Promise<string> {
    const key = await this.privateKey(false);
    const mine = key ? keyIdOf(rawPublic(key)) : null;
    if (!key || mine !== envelope.keyId)
      throw new IpcError(
        AgentErrorCode.BACKUP_KEY_MISMATCH,
        `This backup's secrets are sealed to key ${envelope.keyId}, and this panel's key is ${mine ?? 'not made yet'}. Restore it from the panel whose key it is sealed to (or on the host with slotdeck-agent restore --key-file and that panel's exported key).`,
      );
    const recipient = rawPublic(key);
    const ephemeral = Buffer.from(envelope.ephemeralPublicKey, 'base64');
    const shared = diffieHellman({
      privateKey: key,
      publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, ephemeral]), format: 'der', type: 'spki' }),
    });
    const wrapping = Buffer.from(
      hkdfSync(
        'sha256',
        shared,
        Buffer.from(envelope.salt, 'base64'),
        Buffer.concat([Buffer.from(HKDF_INFO), ephemeral, recipient]),
        32,
      ),
    );
    const sealed = Buffer.from(envelope.wrappedKey, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', wrapping, sealed.subarray(0, 12));
    decipher.setAuthTag(sealed.subarray(12, 28));
    const dataKey = Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
    const encoded = dataKey.toString('base64');
    dataKey.fill(0);
    return encoded;
  }
}
