import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Alert, WebhookDelivery, WebhookFormat, WebhookSettings } from '../../contract/index.js';
import type { Db } from '../../db/database.js';
import { AgentErrorCode } from '../../contract/index.js';
import { AppError } from '../../errors.js';

/** What a notification says happened to an alert. */
export type NotificationEvent = 'firing' | 'resolved' | 'reminder' | 'test';

export interface DeliveryOptions {
  /** Tries in all (the first and the retries). */
  attempts: number;
  /** The first retry waits this long, each next one twice as long, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Each attempt is abandoned after this long. */
  timeoutMs: number;
}

export const DEFAULT_DELIVERY: DeliveryOptions = {
  attempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  timeoutMs: 10_000,
};

/** Pending notifications beyond this are dropped oldest first (a receiver down for hours must not grow memory). */
const MAX_QUEUE = 200;

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * "https://…slack.com/…": the scheme and the last two labels of the host, enough to recognise the service, and
 * nothing of the path: a Slack webhook's path is its credential, and so is the host's first label of services like
 * `<id>.m.pipedream.net`. Addresses and one-label hosts (loopback) are shown whole: they name no secret.
 */
export function webhookTarget(url: string): string {
  const parsed = new URL(url);
  const host = parsed.hostname;
  const labels = host.split('.');
  const shown =
    host.startsWith('[') || IPV4.test(host) || labels.length <= 2 ? host : `\u2026${labels.slice(-2).join('.')}`;
  const port = parsed.port ? `:${parsed.port}` : '';
  return `${parsed.protocol}//${shown}${port}${parsed.pathname.length > 1 || parsed.search ? '/\u2026' : ''}`;
}

/** Whether a URL's host is this machine (plain http is allowed only there: nothing crosses a network). */
function isLoopback(url: URL): boolean {
  const host = url.hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Slack's mrkdwn reads `<…>` as links and mentions (`<!channel>`) and `&` as an entity: escaped as Slack asks. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Takes the URL, its path and its query out of an error message (fetch's errors may quote the URL). */
function scrub(message: string, url: string): string {
  const parsed = new URL(url);
  let text = message.split(url).join(webhookTarget(url));
  for (const part of [parsed.pathname + parsed.search, parsed.pathname, parsed.search]) {
    if (part.length > 1) text = text.split(part).join('/\u2026');
  }
  return text.slice(0, 500);
}

interface WebhookState {
  format: WebhookFormat;
  enabled: boolean;
  lastDelivery: WebhookDelivery | null;
}

const STATE_KEY = 'webhook';

export interface WebhookPayload {
  source: 'slotdeck-agent';
  host: string;
  event: NotificationEvent;
  sentAt: string;
  alert: Pick<
    Alert,
    'id' | 'kind' | 'rule' | 'subject' | 'severity' | 'title' | 'message' | 'state' | 'firedAt' | 'resolvedAt'
  >;
}

const SEVERITY_MARK: Record<string, string> = {
  critical: ':red_circle:',
  warning: ':warning:',
  info: ':information_source:',
};

/** Slack's incoming-webhook shape: `text` (the notification's line) and blocks for the message itself. */
export function slackMessage(payload: WebhookPayload): { text: string; blocks: unknown[] } {
  const { alert, event } = payload;
  const mark = event === 'resolved' ? ':white_check_mark:' : (SEVERITY_MARK[alert.severity] ?? '');
  const verb = { firing: 'Firing', resolved: 'Resolved', reminder: 'Still firing', test: 'Test' }[event];
  const text = `${mark} [${escapeMrkdwn(payload.host)}] ${verb}: ${escapeMrkdwn(alert.title)}`;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${text}*\n${escapeMrkdwn(alert.message)}` } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `rule \`${alert.rule}\`${alert.subject ? ` \u00b7 ${escapeMrkdwn(alert.subject)}` : ''} \u00b7 fired ${alert.firedAt}${alert.resolvedAt ? ` \u00b7 resolved ${alert.resolvedAt}` : ''}`,
          },
        ],
      },
    ],
  };
}

/**
 * The alert webhook: its URL in `<dataDir>/secrets/alert-webhook` (0600; never in SQLite, logs or answers), its
 * format and last delivery in the database, and a queue that delivers one notification at a time with retries and
 * exponential backoff. Redirects are not followed (a redirect could take the payload elsewhere).
 */
export class AlertWebhook {
  readonly file: string;
  private readonly queue: Array<{ payload: WebhookPayload; what: string }> = [];
  private draining: Promise<void> | null = null;
  private closed = false;
  private readonly sleeping = new Set<() => void>();
  private readonly host = hostname();

  constructor(
    private readonly deps: {
      db: Db;
      dataDir: string;
      logger: Pick<Logger, 'info' | 'warn'>;
      options?: Partial<DeliveryOptions>;
      now?: () => number;
    },
  ) {
    this.file = join(deps.dataDir, 'secrets', 'alert-webhook');
  }

  private get options(): DeliveryOptions {
    return { ...DEFAULT_DELIVERY, ...this.deps.options };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private url(): string | null {
    try {
      return readFileSync(this.file, 'utf8').trim() || null;
    } catch {
      return null;
    }
  }

  private state(): WebhookState {
    const row = this.deps.db.prepare('SELECT value_json FROM alert_state WHERE key = ?').get(STATE_KEY) as
      { value_json: string } | undefined;
    const fallback: WebhookState = { format: 'json', enabled: true, lastDelivery: null };
    if (!row) return fallback;
    try {
      return { ...fallback, ...(JSON.parse(row.value_json) as Partial<WebhookState>) };
    } catch {
      return fallback;
    }
  }

  private saveState(state: WebhookState): void {
    this.deps.db
      .prepare(
        'INSERT INTO alert_state (key, value_json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json',
      )
      .run(STATE_KEY, JSON.stringify(state));
  }

  settings(): WebhookSettings {
    const url = this.url();
    const state = this.state();
    return {
      configured: url !== null,
      target: url ? webhookTarget(url) : null,
      format: state.format,
      enabled: state.enabled,
      lastDelivery: state.lastDelivery,
    };
  }

  update(change: {
    url?: string | null | undefined;
    format?: WebhookFormat | undefined;
    enabled?: boolean | undefined;
  }): WebhookSettings {
    if (change.url && new URL(change.url).protocol === 'http:' && !isLoopback(new URL(change.url)))
      throw new AppError(
        AgentErrorCode.ALERT_WEBHOOK_INVALID,
        400,
        'A webhook URL with http:// would send alerts, and the URL itself, unencrypted: use https:// (plain http is accepted only for a receiver on this host, e.g. http://127.0.0.1:9000/…).',
      );
    if (change.url === null) {
      rmSync(this.file, { force: true });
    } else if (change.url !== undefined) {
      mkdirSync(join(this.deps.dataDir, 'secrets'), { recursive: true, mode: 0o700 });
      const temporary = `${this.file}.tmp`;
      writeFileSync(temporary, change.url, { mode: 0o600 });
      chmodSync(temporary, 0o600);
      renameSync(temporary, this.file);
    }
    const state = this.state();
    const urlChanged = change.url !== undefined;
    this.saveState({
      format: change.format ?? state.format,
      enabled: change.enabled ?? state.enabled,
      // The last delivery was to the old URL: it says nothing about the new one.
      lastDelivery: urlChanged ? null : state.lastDelivery,
    });
    this.deps.logger.info(
      {
        target: urlChanged && change.url ? webhookTarget(change.url) : undefined,
        format: change.format,
        enabled: change.enabled,
      },
      urlChanged ? (change.url ? 'alert webhook set' : 'alert webhook removed') : 'alert webhook settings changed',
    );
    return this.settings();
  }

  /** Whether notifications go out (a URL is set and the webhook is on). */
  active(): boolean {
    return this.url() !== null && this.state().enabled;
  }

  payload(alert: Alert, event: NotificationEvent): WebhookPayload {
    const { id, kind, rule, subject, severity, title, message, state, firedAt, resolvedAt } = alert;
    return {
      source: 'slotdeck-agent',
      host: this.host,
      event,
      sentAt: new Date(this.now()).toISOString(),
      alert: { id, kind, rule, subject, severity, title, message, state, firedAt, resolvedAt },
    };
  }

  /** Queues a notification; delivered in the background, in order. */
  enqueue(alert: Alert, event: NotificationEvent): void {
    if (this.closed || !this.active()) return;
    this.queue.push({ payload: this.payload(alert, event), what: `${event} ${alert.rule}` });
    while (this.queue.length > MAX_QUEUE) {
      const dropped = this.queue.shift()!;
      this.deps.logger.warn({ what: dropped.what }, 'alert webhook queue full: dropped the oldest notification');
    }
    this.draining ??= this.drain().finally(() => (this.draining = null));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const next = this.queue.shift()!;
      await this.deliver(next.payload, next.what, this.options.attempts, false);
    }
  }

  /** Sends a test notification now (one attempt with the usual timeout) and answers what happened. */
  async test(): Promise<WebhookDelivery | null> {
    if (!this.url()) return null;
    const at = new Date(this.now()).toISOString();
    const payload: WebhookPayload = {
      source: 'slotdeck-agent',
      host: this.host,
      event: 'test',
      sentAt: at,
      alert: {
        id: '0',
        kind: 'alert',
        rule: 'test',
        subject: '',
        severity: 'info',
        title: 'Test alert from Slotdeck',
        message: 'If you read this, alerts from this host reach you.',
        state: 'firing',
        firedAt: at,
        resolvedAt: null,
      },
    };
    return this.deliver(payload, 'test', 1, true);
  }

  private async deliver(
    payload: WebhookPayload,
    what: string,
    attempts: number,
    test: boolean,
  ): Promise<WebhookDelivery> {
    const options = this.options;
    let result: { ok: boolean; status: number | null; error: string | null } = {
      ok: false,
      status: null,
      error: 'not sent',
    };
    let tried = 0;
    for (let attempt = 1; attempt <= attempts && !this.closed; attempt += 1) {
      const url = this.url();
      if (!url) {
        result = { ok: false, status: null, error: 'the webhook was removed before it was delivered' };
        break;
      }
      const format = this.state().format;
      tried = attempt;
      result = await this.post(url, format === 'slack' ? slackMessage(payload) : payload, options.timeoutMs);
      if (result.ok) break;
      // A 4xx (but 408/429) will not change by retrying: the URL or the payload is wrong.
      if (result.status !== null && result.status >= 400 && result.status < 500 && ![408, 429].includes(result.status))
        break;
      if (attempt < attempts) await this.sleep(Math.min(options.baseDelayMs * 2 ** (attempt - 1), options.maxDelayMs));
    }
    const delivery: WebhookDelivery = {
      at: new Date(this.now()).toISOString(),
      ok: result.ok,
      status: result.status,
      attempts: tried,
      error: result.error,
      test,
      what,
    };
    const url = this.url();
    try {
      this.saveState({ ...this.state(), lastDelivery: delivery });
    } catch (error) {
      // A full disk: the delivery happened all the same; only its record is lost.
      this.deps.logger.warn({ err: error }, 'the alert webhook delivery could not be recorded');
    }
    if (!delivery.ok)
      this.deps.logger.warn(
        { target: url ? webhookTarget(url) : null, what, attempts: tried, status: result.status, error: result.error },
        'alert webhook delivery failed',
      );
    return delivery;
  }

  private async post(
    url: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ ok: boolean; status: number | null; error: string | null }> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'slotdeck-agent' },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status, error: null };
      if (response.status >= 300 && response.status < 400)
        return {
          ok: false,
          status: response.status,
          error: `the webhook answered a redirect (${response.status}), which is not followed: use the final URL`,
        };
      return { ok: false, status: response.status, error: `the webhook answered HTTP ${response.status}` };
    } catch (error) {
      const err = error as Error & { cause?: { code?: string; message?: string } };
      const reason =
        err.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : (err.cause?.code ?? err.cause?.message ?? err.message);
      return { ok: false, status: null, error: scrub(`could not reach the webhook: ${reason}`, url) };
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeping.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.sleeping.add(wake);
    });
  }

  /** Stops retrying; what is queued is dropped (the history keeps it). */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const wake of [...this.sleeping]) wake();
    await this.draining;
  }

  /** Resolves once everything queued is delivered or given up (tests). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }
}
