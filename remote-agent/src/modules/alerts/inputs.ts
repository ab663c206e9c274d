import type { QuotaStatus } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import type { QuotaService } from '../usage/quotas.js';

/** Live users with quotas of their own, and where each stands (the quota_80 / quota_100 rules). */
export function quotaUsers(
  db: Db,
  quotas: Pick<QuotaService, 'status'>,
): Array<{ userId: string; username: string; quotas: QuotaStatus[] }> {
  const rows = db
    .prepare(
      `SELECT DISTINCT u.id AS id, u.username AS username FROM quotas q JOIN users u ON u.id = q.subject_id
       WHERE q.subject_type = 'user' AND u.deleted_at IS NULL AND u.active = 1`,
    )
    .all() as Array<{ id: string; username: string }>;
  return rows.map((row) => ({ userId: row.id, username: row.username, quotas: quotas.status('user', row.id) }));
}
