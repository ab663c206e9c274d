import {
  ALERT_RULE_DEFAULTS,
  AlertRuleId,
  AlertRuleParams,
  type AlertRule,
  type AlertSeverity,
  type UpdateAlertRulesBody,
} from '../../contract/index.js';
import type { Db } from '../../db/database.js';

interface RuleText {
  title: string;
  description: string;
  severity: AlertSeverity;
}

/** What each rule watches and what the admin should do; docs/operations.md says the same at more length. */
export const RULE_TEXT: Record<AlertRuleId, RuleText> = {
  slot_failed: {
    title: 'Slot failed',
    description:
      'A slot ended too often in a row and was left stopped. Read its last output in the slot, fix the command, then start it again.',
    severity: 'critical',
  },
  slot_restarting: {
    title: 'Slot restarting repeatedly',
    description:
      'A slot was restarted by PM2 `restarts` times within `windowMinutes`. Look at its output; it fails once the crash-loop limit is reached.',
    severity: 'warning',
  },
  disk_low: {
    title: 'Disk space low',
    description:
      'The data dir\u2019s disk has less than `freePercent` % or `freeGb` GB free. Remove old backups, logs or slot work dirs, or grow the volume.',
    severity: 'warning',
  },
  memory_high: {
    title: 'Memory high',
    description:
      'More than `usedPercent` % of the host\u2019s memory is in use. Stop idle slots or set memory limits on them.',
    severity: 'warning',
  },
  upstream_errors: {
    title: 'Upstream errors',
    description:
      'More than `errorPercent` % of the requests forwarded to the upstream failed over `windowMinutes` minutes (with at least `minRequests` requests). Check the upstream key and the provider\u2019s status page.',
    severity: 'critical',
  },
  quota_80: {
    title: 'Quota nearly used',
    description:
      'A user has used `percent` % of one of their quotas. Raise it, or tell them before requests are refused.',
    severity: 'info',
  },
  quota_100: {
    title: 'Quota used up',
    description:
      'A user has used `percent` % of a quota: the gateway refuses their requests until it resets. Raise it if that is not intended.',
    severity: 'warning',
  },
  backup_stale: {
    title: 'Backup stale',
    description:
      'The last good backup is older than `maxAgeHours` hours (only while backups are on). Look at the backups view for the last error.',
    severity: 'warning',
  },
  cert_expiring: {
    title: 'Certificate expiring',
    description:
      'The gateway\u2019s TLS certificate expires within `days` days. Renew it and restart the agent (or let your ACME client do it).',
    severity: 'warning',
  },
  agent_restarted: {
    title: 'Agent restarted',
    description:
      'The agent started again. After an unexpected end (crash, kill, power loss) read its log; slots keep running under PM2 either way.',
    severity: 'info',
  },
  storage_full: {
    title: 'Storage full',
    description:
      'The data dir cannot be written: the gateway refuses requests and screens stop journaling until space returns. Free space on the disk.',
    severity: 'critical',
  },
};

type Params = Record<string, number>;

interface StoredRule {
  id: string;
  enabled: number;
  params_json: string;
}

export interface EffectiveRule {
  id: AlertRuleId;
  enabled: boolean;
  params: Params;
}

/** Rules as the admin set them, over the defaults; a stored rule that no longer validates falls back to them. */
export class RuleStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  effective(): Map<AlertRuleId, EffectiveRule> {
    const stored = new Map(
      (this.db.prepare('SELECT id, enabled, params_json FROM alert_rules').all() as StoredRule[]).map((row) => [
        row.id,
        row,
      ]),
    );
    const rules = new Map<AlertRuleId, EffectiveRule>();
    for (const id of AlertRuleId.options) {
      const defaults = ALERT_RULE_DEFAULTS[id] as Params;
      const row = stored.get(id);
      let params = defaults;
      if (row) {
        try {
          const parsed = AlertRuleParams[id].safeParse({ ...defaults, ...(JSON.parse(row.params_json) as object) });
          if (parsed.success) params = parsed.data;
        } catch {
          // A hand-edited row with broken JSON keeps the defaults.
        }
      }
      rules.set(id, { id, enabled: row ? row.enabled === 1 : true, params });
    }
    return rules;
  }

  list(): AlertRule[] {
    return [...this.effective().values()].map((rule) => ({
      id: rule.id,
      ...RULE_TEXT[rule.id],
      enabled: rule.enabled,
      params: rule.params,
      defaults: ALERT_RULE_DEFAULTS[rule.id],
    }));
  }

  update(body: UpdateAlertRulesBody): AlertRule[] {
    const at = new Date(this.now()).toISOString();
    this.db.transaction(() => {
      for (const id of body.reset ?? []) this.db.prepare('DELETE FROM alert_rules WHERE id = ?').run(id);
      const current = this.effective();
      for (const change of body.rules) {
        const rule = current.get(change.id)!;
        const next = {
          enabled: change.enabled ?? rule.enabled,
          params: { ...rule.params, ...(change.params ?? {}) },
        };
        current.set(change.id, { id: change.id, ...next });
        this.db
          .prepare(
            `INSERT INTO alert_rules (id, enabled, params_json, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, params_json = excluded.params_json,
               updated_at = excluded.updated_at`,
          )
          .run(change.id, next.enabled ? 1 : 0, JSON.stringify(next.params), at);
      }
    })();
    return this.list();
  }
}
