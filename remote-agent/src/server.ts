import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { buildApp, type Agent } from './app.js';
import type { AgentConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { createLogger } from './logger.js';
import { Pm2Supervisor } from './supervisor/pm2.js';
import { detectIsolation, IsolationError } from './modules/slots/accounts.js';
import type { IsolationLayout } from './modules/slots/paths.js';
import { scrubSecretEnv } from './util/secret-env.js';
import { acquireInstanceLock, InstanceLockedError } from './util/instance-lock.js';
import { AGENT_VERSION } from './version.js';
import { applyStagedRestore } from './modules/backups/restore.js';

/** Written while the agent runs: how the CLI (and the panel, over SSH) finds it. */
export interface AgentState {
  pid: number;
  adminUrl: string;
  /** The public gateway listener, when it listens. */
  gatewayUrl?: string | null;
  version: string;
  startedAt: string;
}

export const statePath = (dataDir: string): string => join(dataDir, 'agent-state.json');
export const databasePath = (dataDir: string): string => join(dataDir, 'agent.db');

export function readAgentState(dataDir: string): AgentState | null {
  try {
    const state = JSON.parse(readFileSync(statePath(dataDir), 'utf8')) as AgentState;
    process.kill(state.pid, 0);
    return state;
  } catch {
    return null;
  }
}

export class StartupError extends Error {}

function prepareDirectories(config: AgentConfig): void {
  for (const dir of [
    config.dataDir,
    config.runDir,
    join(config.dataDir, 'secrets'),
    join(config.dataDir, 'logs'),
    config.pm2Home,
  ]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  // Created before the mode was ours, or by an older version: tighten them.
  for (const dir of [config.dataDir, config.runDir, join(config.dataDir, 'secrets')]) chmodSync(dir, 0o700);
}

export interface RunningAgent {
  agent: Agent;
  adminUrl: string;
  logger: Logger;
  stop(): Promise<void>;
}

/** Starts the agent: database, PM2, the admin listener on loopback. Slots that were running keep running. */
export async function runAgent(
  config: AgentConfig,
  options: { logger?: Logger; handleSignals?: boolean } = {},
): Promise<RunningAgent> {
  const logger = options.logger ?? createLogger(config.logLevel);
  // Before anything is spawned: PM2's daemon (and so every slot) inherits the agent's environment.
  scrubSecretEnv();
  let isolation: IsolationLayout | null;
  try {
    isolation = await detectIsolation(logger);
  } catch (error) {
    if (error instanceof IsolationError) throw new StartupError(error.message);
    throw error;
  }
  prepareDirectories(config);
  let lock: { release(): void };
  try {
    lock = await acquireInstanceLock(join(config.runDir, 'agent.lock'));
  } catch (error) {
    if (!(error instanceof InstanceLockedError)) throw error;
    const other = readAgentState(config.dataDir);
    throw new StartupError(
      `Another agent${other ? ` (pid ${other.pid}, ${other.adminUrl})` : ''} is running with the data dir ${config.dataDir}. Stop it first, or use another data dir.`,
    );
  }
  // A restore staged through the admin API or the CLI is applied before the database is opened (modules/backups).
  await applyStagedRestore(config.dataDir, logger, { isolated: isolation !== null });
  const db = openDatabase(databasePath(config.dataDir));
  const supervisor = new Pm2Supervisor(config.pm2Home);
  const agent = await buildApp({ config, db, supervisor, logger, isolation });
  if (isolation) logger.info({ homes: isolation.homes, run: isolation.run }, 'slots run as accounts of their own');

  let adminUrl: string;
  try {
    adminUrl = await agent.app.listen({ host: config.admin.host, port: config.admin.port });
  } catch (error) {
    await agent.close().catch(() => undefined);
    db.close();
    lock.release();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new StartupError(
        `Port ${config.admin.port} on ${config.admin.host} is already in use (another agent?). Set SLOTDECK_AGENT_ADMIN_PORT or --port to a free port.`,
      );
    }
    throw error;
  }
  // The gateway is a second, public listener. If it cannot listen the admin API still serves (its status says why).
  let gatewayUrl: string | null = null;
  if (agent.gateway) {
    try {
      gatewayUrl = await agent.gateway.listen();
      logger.info({ gatewayUrl, host: config.gateway.host }, 'gateway listening');
    } catch (error) {
      logger.error(
        { err: error, host: config.gateway.host, port: config.gateway.port },
        (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
          ? `gateway port ${config.gateway.port} is in use: end users cannot reach it. Set SLOTDECK_AGENT_GATEWAY_PORT to a free port.`
          : 'gateway cannot listen',
      );
    }
  }
  const state: AgentState = {
    pid: process.pid,
    adminUrl,
    gatewayUrl,
    version: AGENT_VERSION,
    startedAt: new Date().toISOString(),
  };
  writeFileSync(`${statePath(config.dataDir)}.tmp`, JSON.stringify(state), { mode: 0o600 });
  renameSync(`${statePath(config.dataDir)}.tmp`, statePath(config.dataDir));
  logger.info(
    { adminUrl, dataDir: config.dataDir, pm2Home: config.pm2Home, version: AGENT_VERSION, tools: agent.tools },
    'agent listening',
  );
  if (!agent.tools.dtach)
    logger.error('dtach is not installed: slots cannot start. Install it (Debian/Ubuntu: apt-get install dtach).');

  // PM2 may be slow or broken; keep the listener up (health says why) and retry until it answers.
  let stopping = false;
  const connect = (async () => {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        await agent.start();
        logger.info({ attempt }, 'supervising slots with PM2');
        return;
      } catch (error) {
        logger.error({ err: error, attempt }, 'cannot use PM2 yet; retrying');
        await sleep(Math.min(10_000, 500 * attempt));
      }
    }
  })();

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      logger.info('agent stopping; slots keep running');
      await connect.catch(() => undefined);
      await agent.close();
      db.close();
      lock.release();
      if (existsSync(statePath(config.dataDir)) && readAgentState(config.dataDir)?.pid === process.pid)
        rmSync(statePath(config.dataDir), { force: true });
      logger.info('agent stopped');
    })();
    return stopped;
  };

  if (options.handleSignals !== false) {
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'signal received');
      void stop().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'unclean stop');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // A write on a full disk that a timer did not expect must not end every terminal and the gateway: the storage
    // monitor reports it (health, alert) and the agent goes on. Any other uncaught error still ends the process.
    process.on('uncaughtException', (error, origin) => {
      if (agent.storage.reportWriteFailure(error, 'a background write')) {
        logger.error({ err: error, origin }, 'a write failed: the data dir is full; the agent goes on');
        return;
      }
      logger.fatal({ err: error, origin }, 'uncaught exception');
      process.stderr.write(`${error.stack ?? String(error)}\n`);
      process.exit(1);
    });
  }
  await connect;
  return { agent, adminUrl, logger, stop };
}
