/**
 * The IPC contract of the alerts area (issue 13). Merged into `ipcContract` and `eventContract` in ./contract.ts.
 * Outputs are the agent's own schemas (remote-agent/src/contract/alerts.ts): main parses each answer with them.
 */
import { z } from 'zod';
import {
  AlertList,
  AlertRuleList,
  ListAlertsQuery,
  MarkAlertsReadBody,
  MarkAlertsReadResult,
  UpdateAlertRulesBody,
  UpdateWebhookBody,
  WebhookDelivery,
  WebhookSettings,
} from '../../../remote-agent/src/contract/index';

export type {
  Alert,
  AlertFilter,
  AlertList,
  AlertRule,
  AlertRuleId,
  AlertRuleList,
  UpdateAlertRulesBody,
  UpdateWebhookBody,
  WebhookDelivery,
  WebhookFormat,
  WebhookSettings,
} from '../../../remote-agent/src/contract/index';

const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });

export const alertsIpcContract = {
  'alerts:list': { input: ListAlertsQuery.extend({ hostId: HostId }), output: AlertList },
  'alerts:read': { input: z.strictObject({ hostId: HostId, mark: MarkAlertsReadBody }), output: MarkAlertsReadResult },
  'alerts:rules': { input: z.strictObject({ hostId: HostId }), output: AlertRuleList },
  'alerts:set-rules': {
    input: z.strictObject({ hostId: HostId, changes: UpdateAlertRulesBody }),
    output: AlertRuleList,
  },
  'alerts:webhook': { input: z.strictObject({ hostId: HostId }), output: WebhookSettings },
  /** The URL goes to main and on to the agent; nothing answers it back (only its host). */
  'alerts:set-webhook': {
    input: z.strictObject({ hostId: HostId, changes: UpdateWebhookBody }),
    output: WebhookSettings,
  },
  'alerts:test-webhook': { input: z.strictObject({ hostId: HostId }), output: WebhookDelivery },
};

export const AlertsChanged = z.object({
  hostId: HostId,
  /** What the bell shows for this host. */
  unread: z.int(),
  firing: z.int(),
});
export type AlertsChanged = z.infer<typeof AlertsChanged>;

export const alertsEventContract = {
  /** A connected host's unread or firing count changed (main polls every connected host). */
  'alerts:changed': AlertsChanged,
};
