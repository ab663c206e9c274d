import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** Numbered schema changes of the panel's own database. Never edit a released one: add the next. */
const MIGRATIONS: Array<{ version: number; up: string; down: string }> = [
  {
    version: 1,
    up: `
      CREATE TABLE hosts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('local', 'ssh')),
        address TEXT,
        port INTEGER,
        user TEXT,
        auth_method TEXT CHECK (auth_method IN ('key', 'agent')),
        key_path TEXT,
        agent_port INTEGER,
        agent_command TEXT,
        has_private_key INTEGER NOT NULL DEFAULT 0,
        has_passphrase INTEGER NOT NULL DEFAULT 0,
        has_admin_token INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE host_keys (
        host_id TEXT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
        algorithm TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        pinned_at TEXT NOT NULL
      );
      CREATE TABLE preferences (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE preferences;
      DROP TABLE host_keys;
      DROP TABLE hosts;
    `,
  },
  {
    // Browser mode's sessions: only the SHA-256 of each session secret, never the secret itself.
    version: 2,
    up: `
      CREATE TABLE web_sessions (
        secret_sha256 TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE web_sessions;
    `,
  },
  {
    // Browser mode's sessions, bound to the origin (scheme, host, port) they were made on, and named by a public id:
    // the page proves it holds the secret (an HMAC of a fresh challenge) instead of sending it. Sessions of version 2
    // have no origin to bind to, so they end here: each browser opens the printed link once more.
    version: 3,
    up: `
      DROP TABLE web_sessions;
      CREATE TABLE web_sessions (
        id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        origin TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE web_sessions;
      CREATE TABLE web_sessions (
        secret_sha256 TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
    `,
  },
  {
    // EC2: AWS accounts (never their keys: a pasted access key lives in the vault), a host's link to its instance
    // (its address is looked up from the instance at connect), when the idle policy last stopped it, and each host's
    // last deploy job (its steps, for the step list after a restart).
    version: 4,
    up: `
      CREATE TABLE aws_accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE,
        source TEXT NOT NULL CHECK (source IN ('profile', 'environment', 'access-key')),
        profile TEXT,
        access_key_hint TEXT,
        regions_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      ALTER TABLE hosts ADD COLUMN instance_account_id TEXT REFERENCES aws_accounts(id) ON DELETE SET NULL;
      ALTER TABLE hosts ADD COLUMN instance_region TEXT;
      ALTER TABLE hosts ADD COLUMN instance_id TEXT;
      ALTER TABLE hosts ADD COLUMN idle_stopped_at TEXT;
      CREATE TABLE deploy_jobs (
        host_id TEXT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
        job_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE deploy_jobs;
      ALTER TABLE hosts DROP COLUMN idle_stopped_at;
      ALTER TABLE hosts DROP COLUMN instance_id;
      ALTER TABLE hosts DROP COLUMN instance_region;
      ALTER TABLE hosts DROP COLUMN instance_account_id;
      DROP TABLE aws_accounts;
    `,
  },
];

export const STORE_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export class StoreTooNewError extends Error {}

/** A browser-mode session as stored: never its secret. */
export interface WebSessionRow {
  id: string;
  secretSha256: string;
  /** The page's origin it was made on (`http://127.0.0.1:<port>`); it signs in nowhere else. */
  origin: string;
}

export interface HostRow {
  id: string;
  name: string;
  kind: 'local' | 'ssh';
  address: string | null;
  port: number | null;
  user: string | null;
  authMethod: 'key' | 'agent' | null;
  keyPath: string | null;
  agentPort: number | null;
  agentCommand: string | null;
  hasPrivateKey: boolean;
  hasPassphrase: boolean;
  hasAdminToken: boolean;
  /** The EC2 instance this profile is linked to (all three set, or none). */
  instanceAccountId: string | null;
  instanceRegion: string | null;
  instanceId: string | null;
  idleStoppedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

type LaterHostFields = 'instanceAccountId' | 'instanceRegion' | 'instanceId' | 'idleStoppedAt';
/** A new host row: the EC2 link and idle fields may be left out (null). */
export type NewHostRow = Omit<HostRow, 'createdAt' | 'updatedAt' | LaterHostFields> &
  Partial<Pick<HostRow, LaterHostFields>>;

/** An AWS account entry: where its credentials come from, never the credentials. */
export interface AwsAccountRow {
  id: string;
  name: string;
  source: 'profile' | 'environment' | 'access-key';
  profile: string | null;
  accessKeyHint: string | null;
  regions: string[];
  createdAt: string;
  updatedAt: string;
}

export class AwsAccountNameTakenError extends Error {}

export interface PinnedKey {
  algorithm: string;
  fingerprint: string;
  pinnedAt: string;
}

interface RawHost {
  id: string;
  name: string;
  kind: 'local' | 'ssh';
  address: string | null;
  port: number | null;
  user: string | null;
  auth_method: 'key' | 'agent' | null;
  key_path: string | null;
  agent_port: number | null;
  agent_command: string | null;
  has_private_key: number;
  has_passphrase: number;
  has_admin_token: number;
  instance_account_id: string | null;
  instance_region: string | null;
  instance_id: string | null;
  idle_stopped_at: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS: Record<Exclude<keyof HostRow, 'createdAt' | 'updatedAt'>, string> = {
  id: 'id',
  name: 'name',
  kind: 'kind',
  address: 'address',
  port: 'port',
  user: 'user',
  authMethod: 'auth_method',
  keyPath: 'key_path',
  agentPort: 'agent_port',
  agentCommand: 'agent_command',
  hasPrivateKey: 'has_private_key',
  hasPassphrase: 'has_passphrase',
  hasAdminToken: 'has_admin_token',
  instanceAccountId: 'instance_account_id',
  instanceRegion: 'instance_region',
  instanceId: 'instance_id',
  idleStoppedAt: 'idle_stopped_at',
};

function fromRaw(raw: RawHost): HostRow {
  return {
    id: raw.id,
    name: raw.name,
    kind: raw.kind,
    address: raw.address,
    port: raw.port,
    user: raw.user,
    authMethod: raw.auth_method,
    keyPath: raw.key_path,
    agentPort: raw.agent_port,
    agentCommand: raw.agent_command,
    hasPrivateKey: raw.has_private_key === 1,
    hasPassphrase: raw.has_passphrase === 1,
    hasAdminToken: raw.has_admin_token === 1,
    instanceAccountId: raw.instance_account_id,
    instanceRegion: raw.instance_region,
    instanceId: raw.instance_id,
    idleStoppedAt: raw.idle_stopped_at,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  };
}

const toValue = (value: unknown): unknown => (typeof value === 'boolean' ? (value ? 1 : 0) : value);

export class HostNameTakenError extends Error {}

/**
 * The panel's configuration in SQLite (WAL): hosts, their pinned keys, preferences. Secrets never come here; only
 * flags saying which secrets the vault holds.
 */
export class Store {
  /** Said to the admin once, in the UI: what happened to a database that could not be used. */
  readonly notices: string[] = [];

  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens (or creates) the database. A damaged file is set aside as `<file>.damaged-<time>` and a fresh one made, with
   * a notice; a file from a newer Slotdeck is left untouched and refused (after a backup copy), never rewritten.
   */
  static open(file: string, now = new Date()): Store {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    const notices: string[] = [];
    let db: Database.Database | null = null;
    try {
      // Read-only checks first: nothing is written to a file before we know this version may use it.
      db = Store.connect(file);
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check: ${String(check)}`);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > STORE_SCHEMA_VERSION) {
        db.close();
        const backup = `${file}.newer-${stamp}`;
        for (const suffix of ['', '-wal', '-shm'])
          if (existsSync(file + suffix)) copyFileSync(file + suffix, backup + suffix);
        throw new StoreTooNewError(
          `The settings database ${file} was written by a newer Slotdeck (schema ${version}; this one knows ${STORE_SCHEMA_VERSION}). Update Slotdeck. Nothing was changed; a copy is at ${backup}.`,
        );
      }
    } catch (error) {
      if (error instanceof StoreTooNewError) throw error;
      // Let go of the damaged file before moving it aside.
      db?.close();
      const backup = `${file}.damaged-${stamp}`;
      renameSync(file, backup);
      for (const suffix of ['-wal', '-shm']) if (existsSync(file + suffix)) renameSync(file + suffix, backup + suffix);
      notices.push(
        `The settings database could not be read (${(error as Error).message}). It was kept at ${backup} and Slotdeck started with a new one: add your hosts again.`,
      );
      db = Store.connect(file);
    }
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    for (const migration of MIGRATIONS.filter((m) => m.version > version)) {
      db.transaction(() => {
        db.exec(migration.up);
        db.pragma(`user_version = ${migration.version}`);
      })();
    }
    const store = new Store(db);
    store.notices.push(...notices);
    return store;
  }

  /** Opens (creating, private to this user) without changing the file. */
  private static connect(file: string): Database.Database {
    const fresh = !existsSync(file);
    const db = new Database(file);
    if (fresh) chmodSync(file, 0o600);
    return db;
  }

  /** Moves the schema down to `version` (for the migration tests and for downgrades). */
  migrateDown(version: number): void {
    let current = this.db.pragma('user_version', { simple: true }) as number;
    while (current > version) {
      const migration = MIGRATIONS.find((m) => m.version === current)!;
      this.db.transaction(() => {
        this.db.exec(migration.down);
        this.db.pragma(`user_version = ${current - 1}`);
      })();
      current -= 1;
    }
  }

  listHosts(): HostRow[] {
    return this.db.prepare<[], RawHost>("SELECT * FROM hosts ORDER BY kind = 'ssh', created_at").all().map(fromRaw);
  }

  getHost(id: string): HostRow | null {
    const raw = this.db.prepare<[string], RawHost>('SELECT * FROM hosts WHERE id = ?').get(id);
    return raw ? fromRaw(raw) : null;
  }

  insertHost(row: NewHostRow, now = new Date().toISOString()): HostRow {
    const keys = Object.keys(COLUMNS) as Array<keyof typeof COLUMNS>;
    try {
      this.db
        .prepare(
          `INSERT INTO hosts (${keys.map((k) => COLUMNS[k]).join(', ')}, created_at, updated_at) VALUES (${keys.map(() => '?').join(', ')}, ?, ?)`,
        )
        .run(...keys.map((k) => toValue(row[k] ?? null)), now, now);
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new HostNameTakenError(row.name);
      throw error;
    }
    return this.getHost(row.id)!;
  }

  updateHost(
    id: string,
    patch: Partial<Omit<HostRow, 'id' | 'kind' | 'createdAt' | 'updatedAt'>>,
    now = new Date().toISOString(),
  ): HostRow {
    const keys = (Object.keys(patch) as Array<keyof typeof COLUMNS>).filter(
      (k) => patch[k as keyof typeof patch] !== undefined,
    );
    try {
      this.db
        .prepare(
          `UPDATE hosts SET ${[...keys.map((k) => `${COLUMNS[k]} = ?`), 'updated_at = ?'].join(', ')} WHERE id = ?`,
        )
        .run(...keys.map((k) => toValue(patch[k as keyof typeof patch])), now, id);
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new HostNameTakenError(String(patch.name));
      throw error;
    }
    return this.getHost(id)!;
  }

  deleteHost(id: string): void {
    this.db.prepare('DELETE FROM hosts WHERE id = ?').run(id);
  }

  pinnedKey(hostId: string): PinnedKey | null {
    const raw = this.db
      .prepare<[string], { algorithm: string; fingerprint: string; pinned_at: string }>(
        'SELECT algorithm, fingerprint, pinned_at FROM host_keys WHERE host_id = ?',
      )
      .get(hostId);
    return raw ? { algorithm: raw.algorithm, fingerprint: raw.fingerprint, pinnedAt: raw.pinned_at } : null;
  }

  pinKey(hostId: string, key: { algorithm: string; fingerprint: string }, now = new Date().toISOString()): void {
    this.db
      .prepare(
        'INSERT INTO host_keys (host_id, algorithm, fingerprint, pinned_at) VALUES (?, ?, ?, ?) ON CONFLICT(host_id) DO UPDATE SET algorithm = excluded.algorithm, fingerprint = excluded.fingerprint, pinned_at = excluded.pinned_at',
      )
      .run(hostId, key.algorithm, key.fingerprint, now);
  }

  unpinKey(hostId: string): void {
    this.db.prepare('DELETE FROM host_keys WHERE host_id = ?').run(hostId);
  }

  preference<T>(key: string): T | undefined {
    const raw = this.db
      .prepare<[string], { value_json: string }>('SELECT value_json FROM preferences WHERE key = ?')
      .get(key);
    return raw ? (JSON.parse(raw.value_json) as T) : undefined;
  }

  setPreference(key: string, value: unknown): void {
    this.db
      .prepare(
        'INSERT INTO preferences (key, value_json) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json',
      )
      .run(key, JSON.stringify(value));
  }

  /** Browser mode: keeps a new session, by its public id, the SHA-256 of its secret and the origin it belongs to. */
  insertWebSession(session: WebSessionRow, now: Date, expiresAt: Date): void {
    this.db
      .prepare(
        'INSERT INTO web_sessions (id, secret_sha256, origin, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(
        session.id,
        session.secretSha256,
        session.origin,
        now.toISOString(),
        now.toISOString(),
        expiresAt.toISOString(),
      );
  }

  /** A live session by its id; undefined when it is unknown or has expired. */
  webSession(id: string, now: Date): WebSessionRow | undefined {
    const row = this.db
      .prepare<[string, string], { id: string; secret_sha256: string; origin: string }>(
        'SELECT id, secret_sha256, origin FROM web_sessions WHERE id = ? AND expires_at > ?',
      )
      .get(id, now.toISOString());
    return row ? { id: row.id, secretSha256: row.secret_sha256, origin: row.origin } : undefined;
  }

  /** Marks a live session used and moves its expiry; false when it is unknown or has expired. */
  touchWebSession(id: string, now: Date, expiresAt: Date): boolean {
    const changed = this.db
      .prepare('UPDATE web_sessions SET last_used_at = ?, expires_at = ? WHERE id = ? AND expires_at > ?')
      .run(now.toISOString(), expiresAt.toISOString(), id, now.toISOString()).changes;
    return changed > 0;
  }

  deleteWebSession(id: string): void {
    this.db.prepare('DELETE FROM web_sessions WHERE id = ?').run(id);
  }

  deleteExpiredWebSessions(now: Date): void {
    this.db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?').run(now.toISOString());
  }

  listAwsAccounts(): AwsAccountRow[] {
    return this.db.prepare<[], RawAwsAccount>('SELECT * FROM aws_accounts ORDER BY name').all().map(awsAccountFromRaw);
  }

  getAwsAccount(id: string): AwsAccountRow | null {
    const raw = this.db.prepare<[string], RawAwsAccount>('SELECT * FROM aws_accounts WHERE id = ?').get(id);
    return raw ? awsAccountFromRaw(raw) : null;
  }

  insertAwsAccount(row: Omit<AwsAccountRow, 'createdAt' | 'updatedAt'>, now = new Date().toISOString()): AwsAccountRow {
    try {
      this.db
        .prepare(
          'INSERT INTO aws_accounts (id, name, source, profile, access_key_hint, regions_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(row.id, row.name, row.source, row.profile, row.accessKeyHint, JSON.stringify(row.regions), now, now);
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new AwsAccountNameTakenError(row.name);
      throw error;
    }
    return this.getAwsAccount(row.id)!;
  }

  updateAwsAccount(
    id: string,
    patch: Partial<Pick<AwsAccountRow, 'name' | 'source' | 'profile' | 'accessKeyHint' | 'regions'>>,
    now = new Date().toISOString(),
  ): AwsAccountRow {
    const current = this.getAwsAccount(id);
    if (!current) throw new Error(`no AWS account ${id}`);
    const next = { ...current, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) };
    try {
      this.db
        .prepare(
          'UPDATE aws_accounts SET name = ?, source = ?, profile = ?, access_key_hint = ?, regions_json = ?, updated_at = ? WHERE id = ?',
        )
        .run(next.name, next.source, next.profile, next.accessKeyHint, JSON.stringify(next.regions), now, id);
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new AwsAccountNameTakenError(String(patch.name));
      throw error;
    }
    return this.getAwsAccount(id)!;
  }

  deleteAwsAccount(id: string): void {
    this.db.prepare('DELETE FROM aws_accounts WHERE id = ?').run(id);
  }

  /** The host's last deploy job (its JSON as the deploy service wrote it), or null. */
  deployJob(hostId: string): unknown {
    const raw = this.db
      .prepare<[string], { job_json: string }>('SELECT job_json FROM deploy_jobs WHERE host_id = ?')
      .get(hostId);
    return raw ? (JSON.parse(raw.job_json) as unknown) : null;
  }

  saveDeployJob(hostId: string, job: unknown, now = new Date().toISOString()): void {
    this.db
      .prepare(
        'INSERT INTO deploy_jobs (host_id, job_json, updated_at) VALUES (?, ?, ?) ON CONFLICT(host_id) DO UPDATE SET job_json = excluded.job_json, updated_at = excluded.updated_at',
      )
      .run(hostId, JSON.stringify(job), now);
  }

  close(): void {
    this.db.close();
  }
}

interface RawAwsAccount {
  id: string;
  name: string;
  source: AwsAccountRow['source'];
  profile: string | null;
  access_key_hint: string | null;
  regions_json: string;
  created_at: string;
  updated_at: string;
}

function awsAccountFromRaw(raw: RawAwsAccount): AwsAccountRow {
  return {
    id: raw.id,
    name: raw.name,
    source: raw.source,
    profile: raw.profile,
    accessKeyHint: raw.access_key_hint,
    regions: JSON.parse(raw.regions_json) as string[],
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  };
}
