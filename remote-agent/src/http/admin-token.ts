import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const adminTokenPath = (dataDir: string): string => join(dataDir, 'secrets', 'admin-token');

/** A fresh token: 256 random bits, URL-safe. */
function newToken(): string {
  return `sdk_admin_${randomBytes(32).toString('base64url')}`;
}

function writeToken(file: string, token: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  chmodSync(dirname(file), 0o700);
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${token}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

/** The admin token, created on first use. */
export function ensureAdminToken(dataDir: string): string {
  const file = adminTokenPath(dataDir);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 22) return token;
  }
  const token = newToken();
  writeToken(file, token);
  return token;
}

/** Replaces the token; a running agent notices within a second. */
export function rotateAdminToken(dataDir: string): string {
  const token = newToken();
  writeToken(adminTokenPath(dataDir), token);
  return token;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Checks presented tokens in constant time, re-reading the token file when it changes. */
export class AdminTokenVerifier {
  private expected: Buffer;
  private mtimeMs: number;
  private checkedAt = 0;

  constructor(private readonly dataDir: string) {
    this.expected = digest(ensureAdminToken(dataDir));
    this.mtimeMs = statSync(adminTokenPath(dataDir)).mtimeMs;
  }

  private refresh(): void {
    const now = Date.now();
    if (now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    try {
      const file = adminTokenPath(this.dataDir);
      const mtimeMs = statSync(file).mtimeMs;
      if (mtimeMs !== this.mtimeMs) {
        this.expected = digest(readFileSync(file, 'utf8').trim());
        this.mtimeMs = mtimeMs;
      }
    } catch {
      // Keep the token we have if the file is briefly missing.
    }
  }

  verify(presented: string): boolean {
    this.refresh();
    // Comparing fixed-length digests keeps the time independent of where a wrong token differs, and of its length.
    return timingSafeEqual(digest(presented), this.expected);
  }
}
