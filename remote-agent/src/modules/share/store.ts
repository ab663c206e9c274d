import { createHash } from 'node:crypto';
import type { Db } from '../../db/database.js';
import type { ShareMode } from '../../contract/index.js';

/** A share as stored: the token only as its SHA-256. */
export interface ShareRow {
  id: string;
  slotId: string;
  mode: ShareMode;
  label: string | null;
  expiresAt: string;
  maxViewers: number | null;
  signInRequired: boolean;
  allowedUserIds: string[];
  frameAncestors: string[];
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  lastOpenedAt: string | null;
  opens: number;
}

interface RawShare {
  id: string;
  slot_id: string;
  mode: ShareMode;
  label: string | null;
  expires_at: string;
  max_viewers: number | null;
  sign_in_required: number;
  allowed_user_ids_json: string;
  frame_ancestors_json: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  last_opened_at: string | null;
  opens: number;
}

export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('hex');

const toRow = (raw: RawShare): ShareRow => ({
  id: raw.id,
  slotId: raw.slot_id,
  mode: raw.mode,
  label: raw.label,
  expiresAt: raw.expires_at,
  maxViewers: raw.max_viewers,
  signInRequired: raw.sign_in_required === 1,
  allowedUserIds: JSON.parse(raw.allowed_user_ids_json) as string[],
  frameAncestors: JSON.parse(raw.frame_ancestors_json) as string[],
  createdBy: raw.created_by,
  createdAt: raw.created_at,
  revokedAt: raw.revoked_at,
  lastOpenedAt: raw.last_opened_at,
  opens: raw.opens,
});

/** The slot_shares table (schema 6). */
export class ShareStore {
  constructor(private readonly db: Db) {}

  /** Whether a user exists, is active and not deleted (an owner's shares work only while they are). */
  userActive(userId: string): boolean {
    const row = this.db.prepare('SELECT active, deleted_at FROM users WHERE id = ?').get(userId) as
      { active: number; deleted_at: string | null } | undefined;
    return row !== undefined && row.active === 1 && row.deleted_at === null;
  }

  insert(row: Omit<ShareRow, 'revokedAt' | 'lastOpenedAt' | 'opens'>, tokenSha256: string): void {
    this.db
      .prepare(
        `INSERT INTO slot_shares (id, slot_id, token_sha256, mode, label, expires_at, max_viewers, sign_in_required,
           allowed_user_ids_json, frame_ancestors_json, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.id,
        row.slotId,
        tokenSha256,
        row.mode,
        row.label,
        row.expiresAt,
        row.maxViewers,
        row.signInRequired ? 1 : 0,
        JSON.stringify(row.allowedUserIds),
        JSON.stringify(row.frameAncestors),
        row.createdBy,
        row.createdAt,
      );
  }

  get(id: string): ShareRow | null {
    const raw = this.db.prepare('SELECT * FROM slot_shares WHERE id = ?').get(id) as RawShare | undefined;
    return raw ? toRow(raw) : null;
  }

  byToken(token: string): ShareRow | null {
    const raw = this.db.prepare('SELECT * FROM slot_shares WHERE token_sha256 = ?').get(tokenDigest(token)) as
      RawShare | undefined;
    return raw ? toRow(raw) : null;
  }

  /** Newest first. */
  listForSlot(slotId: string): ShareRow[] {
    return (
      this.db
        .prepare('SELECT * FROM slot_shares WHERE slot_id = ? ORDER BY created_at DESC, rowid DESC')
        .all(slotId) as RawShare[]
    ).map(toRow);
  }

  revoke(id: string, at: string): void {
    this.db.prepare('UPDATE slot_shares SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
  }

  noteOpened(id: string, at: string): void {
    this.db.prepare('UPDATE slot_shares SET last_opened_at = ?, opens = opens + 1 WHERE id = ?').run(at, id);
  }
}
