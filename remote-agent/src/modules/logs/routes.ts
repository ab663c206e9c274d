import type { FastifyInstance } from 'fastify';
import { AgentErrorCode, LOG_DOWNLOAD_PATH, LogSourceParams, logsApi } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute, toIssues } from '../../http/route.js';
import type { LogService } from './service.js';

/** GET /api/v1/logs (sources), /api/v1/logs/:source (a page of lines), /api/v1/logs/:source/download (all of it). */
export function registerLogRoutes(app: FastifyInstance, logs: LogService): void {
  bindRoute(app, logsApi.listLogSources, () => ({ sources: logs.sources() }));
  bindRoute(app, logsApi.readLog, ({ params, query }) => logs.page(params.source, query));
  app.get(LOG_DOWNLOAD_PATH, { config: { auth: 'admin' } }, (request, reply) => {
    const parsed = LogSourceParams.safeParse(request.params);
    if (!parsed.success) {
      const issues = toIssues('params', parsed.error);
      throw new AppError(
        AgentErrorCode.VALIDATION_FAILED,
        400,
        `Invalid request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
        issues,
      );
    }
    const { stream, filename } = logs.download(parsed.data.source);
    return reply
      .header('content-type', 'text/plain; charset=utf-8')
      .header('content-disposition', `attachment; filename="${filename}"`)
      .header('cache-control', 'no-store')
      .send(stream);
  });
}
