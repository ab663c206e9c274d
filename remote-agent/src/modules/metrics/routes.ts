import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AgentErrorCode, METRICS_PATH, metricsAdminApi, type MetricsSettings } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute } from '../../http/route.js';
import type { AgentMetrics } from './metrics.js';
import type { PublicMetricsToken } from './public-token.js';
import type { MetricsSeriesSampler } from './series.js';

export interface MetricsRouteDeps {
  metrics: AgentMetrics;
  series: MetricsSeriesSampler;
  token: PublicMetricsToken;
  /** The gateway's URL, when it listens (where a scraper elsewhere finds /metrics). */
  gatewayUrl: () => string | null;
  /**
   * Whether the public listener's traffic is encrypted or stays on this host: TLS on the gateway, an https
   * portal.publicUrl (a TLS proxy in front), or a loopback address. Otherwise the bearer token would cross the
   * network in the clear, so public metrics are not enabled.
   */
  publicListenerSecure: () => boolean;
}

/** The public listener's address is this machine only (what a scraper on it reads never leaves it). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

async function sendExposition(metrics: AgentMetrics, reply: FastifyReply): Promise<string> {
  const { contentType, body } = await metrics.exposition();
  void reply.header('content-type', contentType).header('cache-control', 'no-store');
  return body;
}

/** Admin listener: /metrics (admin token), the panel's series and the public /metrics settings. */
export function registerMetricsAdminRoutes(app: FastifyInstance, deps: MetricsRouteDeps): void {
  const settings = (): MetricsSettings => ({
    publicEnabled: deps.token.enabled,
    tokenCreatedAt: deps.token.createdAt,
    publicUrl: deps.token.enabled && deps.gatewayUrl() ? `${deps.gatewayUrl()}${METRICS_PATH}` : null,
  });
  app.route({
    method: 'GET',
    url: METRICS_PATH,
    config: { auth: 'admin' },
    handler: (_request, reply) => sendExposition(deps.metrics, reply),
  });
  bindRoute(app, metricsAdminApi.metricsSeries, ({ query }) => deps.series.series(query.since));
  bindRoute(app, metricsAdminApi.getMetricsSettings, () => settings());
  bindRoute(app, metricsAdminApi.updateMetricsSettings, ({ body }) => {
    let token: string | null = null;
    if (body.action !== 'disable' && !deps.publicListenerSecure())
      throw new AppError(
        AgentErrorCode.METRICS_PUBLIC_INSECURE,
        409,
        'The public listener speaks plain HTTP on a network address, so the metrics token would cross the network in the clear. Configure TLS first (gateway.tlsCertFile and gateway.tlsKeyFile), or put a TLS proxy in front and set portal.publicUrl to its https:// address; then enable public metrics.',
      );
    if (body.action === 'disable') deps.token.disable();
    else if (body.action === 'rotate' || !deps.token.enabled) token = deps.token.issue();
    return { ...settings(), token };
  });
}

/**
 * Public listener: /metrics for a scraper elsewhere, only once an admin enabled it, and only with its own bearer
 * token (an end user's API key or the admin token is refused like any wrong token). Answers in the agent's error
 * shape.
 */
export function registerPublicMetricsRoute(
  app: FastifyInstance,
  deps: Pick<MetricsRouteDeps, 'metrics' | 'token'>,
): void {
  const refuse = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply =>
    reply.status(status).header('cache-control', 'no-store').send({ error: { code, message } });
  app.get(METRICS_PATH, async (request: FastifyRequest, reply: FastifyReply) => {
    if (!deps.token.enabled) {
      return refuse(
        reply,
        404,
        AgentErrorCode.METRICS_NOT_ENABLED,
        'Metrics are not served on this listener. An admin can enable them in the panel (Health, Public metrics), which shows a bearer token for the scraper.',
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!match || !deps.token.verify(match[1]!)) {
      void reply.header('www-authenticate', 'Bearer realm="slotdeck-metrics"');
      return refuse(
        reply,
        401,
        AgentErrorCode.METRICS_TOKEN_INVALID,
        'Send the metrics token as "Authorization: Bearer <token>" (the one shown when metrics were enabled or the token last rotated). Ask the admin for a new one if it is lost.',
      );
    }
    return sendExposition(deps.metrics, reply);
  });
}
