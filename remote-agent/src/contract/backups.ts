/**
 * The admin API's contract for backups (issue 13): scheduled online backups of the agent's database, its secrets
 * encrypted to a key the panel holds, optional slot homes, download, upload and restore.
 */
import { z } from 'zod';
import { endpoint } from './http.js';

const API = '/api/v1';

/** A backup's id: the file's name without `.tar` (`backup-20261201T195400Z-3f9a` or `upload-...`). */
export const BackupId = z.string().regex(/^(backup|upload)-[0-9TZ]{16}-[0-9a-f]{4}$/, {
  message: 'is not a backup id (backup-<time>-<hex> or upload-<time>-<hex>); list them with GET /api/v1/backups',
});
export const BackupIdParams = z.strictObject({ id: BackupId });

export const BackupSettings = z.strictObject({
  /** Scheduled backups on (the default) or off; "Back up now" works either way. */
  enabled: z.boolean(),
  /** Hours between scheduled backups (24: daily). */
  intervalHours: z.int().min(1).max(168),
  /** Newest backup of each of the last N days with one. */
  keepDaily: z.int().min(1).max(60),
  /** Newest backup of each of the last N ISO weeks with one. */
  keepWeekly: z.int().min(0).max(52),
  /** Also tar each slot's home and agent-made work dir (caches left out). Refused on isolated hosts. */
  includeHomes: z.boolean(),
});
export type BackupSettings = z.infer<typeof BackupSettings>;

/**
 * How the secrets part is sealed: a fresh X25519 key pair per backup, ECDH with the panel's public key, HKDF-SHA256
 * to a wrapping key, which seals (AES-256-GCM) a random data key; the data key seals the secrets. None of this is
 * secret: only the panel's private key opens it.
 */
export const SecretsEnvelope = z.strictObject({
  alg: z.literal('x25519-hkdf-sha256-aes256gcm'),
  /** The recipient's key id: the first 16 hex of SHA-256 of its raw public key. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  ephemeralPublicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  salt: z.string().regex(/^[A-Za-z0-9+/]{22}==$/),
  /** iv (12) | tag (16) | sealed data key (32), base64. */
  wrappedKey: z.string().regex(/^[A-Za-z0-9+/]{80}$/),
});
export type SecretsEnvelope = z.infer<typeof SecretsEnvelope>;

export const BackupPart = z.object({ name: z.string(), size: z.number(), sha256: z.string() });

export const BackupManifest = z.object({
  format: z.literal('slotdeck-backup'),
  /** 2: every part (database, secrets, homes) sealed with the data key of `secrets.envelope`; the manifest signed. */
  formatVersion: z.literal(2),
  agentVersion: z.string(),
  schemaVersion: z.int(),
  createdAt: z.string(),
  /** The data dir it was taken from: managed slot paths under it are moved to the restoring agent's. */
  sourceDataDir: z.string(),
  hostname: z.string(),
  /** Rows per table at the snapshot (the copy had the same when verified). */
  counts: z.record(z.string(), z.int()),
  parts: z.array(BackupPart),
  secrets: z.object({
    included: z.boolean(),
    /** Why not, when not (no key registered). */
    reason: z.string().nullable(),
    /** Names of the files in the sealed part (not their contents). */
    files: z.array(z.string()),
    envelope: SecretsEnvelope.nullable(),
  }),
  homes: z.object({ included: z.boolean(), reason: z.string().nullable(), slots: z.array(z.string()) }),
});
export type BackupManifest = z.infer<typeof BackupManifest>;

export const BackupInfo = z.object({
  id: BackupId,
  origin: z.enum(['scheduled', 'manual', 'cli', 'upload']),
  createdAt: z.string(),
  size: z.number(),
  /** integrity_check ok, row counts equal to the source's at the snapshot, every part's SHA-256 checked. */
  verified: z.boolean(),
  manifest: BackupManifest,
  /** The Ed25519 key (raw, base64) of the agent that made it, and its signature over the canonical manifest. */
  signer: z.object({ publicKey: z.string(), signature: z.string() }),
});
export type BackupInfo = z.infer<typeof BackupInfo>;

export const BackupKeyStatus = z.object({
  registered: z.boolean(),
  keyId: z.string().nullable(),
  registeredAt: z.string().nullable(),
});
export type BackupKeyStatus = z.infer<typeof BackupKeyStatus>;

export const BackupRunStatus = z.object({
  running: z.boolean(),
  lastSuccessAt: z.string().nullable(),
  lastError: z.string().nullable(),
  lastErrorAt: z.string().nullable(),
  nextAt: z.string().nullable(),
});

export const BackupList = z.object({
  backups: z.array(BackupInfo),
  settings: BackupSettings,
  key: BackupKeyStatus,
  status: BackupRunStatus,
  /** Slot homes cannot be read on this host (isolated: slots run as accounts of their own). */
  homesSupported: z.boolean(),
});
export type BackupList = z.infer<typeof BackupList>;

/** X25519 public key, raw 32 bytes in base64. */
export const RegisterBackupKeyBody = z.strictObject({
  publicKey: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, { message: 'must be a raw X25519 public key (32 bytes, base64)' }),
});

export const RestoreBody = z.strictObject({
  /** The backup's data key (base64, 32 bytes), unwrapped by the panel with its private key; for this restore only. */
  dataKey: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, { message: 'must be 32 bytes in base64' })
    .optional(),
  /** Restore without the secrets part (they stay as they are on this host). */
  skipSecrets: z.boolean().default(false),
  /** Signing keys (raw Ed25519, base64) of the hosts the panel knows: the backup must be signed by one of them. */
  trustedSigners: z
    .array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/))
    .max(1000)
    .optional(),
  /** The admin confirmed restoring a backup from a host the panel does not know (never a bad signature). */
  allowUnknownSigner: z.boolean().default(false),
});
export type RestoreBody = z.input<typeof RestoreBody>;

export const RestoreAccepted = z.object({
  restarting: z.literal(true),
  /** Secret files that come back from the backup. */
  secretsRestored: z.array(z.string()),
  /** Kept from this host: its own admin token (the panel stays connected). */
  secretsKept: z.array(z.string()),
  schemaFrom: z.int(),
  schemaTo: z.int(),
  message: z.string(),
});
export type RestoreAccepted = z.infer<typeof RestoreAccepted>;

export const BackupSigningKey = z.object({ publicKey: z.string(), keyId: z.string() });
export type BackupSigningKey = z.infer<typeof BackupSigningKey>;

export const BACKUP_FILE_PATH = `${API}/backups/:id/file`;
export const BACKUP_UPLOAD_PATH = `${API}/backups/uploads`;
/** Largest upload the agent takes (a database and homes of a team host fit). */
export const BACKUP_UPLOAD_MAX_BYTES = 8 * 1024 * 1024 * 1024;

export const backupsApi = {
  listBackups: endpoint({
    method: 'GET',
    path: `${API}/backups`,
    auth: 'admin',
    response: BackupList,
    status: 200,
    summary: 'Backups on this host with their manifests, the schedule and the key',
  }),
  runBackup: endpoint({
    method: 'POST',
    path: `${API}/backups`,
    auth: 'admin',
    response: BackupInfo,
    status: 201,
    summary: 'Back up now (answers when it is written and verified)',
  }),
  getBackupSettings: endpoint({
    method: 'GET',
    path: `${API}/backups/settings`,
    auth: 'admin',
    response: BackupSettings,
    status: 200,
    summary: 'Schedule, retention and whether slot homes are included',
  }),
  setBackupSettings: endpoint({
    method: 'PUT',
    path: `${API}/backups/settings`,
    auth: 'admin',
    body: BackupSettings,
    response: BackupSettings,
    status: 200,
    summary: 'Change the schedule, retention or homes',
  }),
  registerBackupKey: endpoint({
    method: 'PUT',
    path: `${API}/backups/key`,
    auth: 'admin',
    body: RegisterBackupKeyBody,
    response: BackupKeyStatus,
    status: 200,
    summary: "The panel's public key the secrets of later backups are sealed to",
  }),
  getBackupSigningKey: endpoint({
    method: 'GET',
    path: `${API}/backups/signing-key`,
    auth: 'admin',
    response: BackupSigningKey,
    status: 200,
    summary: "This host's Ed25519 key its backups are signed with (public; the panel pins it)",
  }),
  deleteBackup: endpoint({
    method: 'DELETE',
    path: `${API}/backups/:id`,
    auth: 'admin',
    params: BackupIdParams,
    response: z.object({ deleted: z.literal(true) }),
    status: 200,
    summary: 'Delete a backup file',
  }),
  restoreBackup: endpoint({
    method: 'POST',
    path: `${API}/backups/:id/restore`,
    auth: 'admin',
    params: BackupIdParams,
    body: RestoreBody,
    response: RestoreAccepted,
    status: 202,
    summary: 'Check a backup, stage it, and restart the agent onto it',
  }),
};
