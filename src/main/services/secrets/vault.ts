import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  scrypt as scryptCallback,
  type ScryptOptions,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SecretsStatus } from '../../../shared/ipc/contract';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';

export const KEYCHAIN_SERVICE = 'Slotdeck';

/** Where secrets live: SSH keys and passphrases, agent admin tokens. Nothing else in the panel stores them. */
export interface SecretVault {
  status(): SecretsStatus;
  /** For the file vault: set the passphrase the first time, or give it to unlock. */
  unlock(passphrase: string): Promise<SecretsStatus>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

interface KeyringEntry {
  getPassword(): Promise<string | null | undefined>;
  setPassword(value: string): Promise<void>;
  deletePassword(): Promise<boolean | void>;
}
export type KeyringEntryFactory = (service: string, account: string) => KeyringEntry;

/** The OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows). */
export class KeychainVault implements SecretVault {
  constructor(private readonly entry: KeyringEntryFactory) {}

  status(): SecretsStatus {
    return { backend: 'keychain', state: 'ready', detail: "Secrets are kept in this computer's keychain." };
  }

  unlock(): Promise<SecretsStatus> {
    return Promise.resolve(this.status());
  }

  async get(key: string): Promise<string | null> {
    return (await this.call(() => this.entry(KEYCHAIN_SERVICE, key).getPassword())) ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    await this.call(() => this.entry(KEYCHAIN_SERVICE, key).setPassword(value));
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.entry(KEYCHAIN_SERVICE, key).deletePassword()).catch(() => undefined);
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new IpcError(
        IpcErrorCode.SECRETS_FAILED,
        `The keychain refused the request (${(error as Error).message}). Unlock your keychain and try again.`,
      );
    }
  }
}

const scrypt = (password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    scryptCallback(password, salt, 32, options, (error, key) => (error ? reject(error) : resolve(key))),
  );

interface Sealed {
  iv: string;
  tag: string;
  data: string;
}

interface VaultFile {
  version: 1;
  kdf: { name: 'scrypt'; salt: string; N: number; r: number; p: number };
  /** A known text sealed with the key: tells a wrong passphrase from a damaged entry. */
  check: Sealed;
  entries: Record<string, Sealed>;
}

const CHECK_TEXT = 'slotdeck-vault';
const KDF = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function seal(key: Buffer, text: string, label: string): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  // The entry's name is authenticated too: a sealed value cannot be moved to another name.
  cipher.setAAD(Buffer.from(label));
  const data = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
}

function open(key: Buffer, sealed: Sealed, label: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
  decipher.setAAD(Buffer.from(label));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
}

/**
 * For systems without a keychain (a headless Linux without a Secret Service): one AES-256-GCM file whose key comes
 * from a passphrase (scrypt) that the admin chooses in the UI, or from SLOTDECK_MASTER_KEY. Never used silently: the
 * UI says which store holds the secrets, and nothing is stored until a passphrase is set.
 */
export class FileVault implements SecretVault {
  private key: Buffer | null = null;

  constructor(private readonly file: string) {}

  status(): SecretsStatus {
    const exists = existsSync(this.file);
    const state = this.key ? 'ready' : exists ? 'locked' : 'uninitialized';
    const detail = {
      ready: 'No system keychain was found: secrets are kept in an encrypted file, unlocked for this session.',
      locked: 'No system keychain was found: secrets are kept in an encrypted file. Enter its passphrase to unlock it.',
      uninitialized:
        'No system keychain was found. Choose a passphrase to keep secrets in an encrypted file (or start Slotdeck with SLOTDECK_MASTER_KEY set).',
    }[state];
    return { backend: 'file', state, detail };
  }

  async unlock(passphrase: string): Promise<SecretsStatus> {
    if (!existsSync(this.file)) {
      const salt = randomBytes(16);
      const key = await scrypt(passphrase, salt, KDF);
      this.write({
        version: 1,
        kdf: { name: 'scrypt', salt: salt.toString('base64'), N: KDF.N, r: KDF.r, p: KDF.p },
        check: seal(key, CHECK_TEXT, 'check'),
        entries: {},
      });
      this.key = key;
      return this.status();
    }
    const vault = this.read();
    const key = await scrypt(passphrase, Buffer.from(vault.kdf.salt, 'base64'), {
      N: vault.kdf.N,
      r: vault.kdf.r,
      p: vault.kdf.p,
      maxmem: KDF.maxmem,
    });
    try {
      if (open(key, vault.check, 'check') !== CHECK_TEXT) throw new Error('check text');
    } catch {
      throw new IpcError(
        IpcErrorCode.SECRETS_PASSPHRASE_WRONG,
        'That passphrase does not open the secrets file. Try again.',
      );
    }
    this.key = key;
    return this.status();
  }

  async get(name: string): Promise<string | null> {
    const key = this.requireKey();
    const sealed = this.read().entries[name];
    return Promise.resolve(sealed ? open(key, sealed, name) : null);
  }

  async set(name: string, value: string): Promise<void> {
    const key = this.requireKey();
    const vault = this.read();
    vault.entries[name] = seal(key, value, name);
    this.write(vault);
    return Promise.resolve();
  }

  async delete(name: string): Promise<void> {
    if (!existsSync(this.file)) return;
    const vault = this.read();
    if (!(name in vault.entries)) return;
    delete vault.entries[name];
    this.write(vault);
    return Promise.resolve();
  }

  private requireKey(): Buffer {
    if (!this.key) throw new IpcError(IpcErrorCode.SECRETS_LOCKED, this.status().detail);
    return this.key;
  }

  private read(): VaultFile {
    return JSON.parse(readFileSync(this.file, 'utf8')) as VaultFile;
  }

  private write(vault: VaultFile): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, JSON.stringify(vault, null, 1), { mode: 0o600 });
    renameSync(temporary, this.file);
  }
}

/**
 * The keychain when this system has one that works (probed by writing and deleting an entry), else the encrypted
 * file, unlocked at once when SLOTDECK_MASTER_KEY is set.
 */
export async function createVault(options: {
  file: string;
  masterKey?: string | undefined;
  entry?: KeyringEntryFactory | null;
}): Promise<SecretVault> {
  if (options.entry) {
    const probe = options.entry(KEYCHAIN_SERVICE, 'slotdeck-probe');
    const works = await Promise.race([
      probe
        .setPassword('probe')
        .then(() => probe.deletePassword())
        .then(
          () => true,
          () => false,
        ),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000).unref()),
    ]);
    if (works) return new KeychainVault(options.entry);
  }
  const vault = new FileVault(options.file);
  if (options.masterKey) await vault.unlock(options.masterKey);
  return vault;
}
