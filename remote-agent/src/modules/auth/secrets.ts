import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function writePrivate(file: string, content: string): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

/** The folder, made 0700, and made 0700 again when it exists already (mkdir's mode applies only to a new one). */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/**
 * The sign-in secrets kept as files under <dataDir>/secrets (0700/0600), never in SQLite: better-auth's secret
 * (signs session cookies, encrypts TOTP secrets; made once) and the GitHub OAuth app's client secret, encrypted with
 * AES-256-GCM under a key derived from the auth secret.
 *
 * Limit: the key that seals the GitHub secret is derived from `auth-secret` in the same folder, so the sealing only
 * protects against a copy of that one file (a backup, a log); whoever can read the folder can read both. The folder's
 * 0700 (and the agent's account) is the real protection.
 */
export class AuthSecrets {
  readonly dir: string;
  readonly authSecretFile: string;
  readonly githubSecretFile: string;
  private authSecret: string | null = null;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'secrets');
    this.authSecretFile = join(this.dir, 'auth-secret');
    this.githubSecretFile = join(this.dir, 'github-client-secret');
  }

  /** better-auth's secret: 32 random bytes (hex), generated on first use and kept. */
  secret(): string {
    if (this.authSecret) return this.authSecret;
    privateDir(this.dir);
    try {
      const existing = readFileSync(this.authSecretFile, 'utf8').trim();
      if (/^[0-9a-f]{64}$/.test(existing)) return (this.authSecret = existing);
    } catch {
      // Not made yet.
    }
    const created = randomBytes(32).toString('hex');
    writePrivate(this.authSecretFile, created);
    return (this.authSecret = created);
  }

  /** A key for one purpose, derived from the auth secret (HKDF-SHA256). */
  derivedKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', Buffer.from(this.secret(), 'hex'), Buffer.alloc(0), purpose, 32));
  }

  githubClientSecret(): string | null {
    let sealed: string;
    try {
      sealed = readFileSync(this.githubSecretFile, 'utf8').trim();
    } catch {
      return null;
    }
    const [version, iv, tag, data] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || !data) return null;
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        this.derivedKey('github-client-secret'),
        Buffer.from(iv, 'base64url'),
      );
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // Sealed under another auth secret (the secret file was replaced): as if none were stored.
      return null;
    }
  }

  setGithubClientSecret(secret: string | null): void {
    if (secret === null) {
      rmSync(this.githubSecretFile, { force: true });
      return;
    }
    privateDir(this.dir);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.derivedKey('github-client-secret'), iv);
    const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url'));
    writePrivate(this.githubSecretFile, `v1.${parts.join('.')}\n`);
  }
}
