import type { FastifyInstance } from 'fastify';
import { AgentErrorCode, AUDIT_PATH, AuditExportQuery, AuditListQuery } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { toIssues } from '../../http/route.js';
import type { AuditLog } from './audit-log.js';

/** GET /api/v1/audit: a page of entries (JSON), or with `format=jsonl|csv` the filtered entries as a download. */
export function registerAuditRoutes(app: FastifyInstance, audit: AuditLog): void {
  app.get(AUDIT_PATH, { config: { auth: 'admin' } }, (request, reply) => {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const exporting = 'format' in query;
    const parsed = (exporting ? AuditExportQuery : AuditListQuery).safeParse(query);
    if (!parsed.success) {
      const issues = toIssues('query', parsed.error);
      throw new AppError(
        AgentErrorCode.VALIDATION_FAILED,
        400,
        `Invalid request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
        issues,
      );
    }
    if (!exporting) return audit.list(parsed.data);
    const { format, ...filter } = parsed.data as { format: 'jsonl' | 'csv' } & Record<string, string>;
    return reply
      .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="audit.${format}"`)
      .header('cache-control', 'no-store')
      .send(audit.exportStream(filter, format));
  });
}
