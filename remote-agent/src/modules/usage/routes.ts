import type { FastifyInstance } from 'fastify';
import {
  adminApi,
  AgentErrorCode,
  USAGE_EXPORT_PATH,
  UsageExportQuery,
  type ApiKey,
  type User,
} from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute, toIssues } from '../../http/route.js';
import type { UsageQueries } from './queries.js';
import type { QuotaService } from './quotas.js';

/** What the usage routes need of the user service: each throws USER_NOT_FOUND / KEY_NOT_FOUND. */
export interface UserLookup {
  get(id: string): User | Promise<User>;
  getKey(keyId: string): ApiKey | Promise<ApiKey>;
}

export interface UsageRouteDeps {
  queries: UsageQueries;
  quotas: QuotaService;
  users: UserLookup;
  /** Default age of rows that POST /usage/archive moves (config usage.archiveAfterDays). */
  archiveAfterDays: number;
}

export function registerUsageRoutes(app: FastifyInstance, deps: UsageRouteDeps): void {
  const { queries, quotas, users } = deps;

  bindRoute(app, adminApi.usageSummary, ({ query }) => queries.summary(query));
  bindRoute(app, adminApi.usageRows, ({ query }) => queries.rows(query));
  bindRoute(app, adminApi.archiveUsage, ({ body }) => queries.archive(body.olderThanDays ?? deps.archiveAfterDays));

  bindRoute(app, adminApi.getUserQuotas, async ({ params }) => {
    await users.get(params.id);
    return { quotas: quotas.status('user', params.id) };
  });
  bindRoute(app, adminApi.setUserQuotas, async ({ params, body }) => {
    const user = await users.get(params.id);
    if (user.deleted) {
      throw new AppError(
        AgentErrorCode.USER_DELETED,
        409,
        `User ${user.username} is deleted: quotas apply to live users only.`,
      );
    }
    return { quotas: quotas.set('user', params.id, body.quotas) };
  });
  bindRoute(app, adminApi.getKeyQuotas, async ({ params }) => {
    await users.getKey(params.keyId);
    return { quotas: quotas.status('key', params.keyId) };
  });
  bindRoute(app, adminApi.setKeyQuotas, async ({ params, body }) => {
    await users.getKey(params.keyId);
    return { quotas: quotas.set('key', params.keyId, body.quotas) };
  });

  // Not a JSON endpoint: the body is streamed as it is read, so it is registered by hand with the same validation.
  app.get(USAGE_EXPORT_PATH, { config: { auth: 'admin' } }, (request, reply) => {
    const parsed = UsageExportQuery.safeParse(request.query);
    if (!parsed.success) {
      const issues = toIssues('query', parsed.error);
      const summary = issues.map((i) => `${i.path} ${i.message}`).join('; ');
      throw new AppError(AgentErrorCode.VALIDATION_FAILED, 400, `Invalid request: ${summary}`, issues);
    }
    const query = parsed.data;
    const stream = queries.exportStream(query);
    const day = (time: string): string => new Date(time).toISOString().slice(0, 10);
    const filename = `usage-${day(query.from)}-to-${day(query.to)}.${query.format}`;
    return reply
      .header('content-type', query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
      .header('content-disposition', `attachment; filename="${filename}"`)
      .header('cache-control', 'no-store')
      .send(stream);
  });
}
