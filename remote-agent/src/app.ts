import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AgentConfig } from './config.js';
import { TTYD_SUBPROTOCOL } from './contract/index.js';
import type { Db } from './db/database.js';
import { AdminTokenVerifier } from './http/admin-token.js';
import { registerAdminAuth } from './http/auth.js';
import { registerErrorHandling } from './http/errors.js';
import { redactUrl } from './logger.js';
import { registerHealthRoutes } from './modules/health/routes.js';
import { SlotPaths } from './modules/slots/paths.js';
import { SlotRepository } from './modules/slots/repository.js';
import { registerSlotRoutes } from './modules/slots/routes.js';
import { SlotService, type HostTools } from './modules/slots/service.js';
import { TerminalHost } from './modules/terminal/host.js';
import { registerTerminalRoutes } from './modules/terminal/routes.js';
import { TicketStore } from './modules/terminal/tickets.js';
import { TtydBridge } from './modules/terminal/ttyd.js';
import type { ProcessSupervisor } from './supervisor/supervisor.js';
import { findExecutable } from './util/executables.js';
import { AGENT_VERSION } from './version.js';

export interface AgentDeps {
  config: AgentConfig;
  db: Db;
  supervisor: ProcessSupervisor;
  logger: Logger;
  /** Programs the slot backends need; looked up in PATH when not given. */
  tools?: HostTools;
}

export interface Agent {
  app: FastifyInstance;
  slots: SlotService;
  terminals: TerminalHost;
  tools: HostTools;
  /** Connects to PM2 and takes over the slots. Until it succeeds, slot routes answer 503. */
  start(): Promise<void>;
  /** Graceful stop: clients are told, screens saved, listeners closed. Slots keep running under PM2. */
  close(): Promise<void>;
}

export function findHostTools(path = process.env.PATH): HostTools {
  return {
    dtach: findExecutable('dtach', path),
    ttyd: findExecutable('ttyd', path),
    tmux: findExecutable('tmux', path),
  };
}

/** The composition root: every service gets its dependencies here, and tests build the agent through it. */
export async function buildApp(deps: AgentDeps): Promise<Agent> {
  const { config, db, supervisor, logger } = deps;
  const tools = deps.tools ?? findHostTools();
  const startedAt = Date.now();
  let supervisorProblem: string | null = 'not connected to PM2 yet';

  const paths = new SlotPaths(config.dataDir, config.runDir);
  const tickets = new TicketStore();
  const repo = new SlotRepository(db);
  const terminals = new TerminalHost({
    runDir: config.runDir,
    screenDir: (id) => paths.screenDir(id),
    socketPath: (id) => paths.socket(id),
    scrollbackLines: config.terminal.scrollbackLines,
    journalCompactBytes: config.terminal.journalCompactBytes,
    tickets,
    logger,
    onSizeChange: (id, size) => repo.update(id, { cols: size.cols, rows: size.rows }),
  });
  const ttyd = new TtydBridge({ paths, tools, tickets, logger, scrollbackLines: config.terminal.scrollbackLines });
  const slots = new SlotService({ config, repo, supervisor, terminals, ttyd, tickets, paths, tools, logger });

  const app = Fastify({
    // pino's Logger and Fastify's base logger differ only in generics; tsc needs the widening, lint thinks not.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: logger as FastifyBaseLogger,
    // Requests are logged once, by the onResponse hook below (quietly for successful reads the panel polls).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // The admin listener is reached through SSH tunnels; there is no proxy in front of it.
    trustProxy: false,
  });
  app.addHook('onResponse', async (request, reply) => {
    const quiet = request.method === 'GET' && reply.statusCode < 400;
    request.log[quiet ? 'debug' : 'info'](
      {
        method: request.method,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
  registerErrorHandling(app);
  registerAdminAuth(app, new AdminTokenVerifier(config.dataDir));
  await app.register(websocket, {
    options: {
      maxPayload: 4 * 1024 * 1024,
      handleProtocols: (protocols) => (protocols.has(TTYD_SUBPROTOCOL) ? TTYD_SUBPROTOCOL : false),
    },
  });
  registerHealthRoutes(app, {
    db,
    supervisor,
    slots,
    version: AGENT_VERSION,
    startedAt,
    supervisorProblem: () => supervisorProblem,
  });
  registerSlotRoutes(app, slots);
  registerTerminalRoutes(app, { slots, terminals, ttyd, tickets });

  let closing: Promise<void> | null = null;
  return {
    app,
    slots,
    terminals,
    tools,
    async start() {
      try {
        await slots.start();
        supervisorProblem = null;
      } catch (error) {
        supervisorProblem = (error as Error).message;
        throw error;
      }
    },
    close() {
      closing ??= (async () => {
        await slots.stop();
        await terminals.close();
        await app.close();
        await supervisor.disconnect();
      })();
      return closing;
    },
  };
}
