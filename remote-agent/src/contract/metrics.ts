import { z } from 'zod';
import { endpoint } from './http.js';
import { HealthDetails } from './health.js';

/** The admin API's contract for health details, the Prometheus exposition and the panel's short series. */

/** Public /metrics (on the gateway's listener, for a scraper elsewhere): off unless an admin enables it. */
export const MetricsSettings = z.object({
  publicEnabled: z.boolean(),
  /** When the current scrape token was made; null while none is set. */
  tokenCreatedAt: z.string().nullable(),
  /** Where a scraper reaches it (the gateway's URL + /metrics), when the gateway listens. */
  publicUrl: z.string().nullable(),
});
export type MetricsSettings = z.infer<typeof MetricsSettings>;

/**
 * `enable` makes a new token when none is set, `rotate` always makes a new one (the old one stops working at once),
 * `disable` turns the public route off and forgets the token.
 */
export const UpdateMetricsSettingsBody = z.strictObject({ action: z.enum(['enable', 'disable', 'rotate']) });
export type UpdateMetricsSettingsBody = z.infer<typeof UpdateMetricsSettingsBody>;

/** The answer to enable/rotate carries the token once; the agent keeps only its SHA-256. */
export const MetricsSettingsUpdate = MetricsSettings.extend({ token: z.string().nullable() });
export type MetricsSettingsUpdate = z.infer<typeof MetricsSettingsUpdate>;

/** One sample of the panel's short series (every 10 s, the last hour). Rates are over the 10 s before `at`. */
export const MetricsSample = z.object({
  at: z.string(),
  requestsPerS: z.number(),
  errorsPerS: z.number(),
  tokensPerMin: z.number(),
  slots: z.record(z.string(), z.int()),
  /** The agent process's CPU use, percent of one core. */
  agentCpuPercent: z.number(),
  hostMemoryPercent: z.number(),
});
export type MetricsSample = z.infer<typeof MetricsSample>;

export const MetricsSeries = z.object({ intervalS: z.int(), samples: z.array(MetricsSample) });
export type MetricsSeries = z.infer<typeof MetricsSeries>;

export const MetricsSeriesQuery = z.strictObject({
  /** Only samples after this instant (ISO 8601): the panel asks for what is new since its last sample. */
  since: z.iso.datetime({ offset: true }).optional(),
});

const API = '/api/v1';

/** Prometheus text is not JSON: the two /metrics routes are bound by hand (modules/metrics/routes.ts). */
export const METRICS_PATH = '/metrics';

export const metricsAdminApi = {
  healthDetails: endpoint({
    method: 'GET',
    path: `${API}/health/details`,
    auth: 'admin',
    response: HealthDetails,
    status: 200,
    summary: 'Database, PM2, slots, disk, memory, load, upstream, backup age and certificate, with problems found',
  }),
  metricsSeries: endpoint({
    method: 'GET',
    path: `${API}/metrics/series`,
    auth: 'admin',
    query: MetricsSeriesQuery,
    response: MetricsSeries,
    status: 200,
    summary: 'The last hour of requests/s, errors/s, tokens/min, slots by state, CPU and memory, every 10 s',
  }),
  getMetricsSettings: endpoint({
    method: 'GET',
    path: `${API}/metrics/settings`,
    auth: 'admin',
    response: MetricsSettings,
    status: 200,
    summary: 'Whether /metrics is served on the public listener',
  }),
  updateMetricsSettings: endpoint({
    method: 'PUT',
    path: `${API}/metrics/settings`,
    auth: 'admin',
    body: UpdateMetricsSettingsBody,
    response: MetricsSettingsUpdate,
    status: 200,
    summary: 'Enable, disable or rotate the bearer token of the public /metrics (the token is shown once)',
  }),
};
