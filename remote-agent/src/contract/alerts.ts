// Alerts (issue 13): rules with defaults the admin may change, a history kept 30 days with read state for the
// panel's bell, recovery events (what healed itself), and a webhook whose URL is a secret (never answered whole).
import { z } from 'zod';
import { endpoint } from './http.js';

const API = '/api/v1';

export const AlertRuleId = z.enum([
  'slot_failed',
  'slot_restarting',
  'disk_low',
  'memory_high',
  'upstream_errors',
  'quota_80',
  'quota_100',
  'backup_stale',
  'cert_expiring',
  'agent_restarted',
  'storage_full',
]);
export type AlertRuleId = z.infer<typeof AlertRuleId>;

export const AlertSeverity = z.enum(['critical', 'warning', 'info']);
export type AlertSeverity = z.infer<typeof AlertSeverity>;

const whole = (min: number, max: number, unit: string) =>
  z
    .int({ message: `must be a whole number of ${unit}` })
    .min(min, { message: `at least ${min} ${unit}` })
    .max(max, { message: `at most ${max} ${unit}` });
const share = (min: number, max: number) =>
  z
    .number({ message: 'must be a number (a percentage)' })
    .min(min, { message: `at least ${min} %` })
    .max(max, { message: `at most ${max} %` });

/** Each rule's thresholds: names, bounds and defaults. A rule without thresholds takes `{}`. */
export const AlertRuleParams = {
  slot_failed: z.strictObject({}),
  slot_restarting: z.strictObject({ restarts: whole(1, 1000, 'restarts'), windowMinutes: whole(1, 1440, 'minutes') }),
  disk_low: z.strictObject({ freePercent: share(0, 100), freeGb: z.number().min(0).max(100_000) }),
  memory_high: z.strictObject({ usedPercent: share(1, 100) }),
  upstream_errors: z.strictObject({
    errorPercent: share(0.1, 100),
    windowMinutes: whole(1, 60, 'minutes'),
    /** Fewer requests than this in the window never fire (one failure of two is not an outage). */
    minRequests: whole(1, 100_000, 'requests'),
  }),
  quota_80: z.strictObject({ percent: share(1, 100) }),
  quota_100: z.strictObject({ percent: share(1, 1000) }),
  backup_stale: z.strictObject({ maxAgeHours: whole(1, 24 * 60, 'hours') }),
  cert_expiring: z.strictObject({ days: whole(1, 365, 'days') }),
  agent_restarted: z.strictObject({}),
  storage_full: z.strictObject({}),
} satisfies Record<AlertRuleId, z.ZodType>;

export const ALERT_RULE_DEFAULTS: { [K in AlertRuleId]: z.infer<(typeof AlertRuleParams)[K]> } = {
  slot_failed: {},
  slot_restarting: { restarts: 3, windowMinutes: 10 },
  disk_low: { freePercent: 10, freeGb: 2 },
  memory_high: { usedPercent: 90 },
  upstream_errors: { errorPercent: 5, windowMinutes: 5, minRequests: 20 },
  quota_80: { percent: 80 },
  quota_100: { percent: 100 },
  backup_stale: { maxAgeHours: 26 },
  cert_expiring: { days: 14 },
  agent_restarted: {},
  storage_full: {},
};

export const AlertRule = z.object({
  id: AlertRuleId,
  title: z.string(),
  /** When it fires and what to do about it. */
  description: z.string(),
  severity: AlertSeverity,
  enabled: z.boolean(),
  params: z.record(z.string(), z.number()),
  defaults: z.record(z.string(), z.number()),
});
export type AlertRule = z.infer<typeof AlertRule>;
export const AlertRuleList = z.object({ rules: z.array(AlertRule) });
export type AlertRuleList = z.infer<typeof AlertRuleList>;

const ruleChange = <K extends AlertRuleId, S extends z.ZodObject>(id: K, params: S) =>
  z.strictObject({ id: z.literal(id), enabled: z.boolean().optional(), params: params.partial().optional() });

/** Rules to change (the others keep theirs); `reset` puts a rule back to its defaults first. */
export const UpdateAlertRulesBody = z.strictObject({
  rules: z
    .array(
      z.discriminatedUnion('id', [
        ruleChange('slot_failed', AlertRuleParams.slot_failed),
        ruleChange('slot_restarting', AlertRuleParams.slot_restarting),
        ruleChange('disk_low', AlertRuleParams.disk_low),
        ruleChange('memory_high', AlertRuleParams.memory_high),
        ruleChange('upstream_errors', AlertRuleParams.upstream_errors),
        ruleChange('quota_80', AlertRuleParams.quota_80),
        ruleChange('quota_100', AlertRuleParams.quota_100),
        ruleChange('backup_stale', AlertRuleParams.backup_stale),
        ruleChange('cert_expiring', AlertRuleParams.cert_expiring),
        ruleChange('agent_restarted', AlertRuleParams.agent_restarted),
        ruleChange('storage_full', AlertRuleParams.storage_full),
      ]),
      { message: 'must be a list of {id, enabled?, params?}' },
    )
    .min(1, { message: 'name at least one rule' })
    .max(AlertRuleId.options.length * 2),
  reset: z.array(AlertRuleId).max(AlertRuleId.options.length).optional(),
});
export type UpdateAlertRulesBody = z.infer<typeof UpdateAlertRulesBody>;

export const AlertKind = z.enum(['alert', 'recovery']);
export const AlertState = z.enum(['firing', 'resolved', 'info']);
export type AlertState = z.infer<typeof AlertState>;

export const Alert = z.object({
  id: z.string(),
  kind: AlertKind,
  /** A rule id for alerts; for recovery events what healed (pm2_restart, reconcile, daemon_reconnect, ...). */
  rule: z.string(),
  /** What it is about: a slot id, a user id, the data dir's path; '' for the host as a whole. */
  subject: z.string(),
  severity: AlertSeverity,
  title: z.string(),
  message: z.string(),
  state: AlertState,
  firedAt: z.string(),
  resolvedAt: z.string().nullable(),
  /** The last time the condition was seen (alerts) or the event happened again (recovery). */
  lastSeenAt: z.string(),
  /** How many times a recovery event happened in this row (same kind and target within a minute). */
  occurrences: z.int(),
  /** Whether a notification went out (a re-fire within the hour is recorded but not notified again). */
  notified: z.boolean(),
  read: z.boolean(),
});
export type Alert = z.infer<typeof Alert>;

export const AlertFilter = z.enum(['all', 'firing', 'resolved', 'recovery', 'unread']);
export type AlertFilter = z.infer<typeof AlertFilter>;

export const ListAlertsQuery = z.strictObject({
  filter: AlertFilter.default('all'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The id of the last alert of the previous page (pages go newest first). */
  cursor: z
    .string()
    .regex(/^\d{1,15}$/, { message: 'must be an alert id from a previous page' })
    .optional(),
});
export type ListAlertsQuery = z.input<typeof ListAlertsQuery>;

export const AlertList = z.object({
  alerts: z.array(Alert),
  nextCursor: z.string().nullable(),
  /** Over the whole history, whatever the filter: what the bell shows. */
  unread: z.int(),
  firing: z.int(),
});
export type AlertList = z.infer<typeof AlertList>;

export const MarkAlertsReadBody = z.union(
  [
    z.strictObject({
      ids: z
        .array(z.string().regex(/^\d{1,15}$/, { message: 'must be an alert id' }))
        .min(1)
        .max(500),
    }),
    z.strictObject({ all: z.literal(true) }),
  ],
  { message: 'send {"ids": ["12", ...]} or {"all": true}' },
);
export type MarkAlertsReadBody = z.infer<typeof MarkAlertsReadBody>;
export const MarkAlertsReadResult = z.object({ marked: z.int(), unread: z.int() });

export const WebhookFormat = z.enum(['json', 'slack']);
export type WebhookFormat = z.infer<typeof WebhookFormat>;

export const WebhookDelivery = z.object({
  at: z.string(),
  ok: z.boolean(),
  /** The receiver's HTTP status; null when none answered (refused, timed out). */
  status: z.int().nullable(),
  attempts: z.int(),
  error: z.string().nullable(),
  test: z.boolean(),
  /** What was delivered: `firing slot_failed`, `resolved disk_low`, `test`. */
  what: z.string(),
});
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const WebhookSettings = z.object({
  configured: z.boolean(),
  /** The scheme, the host's domain and a hint of a path (`https://…slack.com/…`): the URL is a credential, never answered. */
  target: z.string().nullable(),
  format: WebhookFormat,
  enabled: z.boolean(),
  lastDelivery: WebhookDelivery.nullable(),
});
export type WebhookSettings = z.infer<typeof WebhookSettings>;

export const WebhookUrl = z
  .string()
  .max(2048, { message: 'at most 2048 characters' })
  .refine(
    (value) => {
      if (!URL.canParse(value)) return false;
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '';
    },
    { message: 'must be an http(s) URL without a user or password, e.g. https://hooks.slack.com/services/…' },
  );

/** `url: null` removes the webhook; leave a field out to keep it. */
export const UpdateWebhookBody = z.strictObject({
  url: WebhookUrl.nullable().optional(),
  format: WebhookFormat.optional(),
  enabled: z.boolean().optional(),
});
export type UpdateWebhookBody = z.infer<typeof UpdateWebhookBody>;

export const alertsApi = {
  listAlerts: endpoint({
    method: 'GET',
    path: `${API}/alerts`,
    auth: 'admin',
    query: ListAlertsQuery,
    response: AlertList,
    status: 200,
    summary: 'Alert history and recovery events, newest first, with the unread and firing counts',
  }),
  markAlertsRead: endpoint({
    method: 'POST',
    path: `${API}/alerts/read`,
    auth: 'admin',
    body: MarkAlertsReadBody,
    response: MarkAlertsReadResult,
    status: 200,
    summary: 'Mark alerts read (by id, or all)',
  }),
  getAlertRules: endpoint({
    method: 'GET',
    path: `${API}/alerts/rules`,
    auth: 'admin',
    response: AlertRuleList,
    status: 200,
    summary: 'Every alert rule with its thresholds and defaults',
  }),
  setAlertRules: endpoint({
    method: 'PUT',
    path: `${API}/alerts/rules`,
    auth: 'admin',
    body: UpdateAlertRulesBody,
    response: AlertRuleList,
    status: 200,
    summary: 'Enable, disable or change the thresholds of alert rules',
  }),
  getWebhook: endpoint({
    method: 'GET',
    path: `${API}/alerts/webhook`,
    auth: 'admin',
    response: WebhookSettings,
    status: 200,
    summary: "The alert webhook's host, format and last delivery (never its URL)",
  }),
  setWebhook: endpoint({
    method: 'PUT',
    path: `${API}/alerts/webhook`,
    auth: 'admin',
    body: UpdateWebhookBody,
    response: WebhookSettings,
    status: 200,
    summary: 'Set or remove the alert webhook, its format (json or slack) and whether it is on',
  }),
  testWebhook: endpoint({
    method: 'POST',
    path: `${API}/alerts/webhook/test`,
    auth: 'admin',
    response: WebhookDelivery,
    status: 200,
    summary: 'Send a test alert to the webhook now and answer what happened',
  }),
};
