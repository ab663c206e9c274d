/**
 * A gateway built from its real parts (users and keys, verifier, quotas, prices, recorder and usage queries on a
 * SQLite file in a temp dir), with the fake Messages API as upstream. Tests reach it through Fastify's inject or,
 * for what only a socket shows (uploads, closed connections), over real HTTP on 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayConfig, type ModelPrice } from '../../../../remote-agent/src/config.js';
import { CreateKeyBody, type CreatedKey, type Quota } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { Gateway } from '../../../../remote-agent/src/modules/gateway/gateway.js';
import { RateLimiter } from '../../../../remote-agent/src/modules/gateway/rate-limiter.js';
import type { Refusal } from '../../../../remote-agent/src/modules/gateway/refusal.js';
import { GatewaySettings, UpstreamKeyStore } from '../../../../remote-agent/src/modules/gateway/settings.js';
import { PriceTable } from '../../../../remote-agent/src/modules/usage/prices.js';
import { UsageQueries } from '../../../../remote-agent/src/modules/usage/queries.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import { UsageRecorder } from '../../../../remote-agent/src/modules/usage/recorder.js';
import { UserService } from '../../../../remote-agent/src/modules/users/service.js';
import { KeyVerifier } from '../../../../remote-agent/src/modules/users/verifier.js';
import type { OpsEvents } from '../../../../remote-agent/src/ops/events.js';
import {
  FAKE_UPSTREAM_KEY,
  startFakeAnthropic,
  type FakeAnthropic,
} from '../../../integration/fixtures/fake-anthropic.js';

export interface UsageRowRecord {
  model: string;
  input_tokens: number;
  output_tokens: number;
  cache_creation_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
  status: string;
  error_type: string | null;
  http_status: number | null;
}

export interface Harness {
  gateway: Gateway;
  upstream: FakeAnthropic | null;
  db: Db;
  users: UserService;
  quotas: QuotaService;
  recorder: UsageRecorder;
  /** What the gateway logged, as JSON lines. */
  logs: string[];
  /** Every refusal the gateway reported (GatewayDeps.onRefused), in order. */
  refusals: Refusal[];
  /** A new user with one key (scopes gateway and self unless told). */
  newKey(body?: Partial<CreateKeyBody>): { userId: string; created: CreatedKey };
  setQuotas(subject: 'user' | 'key', id: string, quotas: Quota[]): void;
  rows(): UsageRowRecord[];
  /** The listener's base URL once listen() ran. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

let users = 0;

export async function startHarness(
  options: {
    config?: Record<string, unknown>;
    prices?: Record<string, ModelPrice>;
    /** false: no fake upstream (the config's upstreamBaseUrl is used as given). */
    upstream?: boolean;
    /** The operations bus the gateway emits on (metrics and alerts listen). */
    ops?: OpsEvents;
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-gateway-'));
  const db = openDatabase(join(dir, 'agent.db'));
  const upstream = options.upstream === false ? null : await startFakeAnthropic();
  const logs: string[] = [];
  const refusals: Refusal[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(line) });
  const config = GatewayConfig.parse({
    port: 0,
    ...(upstream ? { upstreamBaseUrl: upstream.url } : {}),
    ...options.config,
  });
  const verifier = new KeyVerifier(db);
  const userService = new UserService({ db, verifier });
  const quotas = new QuotaService({ db });
  const prices = new PriceTable(options.prices ?? {});
  const recorder = new UsageRecorder({ db, prices, quotas, logger });
  const upstreamKey = new UpstreamKeyStore(dir, FAKE_UPSTREAM_KEY);
  const gateway = new Gateway({
    config,
    logger,
    keys: verifier,
    users: {
      find: (id) => {
        try {
          return userService.get(id);
        } catch {
          return null;
        }
      },
    },
    limiter: new RateLimiter(),
    quotas,
    prices,
    recorder,
    usage: new UsageQueries({ db, archiveFile: join(dir, 'archive.db') }),
    settings: new GatewaySettings(db),
    upstreamKey,
    onRefused: (refusal) => refusals.push(refusal),
    ...(options.ops ? { ops: options.ops } : {}),
  });
  await gateway.app.ready();
  return {
    gateway,
    upstream,
    db,
    users: userService,
    quotas,
    recorder,
    logs,
    refusals,
    newKey(body = {}) {
      const user = userService.create({ username: `user${++users}`, role: 'member', active: true });
      const created = userService.createKey(user.id, CreateKeyBody.parse({ name: 'test', ...body }));
      return { userId: user.id, created };
    },
    setQuotas(subject, id, list) {
      quotas.set(subject, id, list);
    },
    rows: () =>
      db
        .prepare(
          `SELECT model, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, status,
             error_type, http_status FROM usage_events ORDER BY id`,
        )
        .all() as UsageRowRecord[],
    listen: () => gateway.listen(),
    async close() {
      await gateway.close();
      await recorder.close();
      verifier.close();
      await upstream?.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RawExchange {
  /** Everything the server sent before it closed the connection (or before `waitMs` ran out). */
  response: string;
  /** True when the server closed the connection. */
  closed: boolean;
  status: number | null;
  body: unknown;
}

/**
 * Sends `head` (and then `body`, if given) on a raw socket and collects what comes back until the server closes the
 * connection or `waitMs` passes. Nothing more is sent: this is an upload that stalls after `body`.
 */
export function rawExchange(
  url: string,
  head: string | Buffer,
  body: Buffer | null,
  waitMs: number,
  options: { end?: boolean } = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket: Socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      const response = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(response)?.[1];
      const text = response.slice(response.indexOf('\r\n\r\n') + 4);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      socket.destroy();
      resolve({ response, closed, status: status ? Number(status) : null, body: parsed });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(head);
    if (body) socket.write(body);
    // Half-closing says "that is all": the server answers what it got instead of waiting for more.
    if (options.end) socket.end();
  });
}
