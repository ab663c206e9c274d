/**
 * Share links over the real modules: an agent built with buildApp (SQLite, the built-in terminal host), the public
 * site's frame (helmet, coded errors) with the share routes, the public terminal route and the pages module, and
 * the admin routes on an admin-style context. The PM2 stand-in supervises nothing: a slot's terminal is opened in
 * the host without a program (clients attach and get its stored screen); programs and typing are in
 * tests/integration/agent/share.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
} from '../../../../remote-agent/node_modules/fastify/fastify.js';
import websocket from '../../../../remote-agent/node_modules/@fastify/websocket';
import { buildApp, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import { AgentErrorCode, CreateUserBody } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { AppError } from '../../../../remote-agent/src/errors.js';
import { registerErrorHandling } from '../../../../remote-agent/src/http/errors.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { AuditLog } from '../../../../remote-agent/src/modules/audit/audit-log.js';
import {
  registerShareAdminRoutes,
  registerSharePublicRoutes,
  type ShareSessions,
} from '../../../../remote-agent/src/modules/share/routes.js';
import { ShareService, type ShareServiceDeps } from '../../../../remote-agent/src/modules/share/service.js';
import { ShareStore } from '../../../../remote-agent/src/modules/share/store.js';
import { registerPages } from '../../../../remote-agent/src/modules/site/pages.js';
import { registerPublicSite, sameOriginRequest } from '../../../../remote-agent/src/modules/site/site.js';
import {
  registerPublicTerminalRoute,
  registerTerminalRoutes,
} from '../../../../remote-agent/src/modules/terminal/routes.js';
import { TicketStore } from '../../../../remote-agent/src/modules/terminal/tickets.js';
import { idleSupervisor } from '../../helpers/idle-supervisor.js';

export const PUBLIC_URL = 'https://agent.example';
export const SITE_ORIGIN = 'http://share.test';
export const START = Date.parse('2026-12-01T12:00:00.000Z');

/** Sessions with modules/auth's guard contract: cookie `sid`, CSRF header on state-changing requests. */
export class TestSessions implements ShareSessions {
  private readonly sessions = new Map<string, { userId: string; csrf: string; sessionId: string }>();
  signIn(userId: string): { cookie: string; csrf: string; sessionId: string } {
    const token = randomBytes(16).toString('hex');
    const csrf = randomBytes(16).toString('hex');
    const sessionId = `ses_${randomBytes(6).toString('hex')}`;
    this.sessions.set(token, { userId, csrf, sessionId });
    return { cookie: `sid=${token}`, csrf, sessionId };
  }
  private session(request: FastifyRequest) {
    const token = /(?:^|;\s*)sid=([0-9a-f]+)/.exec(request.headers.cookie ?? '')?.[1];
    return token ? (this.sessions.get(token) ?? null) : null;
  }
  caller(request: FastifyRequest): Promise<{ userId: string; sessionId: string } | null> {
    const session = this.session(request);
    return Promise.resolve(session ? { userId: session.userId, sessionId: session.sessionId } : null);
  }
  require(request: FastifyRequest): Promise<{ userId: string }> {
    const session = this.session(request);
    if (!session) throw new AppError(AgentErrorCode.AUTH_SESSION_REQUIRED, 401, 'Sign in first.');
    if (!['GET', 'HEAD'].includes(request.method)) {
      if (!sameOriginRequest(request) || request.headers['x-slotdeck-csrf'] !== session.csrf)
        throw new AppError(AgentErrorCode.AUTH_CSRF_REFUSED, 403, 'Reload the page and try again.');
    }
    return Promise.resolve({ userId: session.userId });
  }
}

export interface ShareHarness {
  dir: string;
  db: Db;
  agent: Agent;
  shares: ShareService;
  tickets: TicketStore;
  sessions: TestSessions;
  site: FastifyInstance;
  admin: FastifyInstance;
  clock: { now: () => number; advance: (ms: number) => void };
  settings: { ownersMayShare: boolean };
  logs: string[];
  /** Registers a slot row (owned by `ownerId`) and, with `open`, opens its terminal in the host. */
  addSlot(name: string, options?: { ownerId?: string | null; open?: boolean }): string;
  addUser(username: string): string;
  /** Gives the slot to another user (or nobody). */
  setSlotOwner(slotId: string, ownerId: string | null): void;
  close(): Promise<void>;
}

export async function startShares(
  options: { exchangeLimits?: ShareServiceDeps['exchangeLimits'] } = {},
): Promise<ShareHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-share-'));
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'admin.port': 0, 'gateway.enabled': false } });
  mkdirSync(config.runDir, { recursive: true });
  const db = openDatabase(join(dir, 'agent.db'));
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(line) });
  const agent = await buildApp({
    config,
    db,
    supervisor: idleSupervisor,
    logger,
    tools: { dtach: null, ttyd: null, tmux: null },
  });
  await agent.start();
  const settings = { ownersMayShare: true };
  let nowMs = START;
  const clock = { now: () => nowMs, advance: (ms: number) => void (nowMs += ms) };
  const tickets = new TicketStore();
  const slotNames = new Map<string, { name: string; ownerId: string | null }>();
  const shares = new ShareService({
    store: new ShareStore(db),
    slotOf: (id) => {
      const slot = slotNames.get(id);
      return slot ? { id, ...slot } : null;
    },
    backendOf: () => agent.terminals,
    tickets,
    audit: new AuditLog(db, clock.now),
    publicUrl: () => PUBLIC_URL,
    ownersMayShare: () => settings.ownersMayShare,
    now: clock.now,
    // Tests open many viewers from one address; the throttle's own test passes tight limits.
    exchangeLimits: options.exchangeLimits ?? {
      perAddress: { burst: 1000, refillMs: 1 },
      perShare: { burst: 1000, refillMs: 1 },
    },
  });
  const sessions = new TestSessions();
  const distDir = join(dir, 'portal-dist');
  mkdirSync(distDir);
  writeFileSync(
    join(distDir, 'share.html'),
    '<!doctype html><html><head><title>share</title></head><body><div id="terminal"></div><script type="module" src="/portal-assets/share-abcdefgh.js"></script></body></html>',
  );
  // Paths such as /share/.. land on the portal's own page.
  writeFileSync(
    join(distDir, 'index.html'),
    '<!doctype html><html><head><title>portal</title></head><body></body></html>',
  );
  const site = Fastify({
    // The gateway listener's logger, requests not logged (as the gateway does); the site's errors reach `logs`.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: logger.child({ listener: 'gateway' }) as FastifyBaseLogger,
    disableRequestLogging: true,
  });
  registerPublicSite(site, {
    secure: false,
    modules: [
      (context) => registerPages(context, { distDir }),
      (context) =>
        registerPublicTerminalRoute(context, {
          backendOf: () => agent.terminals,
          tickets,
          opening: { timeoutMs: 2000, allowedOrigins: [] },
        }),
      (context) =>
        registerSharePublicRoutes(context, { shares, sessions, ownersMayShare: () => settings.ownersMayShare }),
    ],
  });
  await site.ready();
  const admin = Fastify({ logger: false });
  registerErrorHandling(admin);
  await admin.register(websocket);
  registerShareAdminRoutes(admin, shares);
  registerTerminalRoutes(admin, {
    backendOf: () => agent.terminals,
    tickets,
    opening: { timeoutMs: 2000, allowedOrigins: [] },
  });
  await admin.ready();

  const addUser = (username: string): string => {
    return agent.users.create(CreateUserBody.parse({ username })).id;
  };
  let counter = 0;
  const addSlot = (name: string, options: { ownerId?: string | null; open?: boolean } = {}): string => {
    counter += 1;
    const id = `slot${String(counter).padStart(6, '0')}`;
    const at = new Date(START).toISOString();
    db.prepare(
      `INSERT INTO slots (id, name, command_json, argv_json, env_json, work_dir, work_dir_managed, home_dir, terminal,
         desired_state, cols, rows, created_at, updated_at, owner_id)
       VALUES (?, ?, '["sh"]', '["sh"]', '{}', ?, 0, ?, 'builtin', 'stopped', 80, 24, ?, ?, ?)`,
    ).run(id, name, dir, dir, at, at, options.ownerId ?? null);
    slotNames.set(id, { name, ownerId: options.ownerId ?? null });
    if (options.open !== false)
      agent.terminals.open(
        { id, name, argv: ['sh'], workDir: dir, cols: 80, rows: 24, ownerId: null, memoryLimitMb: null },
        false,
      );
    return id;
  };

  return {
    dir,
    db,
    agent,
    shares,
    tickets,
    sessions,
    site,
    admin,
    clock,
    settings,
    logs,
    addSlot,
    addUser,
    setSlotOwner(slotId: string, ownerId: string | null) {
      db.prepare('UPDATE slots SET owner_id = ? WHERE id = ?').run(ownerId, slotId);
      const slot = slotNames.get(slotId);
      if (slot) slot.ownerId = ownerId;
    },
    async close() {
      shares.close();
      await site.close();
      await admin.close();
      await agent.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
