/**
 * Alerts over real parts: SQLite with the agent's migrations, the operations bus, and a loopback HTTP server as the
 * webhook's receiver. The health details are given by the test (they are the rules' input), and the clock is the
 * test's, so "an hour later" needs no waiting.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HealthDetails, QuotaStatus } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { AlertService } from '../../../../remote-agent/src/modules/alerts/service.js';
import { AlertWebhook, type DeliveryOptions } from '../../../../remote-agent/src/modules/alerts/webhook.js';
import { OpsEvents } from '../../../../remote-agent/src/ops/events.js';

export const START = Date.parse('2026-12-01T12:00:00.000Z');

export function healthDetails(overrides: Partial<HealthDetails> = {}): HealthDetails {
  return {
    status: 'ok',
    checkedAt: new Date(START).toISOString(),
    problems: [],
    version: 'test',
    uptimeS: 60,
    agent: { pid: 1, startedAt: new Date(START).toISOString(), rssBytes: 1, heapUsedBytes: 1, eventLoopDelayP99Ms: 1 },
    database: {
      ok: true,
      schemaVersion: 7,
      sizeBytes: 1,
      walBytes: 0,
      lastCheckpointAt: null,
      integrity: { ok: true, checkedAt: null, detail: null },
      writable: true,
      lastWriteError: null,
    },
    supervisor: { ok: true, daemonPid: 1, error: null },
    slots: [],
    disk: { path: '/data', freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3, freePercent: 50 },
    memory: { totalBytes: 16 * 1024 ** 3, availableBytes: 8 * 1024 ** 3, usedPercent: 50 },
    load: { one: 0, five: 0, fifteen: 0, cpus: 2 },
    upstream: { lastStatus: null, lastAt: null, lastError: null, errorRate5m: null },
    backup: { lastSuccessAt: null, ageS: null, lastError: null },
    tls: { configured: false, notAfter: null, daysLeft: null },
    ...overrides,
  };
}

export function slot(id: string, state: string, restarts = 0): HealthDetails['slots'][number] {
  return { id, name: `name-${id}`, state, pid: null, restarts, memoryBytes: null, cpuPercent: null, viewers: 0 };
}

export interface Received {
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

/** A webhook receiver on loopback: answers each POST with the next status of `statuses` (then 200). */
export class Receiver {
  readonly received: Received[] = [];
  statuses: number[] = [];
  /** Milliseconds to wait before answering (a slow receiver). */
  delayMs = 0;
  private server: Server | null = null;
  url = '';

  async start(path = '/services/T000/B000/SECRETPATHxyz'): Promise<this> {
    this.server = createServer((request, response) => {
      let text = '';
      request.on('data', (chunk: Buffer) => (text += chunk.toString()));
      request.on('end', () => {
        this.received.push({ body: JSON.parse(text || '{}') as Record<string, unknown>, headers: request.headers });
        const status = this.statuses.shift() ?? 200;
        setTimeout(() => {
          if (status >= 300 && status < 400) response.setHeader('location', `${this.url}/elsewhere`);
          response.writeHead(status).end('ok');
        }, this.delayMs);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

export interface AlertHarness {
  dir: string;
  db: Db;
  ops: OpsEvents;
  alerts: AlertService;
  webhook: AlertWebhook;
  clock: { now: () => number; advance: (ms: number) => void };
  details: HealthDetails;
  quotas: Array<{ userId: string; username: string; quotas: QuotaStatus[] }>;
  backupsEnabled: boolean;
  logs: string[];
  /** Evaluates once and waits for the webhook's queue. */
  tick(): Promise<void>;
  close(): Promise<void>;
}

export function startAlerts(
  options: { delivery?: Partial<DeliveryOptions>; dir?: string; db?: Db } = {},
): AlertHarness {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sd-alerts-'));
  const db = options.db ?? openDatabase(join(dir, 'agent.db'));
  const ops = new OpsEvents();
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(line) });
  let nowMs = START;
  const clock = { now: () => nowMs, advance: (ms: number) => void (nowMs += ms) };
  const webhook = new AlertWebhook({
    db,
    dataDir: dir,
    logger,
    now: clock.now,
    options: { attempts: 4, baseDelayMs: 5, maxDelayMs: 40, timeoutMs: 2000, ...options.delivery },
  });
  const harness: AlertHarness = {
    dir,
    db,
    ops,
    webhook,
    clock,
    details: healthDetails(),
    quotas: [],
    backupsEnabled: false,
    logs,
    alerts: null as unknown as AlertService,
    async tick() {
      await harness.alerts.evaluate();
      await webhook.idle();
    },
    async close() {
      await harness.alerts.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  harness.alerts = new AlertService({
    db,
    ops,
    webhook,
    logger,
    intervalMs: 600_000,
    now: clock.now,
    pid: 4242,
    inputs: {
      details: () => Promise.resolve(harness.details),
      quotaUsers: () => harness.quotas,
      backupsEnabled: () => harness.backupsEnabled,
    },
  });
  harness.alerts.start();
  return harness;
}
