import type { FastifyInstance } from 'fastify';
import { adminApi, AgentErrorCode } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute } from '../../http/route.js';
import type { Gateway } from './gateway.js';
import type { RequestLog } from './request-log.js';
import type { GatewaySettings, UpstreamKeyStore } from './settings.js';
import { testUpstream } from './upstream-test.js';

export interface GatewayAdminDeps {
  /** Null when the public listener is disabled in the config: settings still apply once it is enabled. */
  gateway: Gateway | null;
  settings: GatewaySettings;
  upstreamKey: UpstreamKeyStore;
  users: { get(id: string): { id: string; active: boolean; deleted: boolean; username: string } };
  disabledStatus: () => ReturnType<Gateway['status']>;
  requestLog: RequestLog;
  /** Where the upstream test calls (the gateway's upstream). */
  upstreamBaseUrl: string;
  upstreamTestTimeoutMs?: number;
}

export function registerGatewayAdminRoutes(app: FastifyInstance, deps: GatewayAdminDeps): void {
  const status = (): ReturnType<Gateway['status']> => deps.gateway?.status() ?? deps.disabledStatus();
  bindRoute(app, adminApi.gatewayStatus, () => status());
  bindRoute(app, adminApi.updateGateway, ({ body }) => {
    if (body.legacyMode) {
      const { enabled, userId } = body.legacyMode;
      if (enabled && userId) {
        const user = deps.users.get(userId);
        if (!user.active || user.deleted) {
          throw new AppError(
            AgentErrorCode.USER_DELETED,
            409,
            `User "${user.username}" is disabled or deleted; legacy requests need a working user. Enable the user or pick another.`,
          );
        }
      }
      deps.settings.legacyMode = { enabled, userId: enabled ? userId : null };
      app.log.warn({ enabled, userId }, 'gateway legacy mode changed');
    }
    if (body.defaultRateLimit) deps.settings.defaultRateLimit = body.defaultRateLimit;
    return status();
  });
  bindRoute(app, adminApi.setUpstreamKey, ({ body }) => {
    deps.upstreamKey.set(body.apiKey);
    app.log.info('gateway upstream key replaced');
    return status();
  });
  bindRoute(app, adminApi.testUpstream, async () => {
    const apiKey = deps.upstreamKey.get();
    if (apiKey === null) {
      throw new AppError(
        AgentErrorCode.GATEWAY_UPSTREAM_KEY_MISSING,
        409,
        "No organisation key to test: paste the organisation's API key under Upstream first.",
      );
    }
    const result = await testUpstream({
      baseUrl: deps.upstreamBaseUrl,
      apiKey,
      ...(deps.upstreamTestTimeoutMs ? { timeoutMs: deps.upstreamTestTimeoutMs } : {}),
    });
    app.log.info({ ok: result.ok, status: result.status, problem: result.problem }, 'upstream tested');
    return result;
  });
  // What is queued is written first, so that a refusal the admin just saw happen is in the answer.
  bindRoute(app, adminApi.listRefusals, ({ query }) => {
    deps.requestLog.flush();
    return deps.requestLog.list(query);
  });
  bindRoute(app, adminApi.countRefusals, ({ query }) => {
    deps.requestLog.flush();
    return deps.requestLog.count(query);
  });
}
