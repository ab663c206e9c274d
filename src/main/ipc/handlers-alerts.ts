import { alertsApi } from '../../../remote-agent/src/contract/index';
import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type AlertsChannel =
  | 'alerts:list'
  | 'alerts:read'
  | 'alerts:rules'
  | 'alerts:set-rules'
  | 'alerts:webhook'
  | 'alerts:set-webhook'
  | 'alerts:test-webhook';

/**
 * The alerts area's IPC handlers (issue 13): each a call to the host's agent with the admin token, which stays in
 * main. Marking alerts read tells every window at once (`alerts:changed`), so each bell agrees.
 */
export function createAlertsHandlers(services: HandlerServices): Pick<Handlers, AlertsChannel> {
  const agent = (hostId: string) => services.hosts.client(hostId);
  return {
    'alerts:list': ({ hostId, ...query }, { signal }) => agent(hostId).call(alertsApi.listAlerts, { query }, signal),
    'alerts:read': async ({ hostId, mark }, { signal }) => {
      const result = await agent(hostId).call(alertsApi.markAlertsRead, { body: mark }, signal);
      const counts = await agent(hostId).call(alertsApi.listAlerts, { query: { filter: 'firing', limit: 1 } }, signal);
      services.events?.emit('alerts:changed', { hostId, unread: counts.unread, firing: counts.firing });
      return result;
    },
    'alerts:rules': ({ hostId }, { signal }) => agent(hostId).call(alertsApi.getAlertRules, {}, signal),
    'alerts:set-rules': ({ hostId, changes }, { signal }) =>
      agent(hostId).call(alertsApi.setAlertRules, { body: changes }, signal),
    'alerts:webhook': ({ hostId }, { signal }) => agent(hostId).call(alertsApi.getWebhook, {}, signal),
    'alerts:set-webhook': ({ hostId, changes }, { signal }) =>
      agent(hostId).call(alertsApi.setWebhook, { body: changes }, signal),
    'alerts:test-webhook': ({ hostId }, { signal }) => agent(hostId).call(alertsApi.testWebhook, {}, signal),
  };
}
