/** Numbered schema changes. Never edit a released migration: add the next number. */
export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'slots and their events',
    up: `
      CREATE TABLE slots (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE,
        command_json TEXT NOT NULL,
        argv_json TEXT NOT NULL,
        env_json TEXT NOT NULL,
        work_dir TEXT NOT NULL,
        work_dir_managed INTEGER NOT NULL CHECK (work_dir_managed IN (0, 1)),
        home_dir TEXT NOT NULL,
        memory_limit_mb INTEGER,
        terminal TEXT NOT NULL CHECK (terminal IN ('builtin', 'ttyd')),
        desired_state TEXT NOT NULL CHECK (desired_state IN ('running', 'stopped')),
        failed_reason TEXT,
        failed_at TEXT,
        cols INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        restarts INTEGER NOT NULL DEFAULT 0,
        supervisor_restarts_seen INTEGER NOT NULL DEFAULT 0,
        ttyd_port INTEGER,
        last_activity_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE slot_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slot_id TEXT NOT NULL REFERENCES slots(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
      );
      CREATE INDEX slot_events_by_slot ON slot_events (slot_id, id DESC);
    `,
    down: `
      DROP TABLE slot_events;
      DROP TABLE slots;
    `,
  },
  {
    version: 2,
    name: 'users, API keys, quotas, usage and its rollups, slot owners',
    up: `
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL COLLATE NOCASE,
        email TEXT COLLATE NOCASE,
        display_name TEXT,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        active INTEGER NOT NULL CHECK (active IN (0, 1)),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        deleted_at TEXT
      );
      -- A deleted user's name may be used again; the old row stays for its usage history.
      CREATE UNIQUE INDEX users_live_username ON users (username) WHERE deleted_at IS NULL;

      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        name TEXT NOT NULL,
        -- SHA-256 of the whole key: the key itself is never stored.
        hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        scopes TEXT NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        rotated_to TEXT,
        slot_id TEXT,
        requests_per_minute INTEGER,
        concurrent_streams INTEGER,
        last_used_at INTEGER,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX api_keys_by_user ON api_keys (user_id);

      CREATE TABLE quotas (
        subject_type TEXT NOT NULL CHECK (subject_type IN ('user', 'key')),
        subject_id TEXT NOT NULL,
        window TEXT NOT NULL CHECK (window IN ('day', '5h', 'month')),
        max_tokens INTEGER,
        max_cost_usd REAL,
        PRIMARY KEY (subject_type, subject_id, window),
        CHECK (max_tokens IS NOT NULL OR max_cost_usd IS NOT NULL)
      ) WITHOUT ROWID;

      -- No foreign keys: usage outlives keys and slots, and is written on the hot path.
      CREATE TABLE usage_events (
        id INTEGER PRIMARY KEY,
        request_id TEXT,
        user_id TEXT,
        key_id TEXT,
        slot_id TEXT,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        status TEXT NOT NULL,
        error_type TEXT,
        http_status INTEGER,
        latency_ms REAL NOT NULL,
        ttfb_ms REAL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER NOT NULL
      );
      CREATE INDEX usage_events_by_time ON usage_events (started_at);
      CREATE INDEX usage_events_by_user ON usage_events (user_id, started_at);

      -- Rollups kept in the same transaction as the rows: dashboards read these, never the raw rows.
      CREATE TABLE usage_hourly (
        bucket INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        PRIMARY KEY (bucket, user_id, key_id, model, provider)
      ) WITHOUT ROWID;
      CREATE TABLE usage_daily (
        bucket INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        PRIMARY KEY (bucket, user_id, key_id, model, provider)
      ) WITHOUT ROWID;

      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL
      ) WITHOUT ROWID;

      ALTER TABLE slots ADD COLUMN owner_id TEXT REFERENCES users(id);
      ALTER TABLE slots ADD COLUMN metered_key_id TEXT;
    `,
    down: `
      ALTER TABLE slots DROP COLUMN metered_key_id;
      ALTER TABLE slots DROP COLUMN owner_id;
      DROP TABLE settings;
      DROP TABLE usage_daily;
      DROP TABLE usage_hourly;
      DROP TABLE usage_events;
      DROP TABLE quotas;
      DROP TABLE api_keys;
      DROP TABLE users;
    `,
  },
  {
    version: 3,
    name: 'request log of refused gateway requests',
    up: `
      -- One row per refused request, or per run of identical ones (count, last_at): floods aggregate. No foreign
      -- keys: rows outlive keys and users, and are written on the gateway's path. Never holds a key.
      CREATE TABLE gateway_refusals (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        count INTEGER NOT NULL DEFAULT 1,
        status INTEGER NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        user_id TEXT,
        key_id TEXT,
        key_prefix TEXT,
        model TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        ip TEXT NOT NULL
      );
      CREATE INDEX gateway_refusals_by_time ON gateway_refusals (at);
      CREATE INDEX gateway_refusals_by_user ON gateway_refusals (user_id, at) WHERE user_id IS NOT NULL;
      CREATE INDEX gateway_refusals_by_key ON gateway_refusals (key_id, at) WHERE key_id IS NOT NULL;
    `,
    down: `
      DROP TABLE gateway_refusals;
    `,
  },
  {
    version: 4,
    name: 'idle auto-stop: the policy and the stops it ran',
    up: `
      -- One row at most; none means the default (off, 60 minutes). The activity clock itself is never stored.
      CREATE TABLE idle_policy (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        minutes INTEGER NOT NULL CHECK (minutes BETWEEN 1 AND 10080),
        updated_at TEXT NOT NULL
      );
      -- Each run of the stop command: written when it starts (the machine may go down before it ends), completed
      -- with its exit code and last output (secrets redacted). Only the newest few are kept.
      CREATE TABLE idle_stops (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        command TEXT NOT NULL,
        finished_at TEXT,
        exit_code INTEGER,
        output TEXT NOT NULL DEFAULT ''
      );
    `,
    down: `
      DROP TABLE idle_stops;
      DROP TABLE idle_policy;
    `,
  },
  {
    version: 5,
    name: 'end-user sign-in: better-auth tables, invites, throttling and settings',
    up: `
      -- better-auth's own tables (user, session, account, verification and the two-factor plugin's), named auth_* and
      -- shaped as better-auth 1.7 expects them (a unit test compares them with its generated schema). An auth_user is
      -- the sign-in side of exactly one agent user: same id, removed with it.
      CREATE TABLE auth_user (
        "id" TEXT NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        "name" TEXT NOT NULL,
        "email" TEXT NOT NULL UNIQUE,
        "emailVerified" INTEGER NOT NULL,
        "image" TEXT,
        "createdAt" DATE NOT NULL,
        "updatedAt" DATE NOT NULL,
        "username" TEXT UNIQUE,
        "displayUsername" TEXT,
        "twoFactorEnabled" INTEGER
      );
      CREATE TABLE auth_session (
        "id" TEXT NOT NULL PRIMARY KEY,
        "expiresAt" DATE NOT NULL,
        "token" TEXT NOT NULL UNIQUE,
        "createdAt" DATE NOT NULL,
        "updatedAt" DATE NOT NULL,
        "ipAddress" TEXT,
        "userAgent" TEXT,
        "userId" TEXT NOT NULL REFERENCES auth_user ("id") ON DELETE CASCADE
      );
      CREATE TABLE auth_account (
        "id" TEXT NOT NULL PRIMARY KEY,
        "accountId" TEXT NOT NULL,
        "providerId" TEXT NOT NULL,
        "userId" TEXT NOT NULL REFERENCES auth_user ("id") ON DELETE CASCADE,
        "accessToken" TEXT,
        "refreshToken" TEXT,
        "idToken" TEXT,
        "accessTokenExpiresAt" DATE,
        "refreshTokenExpiresAt" DATE,
        "scope" TEXT,
        "password" TEXT,
        "createdAt" DATE NOT NULL,
        "updatedAt" DATE NOT NULL
      );
      -- One external login (GitHub's numeric user id) belongs to one user at most.
      CREATE UNIQUE INDEX auth_account_provider_login ON auth_account ("providerId", "accountId");
      CREATE TABLE auth_verification (
        "id" TEXT NOT NULL PRIMARY KEY,
        "identifier" TEXT NOT NULL,
        "value" TEXT NOT NULL,
        "expiresAt" DATE NOT NULL,
        "createdAt" DATE NOT NULL,
        "updatedAt" DATE NOT NULL
      );
      CREATE TABLE auth_two_factor (
        "id" TEXT NOT NULL PRIMARY KEY,
        "secret" TEXT NOT NULL,
        "backupCodes" TEXT NOT NULL,
        "userId" TEXT NOT NULL REFERENCES auth_user ("id") ON DELETE CASCADE,
        "verified" INTEGER,
        "failedVerificationCount" INTEGER,
        "lockedUntil" DATE
      );
      CREATE INDEX auth_session_userId_idx ON auth_session ("userId");
      CREATE INDEX auth_account_userId_idx ON auth_account ("userId");
      CREATE INDEX auth_verification_identifier_idx ON auth_verification ("identifier");
      CREATE INDEX auth_two_factor_secret_idx ON auth_two_factor ("secret");
      CREATE INDEX auth_two_factor_userId_idx ON auth_two_factor ("userId");

      -- A user who signed up (when an admin allows sign-up) waits, inactive, until an admin approves them.
      ALTER TABLE users ADD COLUMN pending_approval INTEGER NOT NULL DEFAULT 0 CHECK (pending_approval IN (0, 1));

      -- Sign-in links for a first password: single use, expiring; only the token's SHA-256 is kept.
      CREATE TABLE auth_invites (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_sha256 TEXT NOT NULL UNIQUE,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX auth_invites_by_user ON auth_invites (user_id);

      -- Failed sign-ins per account and per address, for backoff and lockout (NIST 800-63B 5.2.2).
      CREATE TABLE auth_throttle (
        subject TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure_at TEXT NOT NULL,
        blocked_until TEXT,
        locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1))
      );

      -- One row at most; none means the defaults. The GitHub client secret is not here (secrets/ keeps it, encrypted).
      CREATE TABLE auth_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        settings_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE auth_settings;
      DROP TABLE auth_throttle;
      DROP TABLE auth_invites;
      ALTER TABLE users DROP COLUMN pending_approval;
      DROP TABLE auth_two_factor;
      DROP TABLE auth_verification;
      DROP TABLE auth_account;
      DROP TABLE auth_session;
      DROP TABLE auth_user;
    `,
  },
  {
    version: 6,
    name: 'portal preferences, slot share links and the audit log',
    up: `
      -- Per user, validated with a versioned schema (contract/portal.ts) before it is written.
      CREATE TABLE user_prefs (
        user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        prefs_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      -- Share links: only the token's SHA-256 is kept. Revoked and expired rows stay for the list and the audit.
      CREATE TABLE slot_shares (
        id TEXT PRIMARY KEY,
        slot_id TEXT NOT NULL REFERENCES slots(id) ON DELETE CASCADE,
        token_sha256 TEXT NOT NULL UNIQUE,
        mode TEXT NOT NULL CHECK (mode IN ('read', 'write')),
        label TEXT,
        expires_at TEXT NOT NULL,
        max_viewers INTEGER CHECK (max_viewers IS NULL OR max_viewers > 0),
        sign_in_required INTEGER NOT NULL CHECK (sign_in_required IN (0, 1)),
        allowed_user_ids_json TEXT NOT NULL DEFAULT '[]',
        frame_ancestors_json TEXT NOT NULL DEFAULT '[]',
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_opened_at TEXT,
        opens INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX slot_shares_by_slot ON slot_shares (slot_id, created_at);

      -- Who did what, when, from where: sign-ins and their failures, password, key and session changes, share opens,
      -- admin actions. Kept a year.
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor_type TEXT NOT NULL CHECK (actor_type IN ('admin', 'user', 'anonymous', 'system')),
        actor_id TEXT,
        action TEXT NOT NULL,
        target TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
        ip TEXT,
        user_agent TEXT,
        detail_json TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX audit_log_by_time ON audit_log (at);
      CREATE INDEX audit_log_by_actor ON audit_log (actor_id, at) WHERE actor_id IS NOT NULL;
      CREATE INDEX audit_log_by_action ON audit_log (action, at);
    `,
    down: `
      DROP TABLE audit_log;
      DROP TABLE slot_shares;
      DROP TABLE user_prefs;
    `,
  },
  {
    version: 7,
    name: 'alerts: history, rules and delivery state',
    up: `
      -- Alerts (a rule firing for a subject) and recovery events, kept 30 days. At most one firing row per rule and
      -- subject; a row resolves in place when its condition clears.
      CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('alert', 'recovery')),
        rule TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('firing', 'resolved', 'info')),
        fired_at TEXT NOT NULL,
        resolved_at TEXT,
        last_seen_at TEXT NOT NULL,
        occurrences INTEGER NOT NULL DEFAULT 1,
        notified INTEGER NOT NULL DEFAULT 0 CHECK (notified IN (0, 1)),
        last_notified_at TEXT,
        read_at TEXT
      );
      CREATE INDEX alerts_by_time ON alerts (fired_at);
      CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule, subject) WHERE state = 'firing';
      CREATE INDEX alerts_unread ON alerts (id) WHERE read_at IS NULL;

      -- Rules the admin changed (absent: the default). Thresholds as JSON, validated by contract/alerts.ts.
      CREATE TABLE alert_rules (
        id TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        params_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      -- Small state: the webhook's format and last delivery, the agent's last run. Never the webhook's URL (a secret
      -- kept in the secrets folder).
      CREATE TABLE alert_state (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE alert_state;
      DROP TABLE alert_rules;
      DROP TABLE alerts;
    `,
  },
  {
    version: 8,
    name: 'backup settings and the panel key backups seal secrets to',
    up: `
      -- One row (id 1): the schedule, retention, whether slot homes go in, the panel's X25519 public key (never a
      -- private key) and the outcome of the last run. The backups themselves are files under <data dir>/backups.
      CREATE TABLE backup_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        interval_hours INTEGER NOT NULL,
        keep_daily INTEGER NOT NULL,
        keep_weekly INTEGER NOT NULL,
        include_homes INTEGER NOT NULL CHECK (include_homes IN (0, 1)),
        public_key TEXT,
        key_id TEXT,
        key_registered_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        updated_at TEXT NOT NULL
      );
    `,
    down: `
      DROP TABLE backup_settings;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = migrations[migrations.length - 1]!.version;
