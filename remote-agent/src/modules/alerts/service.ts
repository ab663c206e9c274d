import type { Logger } from 'pino';
import type {
  Alert,
  AlertRuleId,
  HealthDetails,
  ListAlertsQuery,
  MarkAlertsReadBody,
  QuotaStatus,
} from '../../contract/index.js';
import { ListAlertsQuery as ListAlertsQuerySchema } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import type { OpsEvents } from '../../ops/events.js';
import { isUpstreamError } from '../health/details.js';
import { RULE_TEXT, RuleStore, type EffectiveRule } from './rules.js';
import { AlertStore } from './store.js';
import type { AlertWebhook } from './webhook.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const GB = 1024 ** 3;

/** What the rules look at besides the operations events. */
export interface AlertInputs {
  /** The health details (modules/health); a failure leaves the rules that need them as they were. */
  details(): Promise<HealthDetails>;
  /** Users with quotas and their state (QuotaService). */
  quotaUsers(): Array<{ userId: string; username: string; quotas: QuotaStatus[] }>;
  /** Whether scheduled backups are on: a stale backup alerts only then. */
  backupsEnabled(): boolean;
}

export interface AlertServiceDeps {
  db: Db;
  ops: OpsEvents;
  inputs: AlertInputs;
  webhook: AlertWebhook;
  logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** How often the rules are evaluated. */
  intervalMs: number;
  /** A firing alert is notified again at most this often (and a re-fire within it is not notified). */
  repeatMs?: number;
  now?: () => number;
  pid?: number;
}

/** One condition that holds now: a rule firing for a subject. */
interface Condition {
  rule: AlertRuleId;
  subject: string;
  title: string;
  message: string;
}

interface LastRun {
  pid: number;
  startedAt: string;
  cleanStop: boolean;
}

/** Per-second counters of gateway requests and upstream failures, for the upstream_errors rule (an hour at most). */
class ErrorWindow {
  private readonly buckets = new Map<number, { total: number; errors: number }>();

  add(at: number, error: boolean): void {
    const second = Math.floor(at / 1000);
    const bucket = this.buckets.get(second) ?? { total: 0, errors: 0 };
    bucket.total += 1;
    if (error) bucket.errors += 1;
    this.buckets.set(second, bucket);
    if (this.buckets.size > 3700) this.trim(at);
  }

  trim(now: number): void {
    const oldest = Math.floor((now - HOUR_MS) / 1000);
    for (const second of this.buckets.keys()) if (second < oldest) this.buckets.delete(second);
  }

  over(now: number, windowMs: number): { total: number; errors: number } {
    const since = Math.floor((now - windowMs) / 1000);
    let total = 0;
    let errors = 0;
    for (const [second, bucket] of this.buckets) {
      if (second < since) continue;
      total += bucket.total;
      errors += bucket.errors;
    }
    return { total, errors };
  }
}

/**
 * Evaluates the rules every `intervalMs` from the health details, quotas and what the operations events said; keeps
 * one firing alert per rule and subject, resolves it when its condition clears, notifies (webhook; the panel polls)
 * when it fires, again at most once an hour while it fires, and when it resolves. Recovery events go to the same
 * history as info.
 */
export class AlertService {
  readonly rules: RuleStore;
  readonly store: AlertStore;
  private readonly repeatMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly errors = new ErrorWindow();
  /** Restart times per slot: from PM2's counter in the details, and from `slot.restarted` events. */
  private readonly restartsSeen = new Map<string, number>();
  private readonly restartTimes = new Map<string, number[]>();
  private readonly restartEvents = new Map<string, number[]>();
  private readonly storageFull = new Map<string, string | null>();
  private lastPrune = 0;
  private lastDetails: HealthDetails | null = null;

  constructor(private readonly deps: AlertServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.repeatMs = deps.repeatMs ?? HOUR_MS;
    this.rules = new RuleStore(deps.db, this.now);
    this.store = new AlertStore(deps.db, this.now);
  }

  /** Listens to the operations events, notes the agent's (re)start, and evaluates every `intervalMs`. */
  start(): void {
    if (this.timer) return;
    const { ops } = this.deps;
    this.unsubscribe.push(
      // Forwarded requests only: the gateway's own answers (/v1/me/*, refusals, its 500s) say nothing of the upstream.
      ops.on('upstream.answer', (event) => this.errors.add(this.now(), isUpstreamError(event.status))),
      ops.on('slot.restarted', (event) => {
        const times = this.restartEvents.get(event.slotId) ?? [];
        times.push(this.now());
        this.restartEvents.set(event.slotId, times.slice(-1000));
      }),
      ops.on('storage', (event) => {
        if (event.full) this.storageFull.set(event.path, event.error);
        else if (this.storageFull.delete(event.path))
          this.write('storage recovery', () =>
            this.store.recovery({
              kind: 'storage',
              target: event.path,
              message: `${event.path} can be written again.`,
            }),
          );
        // A full disk is urgent: evaluate now rather than at the next tick.
        void this.evaluate();
      }),
      ops.on('recovery', (event) => {
        try {
          this.store.recovery(event);
        } catch (error) {
          this.deps.logger.warn({ err: error }, 'recording a recovery event failed');
        }
      }),
    );
    this.noteStart();
    this.timer = setInterval(() => void this.evaluate(), this.deps.intervalMs);
    this.timer.unref();
  }

  /** The previous run, if any, makes an `agent_restarted` alert; this run is written down for the next one. */
  private noteStart(): void {
    const previous = this.readState<LastRun>('agent.lastRun');
    const pid = this.deps.pid ?? process.pid;
    this.write('agent start', () =>
      this.writeState('agent.lastRun', { pid, startedAt: new Date(this.now()).toISOString(), cleanStop: false }),
    );
    const rule = this.rules.effective().get('agent_restarted')!;
    if (!previous || !rule.enabled) return;
    const how = previous.cleanStop
      ? 'The previous run stopped cleanly (an upgrade or a restart by the admin).'
      : 'The previous run ended without stopping cleanly (a crash, kill -9, OOM or power loss): read the agent log.';
    const alert = this.write('agent restarted', () =>
      this.store.fire({
        rule: 'agent_restarted',
        subject: '',
        severity: previous.cleanStop ? 'info' : 'warning',
        title: RULE_TEXT.agent_restarted.title,
        message: `The agent started again (pid ${pid}); the previous one (pid ${previous.pid}) started at ${previous.startedAt}. ${how}`,
        notify: true,
        resolved: true,
      }),
    );
    if (alert) this.deps.webhook.enqueue(alert, 'firing');
  }

  private readState<T>(key: string): T | null {
    const row = this.deps.db.prepare('SELECT value_json FROM alert_state WHERE key = ?').get(key) as
      { value_json: string } | undefined;
    if (!row) return null;
    try {
      return JSON.parse(row.value_json) as T;
    } catch {
      return null;
    }
  }

  private writeState(key: string, value: unknown): void {
    this.deps.db
      .prepare(
        'INSERT INTO alert_state (key, value_json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json',
      )
      .run(key, JSON.stringify(value));
  }

  /** Runs the rules once (not twice at a time); resolves when done. */
  evaluate(): Promise<void> {
    this.running ??= this.evaluateOnce()
      .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'evaluating alert rules failed'))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async evaluateOnce(): Promise<void> {
    const now = this.now();
    let details: HealthDetails | null = null;
    try {
      details = await this.deps.inputs.details();
      this.lastDetails = details;
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'alerts: the health details could not be read; their rules wait');
    }
    const rules = this.rules.effective();
    /** Rules whose inputs were read this time: only their alerts may resolve. */
    const evaluated = new Set<AlertRuleId>();
    const conditions: Condition[] = [];
    const add = (rule: AlertRuleId, subject: string, message: string, title = RULE_TEXT[rule].title): void => {
      conditions.push({ rule, subject, title, message });
    };
    const enabled = (id: AlertRuleId): EffectiveRule | null => {
      const rule = rules.get(id)!;
      if (!rule.enabled) return null;
      evaluated.add(id);
      return rule;
    };

    if (details) {
      this.noteRestarts(details, now);
      let rule = enabled('slot_failed');
      if (rule)
        for (const slot of details.slots)
          if (slot.state === 'failed')
            add('slot_failed', slot.id, `Slot "${slot.name}" failed and was left stopped.`, `Slot ${slot.name} failed`);
      rule = enabled('slot_restarting');
      if (rule) {
        const windowMs = rule.params.windowMinutes! * MINUTE_MS;
        for (const slot of details.slots) {
          const count = this.restartsWithin(slot.id, now, windowMs);
          if (count >= rule.params.restarts! && slot.state !== 'failed')
            add(
              'slot_restarting',
              slot.id,
              `Slot "${slot.name}" was restarted ${count} times in the last ${rule.params.windowMinutes} minutes (now ${slot.state}).`,
              `Slot ${slot.name} restarting repeatedly`,
            );
        }
      }
      rule = enabled('disk_low');
      if (rule && details.disk) {
        const { freeBytes, freePercent, path } = details.disk;
        if (freePercent < rule.params.freePercent! || freeBytes < rule.params.freeGb! * GB)
          add(
            'disk_low',
            path,
            `${(freeBytes / GB).toFixed(1)} GB (${freePercent.toFixed(1)} %) free on the disk of ${path}; the limit is ${rule.params.freePercent} % or ${rule.params.freeGb} GB.`,
          );
      }
      rule = enabled('memory_high');
      if (rule && details.memory.usedPercent > rule.params.usedPercent!)
        add(
          'memory_high',
          '',
          `${details.memory.usedPercent.toFixed(1)} % of memory in use (${(details.memory.availableBytes / GB).toFixed(1)} GB available); the limit is ${rule.params.usedPercent} %.`,
        );
      rule = enabled('backup_stale');
      if (rule) {
        const backups = this.deps.inputs.backupsEnabled();
        const ageH = details.backup.ageS === null ? null : details.backup.ageS / 3600;
        if (backups && (ageH === null || ageH > rule.params.maxAgeHours!)) {
          // With no backup yet, count from the agent's start: a fresh host is not stale at once.
          const sinceStart = details.uptimeS / 3600;
          if (ageH !== null || sinceStart > rule.params.maxAgeHours!)
            add(
              'backup_stale',
              '',
              ageH === null
                ? `No backup has succeeded yet${details.backup.lastError ? ` (last error: ${details.backup.lastError})` : ''}.`
                : `The last good backup is ${ageH.toFixed(1)} hours old${details.backup.lastError ? ` (last error: ${details.backup.lastError})` : ''}.`,
            );
        }
      }
      rule = enabled('cert_expiring');
      if (rule && details.tls.configured && details.tls.daysLeft !== null && details.tls.daysLeft < rule.params.days!)
        add(
          'cert_expiring',
          '',
          details.tls.daysLeft < 0
            ? `The gateway's TLS certificate expired at ${details.tls.notAfter}.`
            : `The gateway's TLS certificate expires in ${Math.floor(details.tls.daysLeft)} days (${details.tls.notAfter}).`,
        );
    }

    let rule = enabled('upstream_errors');
    if (rule) {
      this.errors.trim(now);
      const { total, errors } = this.errors.over(now, rule.params.windowMinutes! * MINUTE_MS);
      if (total >= rule.params.minRequests! && (errors / total) * 100 > rule.params.errorPercent!)
        add(
          'upstream_errors',
          '',
          `${errors} of ${total} (${((errors / total) * 100).toFixed(1)} %) forwarded requests failed upstream in the last ${rule.params.windowMinutes} minutes.`,
        );
    }

    rule = enabled('storage_full');
    if (rule) {
      for (const [path, error] of this.storageFull)
        add('storage_full', path, `The data dir ${path} cannot be written${error ? ` (${error})` : ''}.`);
      if (details && !details.database.writable && this.storageFull.size === 0)
        add(
          'storage_full',
          'database',
          `The database cannot be written${details.database.lastWriteError ? ` (${details.database.lastWriteError})` : ''}.`,
        );
    }

    const quota80 = rules.get('quota_80')!;
    const quota100 = rules.get('quota_100')!;
    if (quota80.enabled || quota100.enabled) {
      let users: ReturnType<AlertInputs['quotaUsers']> | null = null;
      try {
        users = this.deps.inputs.quotaUsers();
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'alerts: quotas could not be read');
      }
      if (users) {
        for (const id of ['quota_80', 'quota_100'] as const) {
          const quotaRule = enabled(id);
          if (!quotaRule) continue;
          for (const user of users) {
            const worst = worstQuota(user.quotas);
            if (worst && worst.percent >= quotaRule.params.percent!)
              add(
                id,
                user.userId,
                `${user.username} has used ${worst.percent.toFixed(0)} % of their ${worst.quota.window} quota (${worst.what}); it resets at ${worst.quota.resetsAt}.`,
                `${RULE_TEXT[id].title}: ${user.username}`,
              );
          }
        }
      }
    }

    this.apply(rules, evaluated, conditions);
    if (now - this.lastPrune > HOUR_MS) {
      this.lastPrune = now;
      const pruned = this.store.prune();
      if (pruned > 0) this.deps.logger.info({ pruned }, 'alerts older than 30 days removed');
    }
  }

  private noteRestarts(details: HealthDetails, now: number): void {
    const present = new Set<string>();
    for (const slot of details.slots) {
      present.add(slot.id);
      const seen = this.restartsSeen.get(slot.id);
      this.restartsSeen.set(slot.id, slot.restarts);
      if (seen === undefined || slot.restarts <= seen) continue;
      const times = this.restartTimes.get(slot.id) ?? [];
      for (let i = 0; i < Math.min(slot.restarts - seen, 1000); i += 1) times.push(now);
      this.restartTimes.set(slot.id, times.slice(-1000));
    }
    for (const map of [this.restartsSeen, this.restartTimes, this.restartEvents])
      for (const id of map.keys()) if (!present.has(id)) map.delete(id);
  }

  private restartsWithin(slotId: string, now: number, windowMs: number): number {
    const count = (times: number[] | undefined): number => (times ?? []).filter((t) => now - t <= windowMs).length;
    // Two views of the same restarts: PM2's counter and the supervisor's events. Whichever saw more.
    return Math.max(count(this.restartTimes.get(slotId)), count(this.restartEvents.get(slotId)));
  }

  /** Runs a history write; a failed one (a full disk) is logged and answers null instead of stopping the rules. */
  private write<T>(what: string, action: () => T): T | null {
    try {
      return action();
    } catch (error) {
      this.deps.logger.warn({ err: error, what }, 'alerts: the history could not be written');
      return null;
    }
  }

  /**
   * Alerts whose row could not be written (the disk is full: the very time storage_full fires). They are notified
   * anyway, kept here, and written once the disk takes writes again (each once: the entry goes when its row exists).
   */
  private readonly unwritten = new Map<
    string,
    { alert: Alert; condition: Condition; notifiedAt: number | null; resolvedAt: number | null }
  >();

  /** Fires what is new, resolves what cleared, reminds what fires on past the hour. */
  private apply(rules: Map<AlertRuleId, EffectiveRule>, evaluated: Set<AlertRuleId>, conditions: Condition[]): void {
    const now = this.now();
    const holding = new Map(conditions.map((c) => [`${c.rule}\u0000${c.subject}`, c]));
    for (const [key, kept] of this.unwritten) {
      const rule = rules.get(kept.condition.rule);
      // Resolved while unrecorded: only its row is owed; a condition back since then fires anew below.
      const condition = kept.resolvedAt === null ? holding.get(key) : undefined;
      if (kept.resolvedAt === null && !condition && rule && rule.enabled && !evaluated.has(rule.id)) continue;
      const written = this.write('an alert kept while the disk was full', () =>
        this.store.fire({
          ...(condition ?? kept.condition),
          severity: kept.alert.severity,
          notify: kept.notifiedAt !== null,
          resolved: !condition,
          firedAt: Date.parse(kept.alert.firedAt),
        }),
      );
      // Recorded as firing: from now on it is a row like any other (the loop below sees it, already notified).
      if (written) this.unwritten.delete(key);
      else if (condition) holding.delete(key);
      if (kept.resolvedAt !== null) continue;
      if (!condition) {
        kept.resolvedAt = now;
        const resolved = written ?? {
          ...kept.alert,
          state: 'resolved' as const,
          resolvedAt: new Date(now).toISOString(),
        };
        kept.alert = resolved;
        if (kept.notifiedAt !== null && rule?.enabled) this.deps.webhook.enqueue(resolved, 'resolved');
        this.deps.logger.info({ rule: kept.condition.rule, subject: kept.condition.subject }, 'alert resolved');
      } else if (!written && kept.notifiedAt !== null && now - kept.notifiedAt >= this.repeatMs) {
        kept.notifiedAt = now;
        this.deps.webhook.enqueue({ ...kept.alert, message: condition.message }, 'reminder');
      }
    }
    for (const firing of this.store.firing()) {
      const key = `${firing.rule}\u0000${firing.subject}`;
      const condition = holding.get(key);
      const rule = rules.get(firing.rule as AlertRuleId);
      if (condition) {
        holding.delete(key);
        this.write('seen', () => this.store.seen(firing.id, condition.message));
        const last = firing.notified ? firing.lastNotifiedAt : this.store.lastNotified(firing.rule, firing.subject);
        if (last === null || now - last >= this.repeatMs) {
          // Unrecorded (a full disk), the reminder would repeat every tick: notify only once it is recorded.
          if (this.write('notified', () => this.store.markNotified(firing.id)) === null) continue;
          const alert = this.store.get(firing.id)!;
          this.deps.webhook.enqueue(alert, firing.notified ? 'reminder' : 'firing');
        }
        continue;
      }
      // A disabled rule's alerts end quietly; a rule whose inputs could not be read keeps its alerts.
      if (rule && rule.enabled && !evaluated.has(rule.id)) continue;
      // Not recorded as resolved (a full disk): it stays firing and is resolved at a later evaluation.
      const resolved = this.write('resolved', () => this.store.resolve(firing.id));
      if (resolved && firing.notified && rule?.enabled) this.deps.webhook.enqueue(resolved, 'resolved');
      if (resolved) this.deps.logger.info({ rule: firing.rule, subject: firing.subject }, 'alert resolved');
    }
    for (const [key, condition] of holding) {
      const last = this.store.lastNotified(condition.rule, condition.subject);
      // Fired again within the hour of its last notification (a flapping condition): recorded, not notified.
      const notify = last === null || now - last >= this.repeatMs;
      const severity = RULE_TEXT[condition.rule].severity;
      const written = this.write('fired', () => this.store.fire({ ...condition, severity, notify }));
      this.deps.logger.info(
        { rule: condition.rule, subject: condition.subject, notify, written: !!written },
        'alert firing',
      );
      const alert = written ?? this.inMemory(condition, severity, notify, now);
      if (!written) this.unwritten.set(key, { alert, condition, notifiedAt: notify ? now : null, resolvedAt: null });
      if (notify) this.deps.webhook.enqueue(alert, 'firing');
    }
  }

  private inMemory(condition: Condition, severity: Alert['severity'], notify: boolean, now: number): Alert {
    const at = new Date(now).toISOString();
    return {
      // Not a row yet: no id the history knows.
      id: '0',
      kind: 'alert',
      rule: condition.rule,
      subject: condition.subject,
      severity,
      title: condition.title,
      message: condition.message,
      state: 'firing',
      firedAt: at,
      resolvedAt: null,
      lastSeenAt: at,
      occurrences: 1,
      notified: notify,
      read: false,
    };
  }

  list(query: ListAlertsQuery): { alerts: Alert[]; nextCursor: string | null; unread: number; firing: number } {
    const parsed = ListAlertsQuerySchema.parse(query);
    const page = this.store.list(parsed);
    const counts = this.store.counts();
    // Alerts not recorded yet (a full disk) head the first page, so the bell shows them too.
    const kept = [...this.unwritten.values()].filter((entry) => entry.resolvedAt === null).map((entry) => entry.alert);
    const shown = parsed.cursor === undefined && ['all', 'firing', 'unread'].includes(parsed.filter) ? kept : [];
    return {
      ...page,
      alerts: [...shown, ...page.alerts],
      unread: counts.unread + kept.length,
      firing: counts.firing + kept.length,
    };
  }

  markRead(body: MarkAlertsReadBody): { marked: number; unread: number } {
    const marked = this.store.markRead('all' in body ? 'all' : body.ids);
    return { marked, unread: this.store.counts().unread };
  }

  /** The details the last evaluation saw (for tests and the routes' diagnostics). */
  get details(): HealthDetails | null {
    return this.lastDetails;
  }

  /** Stops evaluating; a clean stop is remembered, so the next start says so. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const off of this.unsubscribe.splice(0)) off();
    await this.running;
    const run = this.readState<LastRun>('agent.lastRun');
    if (run) this.write('clean stop', () => this.writeState('agent.lastRun', { ...run, cleanStop: true }));
    await this.deps.webhook.close();
  }
}

function worstQuota(quotas: QuotaStatus[]): { quota: QuotaStatus; percent: number; what: string } | null {
  let worst: { quota: QuotaStatus; percent: number; what: string } | null = null;
  for (const quota of quotas) {
    const parts: Array<[number, string]> = [];
    if (quota.maxTokens)
      parts.push([(quota.usedTokens / quota.maxTokens) * 100, `${quota.usedTokens} of ${quota.maxTokens} tokens`]);
    if (quota.maxCostUsd)
      parts.push([
        (quota.usedCostUsd / quota.maxCostUsd) * 100,
        `$${quota.usedCostUsd.toFixed(2)} of $${quota.maxCostUsd.toFixed(2)}`,
      ]);
    for (const [percent, what] of parts) if (!worst || percent > worst.percent) worst = { quota, percent, what };
  }
  return worst;
}
