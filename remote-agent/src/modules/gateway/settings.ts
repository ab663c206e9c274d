import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../../db/database.js';
import { takeSecretEnv } from '../../util/secret-env.js';

export interface LegacyMode {
  enabled: boolean;
  userId: string | null;
}

export interface DefaultRateLimit {
  requestsPerMinute: number;
  concurrentStreams: number;
}

export const DEFAULT_RATE_LIMIT: DefaultRateLimit = { requestsPerMinute: 60, concurrentStreams: 10 };

/**
 * The gateway's settings the admin changes at run time, in the agent's settings table. Read once and kept in memory:
 * the hot path never queries them.
 */
export class GatewaySettings {
  private legacy: LegacyMode;
  private rateLimit: DefaultRateLimit;
  private readonly write;

  constructor(db: Db) {
    const read = db.prepare<[string], { value_json: string }>('SELECT value_json FROM settings WHERE key = ?');
    this.write = db.prepare<[string, string]>(
      'INSERT INTO settings (key, value_json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json',
    );
    const load = <T>(key: string, fallback: T): T => {
      const row = read.get(key);
      return row ? { ...fallback, ...(JSON.parse(row.value_json) as T) } : fallback;
    };
    this.legacy = load<LegacyMode>('gateway.legacyMode', { enabled: false, userId: null });
    this.rateLimit = load<DefaultRateLimit>('gateway.defaultRateLimit', DEFAULT_RATE_LIMIT);
  }

  get legacyMode(): LegacyMode {
    return this.legacy;
  }

  set legacyMode(mode: LegacyMode) {
    this.write.run('gateway.legacyMode', JSON.stringify(mode));
    this.legacy = { ...mode };
  }

  get defaultRateLimit(): DefaultRateLimit {
    return this.rateLimit;
  }

  set defaultRateLimit(limit: DefaultRateLimit) {
    this.write.run('gateway.defaultRateLimit', JSON.stringify(limit));
    this.rateLimit = { ...limit };
  }
}

/**
 * The organisation's upstream API key: a file private to the agent user (set through the admin API), or else
 * SLOTDECK_AGENT_UPSTREAM_KEY. It is read into memory once and never returned, logged or stored elsewhere.
 */
export class UpstreamKeyStore {
  private cached: string | null | undefined;
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly fromEnv: string | undefined = takeSecretEnv('SLOTDECK_AGENT_UPSTREAM_KEY'),
  ) {
    this.file = join(dataDir, 'secrets', 'upstream-key');
  }

  get(): string | null {
    if (this.cached === undefined) {
      let key: string | null;
      try {
        key = readFileSync(this.file, 'utf8').trim() || null;
      } catch {
        key = null;
      }
      this.cached = key ?? (this.fromEnv?.trim() || null);
    }
    return this.cached;
  }

  set(key: string): void {
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, key, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, this.file);
    this.cached = key;
  }

  clear(): void {
    rmSync(this.file, { force: true });
    this.cached = undefined;
  }
}
