import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';

/** What the file keeps: the token's SHA-256 (never the token) and when it was made. Its presence means enabled. */
const Stored = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), createdAt: z.string() });

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * The bearer token a scraper elsewhere presents to the public listener's /metrics. Off until an admin enables it;
 * the token is returned once, and only its SHA-256 is kept (in the data dir's secrets folder, private to the agent).
 */
export class PublicMetricsToken {
  readonly file: string;
  private stored: z.infer<typeof Stored> | null;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'secrets', 'metrics-token.json');
    this.stored = this.read();
  }

  get enabled(): boolean {
    return this.stored !== null;
  }

  get createdAt(): string | null {
    return this.stored?.createdAt ?? null;
  }

  /** A new token replaces any older one at once. */
  issue(now = new Date()): string {
    const token = `sdk_metrics_${randomBytes(32).toString('base64url')}`;
    const stored = { sha256: digest(token).toString('hex'), createdAt: now.toISOString() };
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, JSON.stringify(stored), { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, this.file);
    this.stored = stored;
    return token;
  }

  disable(): void {
    rmSync(this.file, { force: true });
    this.stored = null;
  }

  /** Constant time in the token (both sides are hashed to the same length first). */
  verify(presented: string): boolean {
    if (!this.stored) return false;
    return timingSafeEqual(digest(presented), Buffer.from(this.stored.sha256, 'hex'));
  }

  private read(): z.infer<typeof Stored> | null {
    try {
      const parsed = Stored.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}
