import { metricsAdminApi } from '../../../remote-agent/src/contract/index';
import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type HealthChannel = 'health:details' | 'health:series' | 'health:metrics-settings' | 'health:set-metrics';

/**
 * The health area's IPC handlers (issue 13): each a call to the host's agent with the admin token, which stays in
 * main. The public metrics token goes back once to the page that asked for it, and is kept nowhere here.
 */
export function createHealthHandlers(services: HandlerServices): Pick<Handlers, HealthChannel> {
  const agent = (hostId: string) => services.hosts.client(hostId);
  return {
    'health:details': ({ hostId }, { signal }) => agent(hostId).call(metricsAdminApi.healthDetails, {}, signal),
    'health:series': ({ hostId, since }, { signal }) =>
      agent(hostId).call(metricsAdminApi.metricsSeries, { query: since === undefined ? {} : { since } }, signal),
    'health:metrics-settings': ({ hostId }, { signal }) =>
      agent(hostId).call(metricsAdminApi.getMetricsSettings, {}, signal),
    'health:set-metrics': ({ hostId, action }, { signal }) =>
      agent(hostId).call(metricsAdminApi.updateMetricsSettings, { body: { action } }, signal),
  };
}
