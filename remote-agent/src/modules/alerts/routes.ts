import type { FastifyInstance } from 'fastify';
import { AgentErrorCode, alertsApi } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute } from '../../http/route.js';
import type { AlertService } from './service.js';
import type { AlertWebhook } from './webhook.js';

/** The admin routes of alerts: history and read state, rules, the webhook and its test. */
export function registerAlertRoutes(app: FastifyInstance, deps: { alerts: AlertService; webhook: AlertWebhook }): void {
  const { alerts, webhook } = deps;
  bindRoute(app, alertsApi.listAlerts, ({ query }) => alerts.list(query));
  bindRoute(app, alertsApi.markAlertsRead, ({ body }) => alerts.markRead(body));
  bindRoute(app, alertsApi.getAlertRules, () => ({ rules: alerts.rules.list() }));
  bindRoute(app, alertsApi.setAlertRules, async ({ body }) => {
    const rules = alerts.rules.update(body);
    // A changed threshold or a disabled rule takes effect now, not at the next tick.
    await alerts.evaluate();
    return { rules };
  });
  bindRoute(app, alertsApi.getWebhook, () => webhook.settings());
  bindRoute(app, alertsApi.setWebhook, ({ body }) => webhook.update(body));
  bindRoute(app, alertsApi.testWebhook, async () => {
    const delivery = await webhook.test();
    if (!delivery)
      throw new AppError(
        AgentErrorCode.ALERT_WEBHOOK_NOT_SET,
        409,
        `No alert webhook is set. Set one first (PUT ${alertsApi.setWebhook.path} with {"url": "https://…"}).`,
      );
    if (!delivery.ok)
      throw new AppError(
        AgentErrorCode.ALERT_WEBHOOK_FAILED,
        502,
        `The test alert was not delivered: ${delivery.error ?? 'unknown error'}. Check the URL and that the receiver accepts JSON POSTs.`,
      );
    return delivery;
  });
}
