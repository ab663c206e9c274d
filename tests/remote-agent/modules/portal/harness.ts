/**
 * The portal's routes on the public site's frame (helmet, coded errors, JSON bodies), over an agent built with
 * buildApp (users, keys, slots, SQLite) and a PM2 stand-in that supervises nothing: these tests are about who may do
 * what; real slots and the real sign-in are in tests/integration/agent/portal.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, {
  type FastifyInstance,
  type FastifyRequest,
} from '../../../../remote-agent/node_modules/fastify/fastify.js';
import { buildApp, findHostTools, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import { AgentErrorCode, type PortalLimits } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { AppError } from '../../../../remote-agent/src/errors.js';
import { answerFrameworkError } from '../../../../remote-agent/src/http/errors.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { AuditLog } from '../../../../remote-agent/src/modules/audit/audit-log.js';
import { PrefsStore } from '../../../../remote-agent/src/modules/portal/prefs.js';
import {
  registerPortalRoutes,
  type PortalCaller,
  type PortalGuard,
} from '../../../../remote-agent/src/modules/portal/routes.js';
import { registerPublicSite, sameOriginRequest } from '../../../../remote-agent/src/modules/site/site.js';
import { TicketStore } from '../../../../remote-agent/src/modules/terminal/tickets.js';
import { UsageQueries } from '../../../../remote-agent/src/modules/usage/queries.js';
import { QuotaService } from '../../../../remote-agent/src/modules/usage/quotas.js';
import type { ProcessSupervisor } from '../../../../remote-agent/src/supervisor/supervisor.js';

/** A PM2 stand-in that supervises nothing: slots stay registered and stopped. */
export const idleSupervisor: ProcessSupervisor = {
  connect: () => Promise.resolve(),
  list: () => Promise.resolve([]),
  describe: () => Promise.resolve(null),
  start: () => Promise.resolve(),
  remove: () => Promise.resolve(),
  onProcessEvent: () => () => undefined,
  daemonPid: () => null,
  disconnect: () => Promise.resolve(),
  shutdownDaemon: () => Promise.resolve(),
};

export const SITE = 'http://portal.test';
export const HOST = 'portal.test';

/**
 * A session guard with the design's contract (modules/auth/guard.ts): cookie `sid`, CSRF header `x-slotdeck-csrf`
 * checked with sameOriginRequest on state-changing requests. Sessions end through `end`.
 */
export class TestGuard implements PortalGuard {
  private readonly sessions = new Map<string, { caller: PortalCaller; csrf: string }>();
  private readonly listeners = new Set<(ids: string[]) => void>();

  signIn(userId: string, username: string): { cookie: string; csrf: string; sessionId: string } {
    const sessionId = randomBytes(8).toString('hex');
    const token = randomBytes(16).toString('hex');
    const csrf = randomBytes(16).toString('hex');
    this.sessions.set(token, { caller: { userId, username, sessionId }, csrf });
    return { cookie: `sid=${token}`, csrf, sessionId };
  }
  end(sessionId: string): void {
    for (const [token, session] of this.sessions)
      if (session.caller.sessionId === sessionId) this.sessions.delete(token);
    for (const listener of this.listeners) listener([sessionId]);
  }
  private session(request: FastifyRequest) {
    const token = /(?:^|;\s*)sid=([0-9a-f]+)/.exec(request.headers.cookie ?? '')?.[1];
    return token ? (this.sessions.get(token) ?? null) : null;
  }
  caller(request: FastifyRequest): Promise<PortalCaller | null> {
    return Promise.resolve(this.session(request)?.caller ?? null);
  }
  require(request: FastifyRequest): Promise<PortalCaller> {
    const session = this.session(request);
    if (!session) throw new AppError(AgentErrorCode.AUTH_SESSION_REQUIRED, 401, 'Sign in first.');
    if (!['GET', 'HEAD'].includes(request.method)) {
      if (!sameOriginRequest(request) || request.headers['x-slotdeck-csrf'] !== session.csrf)
        throw new AppError(AgentErrorCode.AUTH_CSRF_REFUSED, 403, 'Reload the page and try again.');
    }
    return Promise.resolve(session.caller);
  }
  onSessionsEnded(listener: (ids: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface PortalHarness {
  dir: string;
  db: Db;
  agent: Agent;
  site: FastifyInstance;
  guard: TestGuard;
  tickets: TicketStore;
  quotas: QuotaService;
  limits: PortalLimits;
  errorLogs: string[];
  close(): Promise<void>;
}

export async function startPortal(): Promise<PortalHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-portal-'));
  const config = loadConfig({
    env: {},
    overrides: { dataDir: dir, 'admin.port': 0, 'gateway.enabled': false },
  });
  mkdirSync(config.runDir, { recursive: true });
  const db = openDatabase(join(dir, 'agent.db'));
  const errorLogs: string[] = [];
  const logger = createLogger('error', { write: (line: string) => void errorLogs.push(line) });
  const agent = await buildApp({
    config,
    db,
    supervisor: idleSupervisor,
    logger,
    tools: findHostTools(),
  });
  await agent.start();
  const guard = new TestGuard();
  const tickets = new TicketStore();
  const quotas = new QuotaService({ db });
  const limits: PortalLimits = { keyLimit: 3, allowedScopes: ['gateway', 'self'], mayShare: false };
  // As the gateway's listener does for /api/public (a URL Fastify cannot route answers in the agent's format).
  const site = Fastify({ logger: false, frameworkErrors: answerFrameworkError });
  registerPublicSite(site, {
    secure: false,
    modules: [
      (context) =>
        registerPortalRoutes(context, {
          guard,
          slots: agent.slots,
          users: agent.users,
          usage: new UsageQueries({ db, archiveFile: join(dir, 'archive.db') }),
          quotas,
          tickets,
          prefs: new PrefsStore(db),
          audit: new AuditLog(db),
          limits: () => limits,
          publicUrl: () => null,
          gatewayUrl: () => 'http://127.0.0.1:7421',
          backends: () => [agent.terminals],
        }),
    ],
  });
  await site.ready();
  return {
    dir,
    db,
    agent,
    site,
    guard,
    tickets,
    quotas,
    limits,
    errorLogs,
    async close() {
      await site.close();
      await agent.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
