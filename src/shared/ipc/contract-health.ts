/**
 * The IPC contract of the health area (issue 13): a host's health details, the short series the dashboard charts, and
 * the public /metrics settings. Merged into `ipcContract` and `eventContract` in ./contract.ts. Outputs are the
 * agent's own schemas (remote-agent/src/contract/health.ts, metrics.ts): main parses each answer with them.
 */
import { z } from 'zod';
import {
  HealthDetails,
  MetricsSeries,
  MetricsSettings,
  MetricsSettingsUpdate,
  UpdateMetricsSettingsBody,
} from '../../../remote-agent/src/contract/index';

export type {
  HealthDetails,
  MetricsSample,
  MetricsSeries,
  MetricsSettings,
  MetricsSettingsUpdate,
} from '../../../remote-agent/src/contract/index';

const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });

export const healthIpcContract = {
  'health:details': { input: z.strictObject({ hostId: HostId }), output: HealthDetails },
  'health:series': {
    input: z.strictObject({ hostId: HostId, since: z.iso.datetime({ offset: true }).optional() }),
    output: MetricsSeries,
  },
  'health:metrics-settings': { input: z.strictObject({ hostId: HostId }), output: MetricsSettings },
  /** enable/rotate answer the scrape token once, for the admin to copy; nothing keeps it in the panel. */
  'health:set-metrics': {
    input: z.strictObject({ hostId: HostId, action: UpdateMetricsSettingsBody.shape.action }),
    output: MetricsSettingsUpdate,
  },
};
export const healthEventContract = {};
