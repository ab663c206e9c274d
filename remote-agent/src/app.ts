import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AgentConfig } from './config.js';
import { AgentErrorCode, API_PREFIX, TTYD_SUBPROTOCOL } from './contract/index.js';
import type { Db } from './db/database.js';
import { AdminTokenVerifier } from './http/admin-token.js';
import { registerAdminAuth } from './http/auth.js';
import { answerFrameworkError, registerErrorHandling } from './http/errors.js';
import { AppError } from './errors.js';
import { redactUrl } from './logger.js';
import { registerGatewayAdminRoutes } from './modules/gateway/admin-routes.js';
import { Gateway } from './modules/gateway/gateway.js';
import { RateLimiter } from './modules/gateway/rate-limiter.js';
import { RequestLog } from './modules/gateway/request-log.js';
import { GatewaySettings, UpstreamKeyStore } from './modules/gateway/settings.js';
import { registerPages } from './modules/site/pages.js';
import type { PublicSiteModule } from './modules/site/site.js';
import { registerHealthRoutes } from './modules/health/routes.js';
import { AuditLog as AuthAuditLog } from './modules/audit/audit-log.js';
import { registerAuditRoutes } from './modules/audit/routes.js';
import { registerAuthAdminRoutes } from './modules/auth/admin-routes.js';
import { AuthSessionGuard, type SessionGuard } from './modules/auth/guard.js';
import { registerAuthPublicRoutes } from './modules/auth/public-routes.js';
import { AuthService } from './modules/auth/service.js';
import { registerAdminActivity, registerIdleRoutes } from './modules/idle/routes.js';
import { IdleService } from './modules/idle/service.js';
import { defaultStopCommand } from './modules/idle/stop-command.js';
import { IdleStore } from './modules/idle/store.js';
import { PriceTable } from './modules/usage/prices.js';
import { UsageQueries } from './modules/usage/queries.js';
import { QuotaService } from './modules/usage/quotas.js';
import { UsageRecorder } from './modules/usage/recorder.js';
import { registerUsageRoutes } from './modules/usage/routes.js';
import { registerUserRoutes } from './modules/users/routes.js';
import { UserService } from './modules/users/service.js';
import { KeyVerifier } from './modules/users/verifier.js';
import { SlotAccounts } from './modules/slots/accounts.js';
import { builtinProcessSpec } from './modules/slots/launch.js';
import { LAUNCHER_PATH, SlotPaths, type IsolationLayout } from './modules/slots/paths.js';
import { SlotRepository } from './modules/slots/repository.js';
import { registerSlotRoutes } from './modules/slots/routes.js';
import { SlotService, type HostTools, type SlotMetering } from './modules/slots/service.js';
import { TerminalHost } from './modules/terminal/host.js';
import {
  onWebSocketClientError,
  registerPublicTerminalRoute,
  registerTerminalRoutes,
} from './modules/terminal/routes.js';
import { registerShareAdminRoutes, registerSharePublicRoutes } from './modules/share/routes.js';
import { PrefsStore } from './modules/portal/prefs.js';
import { registerPortalRoutes } from './modules/portal/routes.js';
import { ShareService } from './modules/share/service.js';
import { ShareStore } from './modules/share/store.js';
import { TicketStore } from './modules/terminal/tickets.js';
import { TtydBridge } from './modules/terminal/ttyd.js';
import type { ProcessSupervisor } from './supervisor/supervisor.js';
import { findExecutable } from './util/executables.js';
import { join } from 'node:path';
import { AGENT_VERSION } from './version.js';
import { OpsEvents } from './ops/events.js';
// ops:imports (issue 13: each module adds its imports below this line)
import { registerAdminAudit } from './modules/audit/admin-actions.js';
import { LogRotator, pm2CapturedOutput } from './modules/logs/rotation.js';
import { registerLogRoutes } from './modules/logs/routes.js';
import { LogService } from './modules/logs/service.js';
import { quotaUsers } from './modules/alerts/inputs.js';
import { registerAlertRoutes } from './modules/alerts/routes.js';
import { AlertService } from './modules/alerts/service.js';
import { AlertWebhook } from './modules/alerts/webhook.js';
import { BackupService } from './modules/backups/service.js';
import { registerBackupRoutes } from './modules/backups/routes.js';
import { StorageMonitor } from './ops/storage.js';
import { HealthDetailsService } from './modules/health/details.js';
import { registerHealthDetailsRoute } from './modules/health/routes.js';
import { AgentMetrics } from './modules/metrics/metrics.js';
import { PublicMetricsToken } from './modules/metrics/public-token.js';
import { registerMetricsAdminRoutes, registerPublicMetricsRoute, isLoopbackHost } from './modules/metrics/routes.js';
import { MetricsSeriesSampler } from './modules/metrics/series.js';
import { BUILT_IN_PRICES, DEFAULT_PRICE_KEY } from './modules/usage/prices.js';

export interface AgentDeps {
  config: AgentConfig;
  db: Db;
  supervisor: ProcessSupervisor;
  logger: Logger;
  /** Programs the slot backends need; looked up in PATH when not given. */
  tools?: HostTools;
  /** Set on a host prepared by `setup-host`: each slot runs as an account of its own (see detectIsolation). */
  isolation?: IsolationLayout | null;
  /** Operations events (issue 13); a fresh bus when not given. Tests pass one to watch what the agent reports. */
  ops?: OpsEvents;
  /** Ends the agent so what runs it starts it again onto a staged restore (default: SIGTERM to itself). */
  restartForRestore?: () => void;
}

export interface Agent {
  app: FastifyInstance;
  slots: SlotService;
  terminals: TerminalHost;
  users: UserService;
  recorder: UsageRecorder;
  /** Requests the gateway refused, for the admin's request log. */
  requestLog: RequestLog;
  /** The public listener (end users' routes); null when disabled in the config. Listens once runAgent starts it. */
  gateway: Gateway | null;
  tools: HostTools;
  /** Idle auto-stop: the activity clock, the policy and the stop command. */
  idle: IdleService;
  /** End-user sign-in (better-auth), its session guard for the public site, and the audit log. */
  auth: AuthService;
  sessionGuard: SessionGuard;
  audit: AuthAuditLog;
  /** Share links of slots. */
  shares: ShareService;
  /** What the gateway, slots, terminals, supervisor and backups report, for metrics and alerts. */
  ops: OpsEvents;
  // ops:agent-fields (issue 13: each module adds its service below this line)
  /** Alert rules, history, recovery events and the webhook (modules/alerts). */
  alerts: AlertService;
  /** Scheduled backups, uploads and staged restores. */
  backups: BackupService;
  /** Whether the data dir can be written (full disk): refused gateway requests, paused screen journals. */
  storage: StorageMonitor;
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
  const ops = deps.ops ?? new OpsEvents(logger);
  // Whether the data dir can be written (ops/storage.ts): the gateway, the recorder, terminals and health ask it.
  const storage = new StorageMonitor({ dir: config.dataDir, ops, logger });

  const isolation = deps.isolation ?? null;
  const accounts = isolation ? new SlotAccounts(isolation) : undefined;
  const idle = new IdleService({
    store: new IdleStore(db),
    stopCommand: config.idle.stopCommand ?? defaultStopCommand(isolation),
    logger,
  });
  const repo = new SlotRepository(db);
  const paths = new SlotPaths(config.dataDir, config.runDir, isolation, (id) => repo.get(id)?.ownerId ?? null);
  const tickets = new TicketStore();
  const opening = {
    timeoutMs: config.terminal.openingTimeoutMs,
    allowedOrigins: config.terminal.allowedOrigins,
  };
  const terminals = new TerminalHost({
    runDir: config.runDir,
    screenDir: (id) => paths.screenDir(id),
    socketPath: (id) => paths.socket(id),
    // An isolated slot's socket is made in a folder its account can write: take it into the agent's own first.
    ...(accounts
      ? {
          beforeConnect: (id: string) =>
            accounts.claimSocket(paths.incomingSocket(id)!, paths.socket(id), paths.account(id)!),
        }
      : {}),
    scrollbackLines: config.terminal.scrollbackLines,
    journalCompactBytes: config.terminal.journalCompactBytes,
    storage,
    tickets,
    opening,
    logger,
    onSizeChange: (id, size) => repo.update(id, { cols: size.cols, rows: size.rows }),
    onInput: () => idle.noteActivity('terminal'),
    onOutputSent: (slotId, bytes) => ops.emit('terminal.output', { slotId, bytes }),
    dtach: tools.dtach,
    processSpec: (slot, dtach) => builtinProcessSpec(slot, paths, dtach),
  });
  const ttyd = new TtydBridge({
    paths,
    launcher: LAUNCHER_PATH,
    tools,
    tickets,
    opening,
    logger,
    scrollbackLines: config.terminal.scrollbackLines,
    onInput: () => idle.noteActivity('terminal'),
  });

  const verifier = new KeyVerifier(db);
  const quotas = new QuotaService({ db });
  // Bound below, once the slot service exists: a rotated slot key is handed to its slot.
  let slotsRef: SlotService | null = null;
  // Bound below, once sign-in exists: disabling or deleting a user ends their sessions, renames follow.
  let authRef: AuthService | null = null;
  const users = new UserService({
    db,
    verifier,
    onUserChanged: (id) =>
      void authRef
        ?.userChanged(id)
        .catch((error: unknown) => logger.warn({ err: error }, 'updating sign-in for a changed user failed')),
    onKeyRotated(oldKeyId, created) {
      quotas.inheritKey(oldKeyId, created.key.id);
      if (created.key.slotId)
        slotsRef?.replaceMeteredKey(created.key.slotId, created.key.id, created.secret, created.key.prefix);
    },
  });
  const findUser = (id: string): { id: string; username: string; active: boolean; deleted: boolean } | null => {
    try {
      return users.get(id);
    } catch {
      return null;
    }
  };
  const prices = new PriceTable(config.gateway.prices);
  const recorder = new UsageRecorder({ db, prices, quotas, logger, ops, storage });
  const usage = new UsageQueries({ db, archiveFile: join(config.dataDir, 'usage-archive.db') });
  const settings = new GatewaySettings(db);
  const upstreamKey = new UpstreamKeyStore(config.dataDir);
  const requestLog = new RequestLog({ db, logger });
  // The public site's parts (modules/site): sign-in, the portal's API and pages, share links. Each module pushes
  // its registrar below once its services exist; they are registered when the gateway starts listening.
  const publicSiteModules: PublicSiteModule[] = [];
  const audit = new AuthAuditLog(db);
  const publicUrl = (): string | null => config.portal.publicUrl ?? gateway?.url() ?? null;
  const auth = new AuthService({
    db,
    dataDir: config.dataDir,
    logger,
    audit,
    users,
    publicUrl,
    github: { webUrl: config.portal.githubUrl, apiUrl: config.portal.githubApiUrl },
    // Browsers keep Secure cookies from http://127.0.0.1 and localhost (secure contexts) too.
    secureCookie:
      config.gateway.tlsCertFile !== null ||
      (config.portal.publicUrl?.startsWith('https://') ?? false) ||
      ['127.0.0.1', '::1', 'localhost'].includes(config.gateway.host),
  });
  authRef = auth;
  const sessionGuard = new AuthSessionGuard(auth);
  publicSiteModules.push((site) => registerAuthPublicRoutes(site, { service: auth, guard: sessionGuard }));
  publicSiteModules.push((site) => registerPages(site, { logger }));
  const gateway = config.gateway.enabled
    ? new Gateway({
        config: config.gateway,
        logger,
        keys: verifier,
        users: { find: findUser },
        limiter: new RateLimiter(),
        quotas,
        prices,
        recorder,
        usage,
        settings,
        upstreamKey,
        onRefused: (refusal) => requestLog.record(refusal),
        ops,
        storage,
        onAuthenticated: () => idle.noteActivity('gateway'),
        publicSite: {
          // HSTS where browsers reach the site over TLS: the listener's own certificate, or a TLS proxy in front.
          secure: config.gateway.tlsCertFile !== null || (config.portal.publicUrl?.startsWith('https://') ?? false),
          modules: publicSiteModules,
        },
      })
    : null;
  const metering: SlotMetering = {
    requireOwner(userId) {
      const owner = findUser(userId);
      if (!owner || owner.deleted) {
        throw new AppError(
          AgentErrorCode.SLOT_OWNER_NOT_FOUND,
          400,
          `No user with id ${userId} to own the slot. Create the user first (POST ${API_PREFIX}/users), or leave ownerId out.`,
        );
      }
      if (!owner.active) {
        throw new AppError(
          AgentErrorCode.USER_DISABLED,
          409,
          `User "${owner.username}" is disabled and cannot own a slot. Enable the user first, or pick another owner.`,
        );
      }
    },
    issueSlotKey(ownerId, slotId, slotName) {
      const created = users.createKey(ownerId, { name: `slot ${slotName}`, scopes: ['gateway', 'self'] }, { slotId });
      return { keyId: created.key.id, prefix: created.key.prefix, secret: created.secret };
    },
    revokeSlotKeys: (slotId) => users.revokeKeysForSlot(slotId),
    keyPrefix(keyId) {
      try {
        return users.getKey(keyId).prefix;
      } catch {
        return null;
      }
    },
    gatewayUrl: () => gateway?.url() ?? null,
  };
  const slots = new SlotService({
    config,
    repo,
    supervisor,
    backends: { builtin: terminals, ttyd },
    tickets,
    paths,
    logger,
    metering,
    ...(accounts ? { accounts } : {}),
    ops,
    storage,
  });
  slotsRef = slots;
  const shares = new ShareService({
    store: new ShareStore(db),
    slotOf: (id) => {
      const row = repo.get(id);
      return row ? { id: row.id, name: row.name, ownerId: row.ownerId } : null;
    },
    backendOf: (id) => slots.backendOf(id),
    tickets,
    audit,
    publicUrl,
    ownersMayShare: () => auth.settings.get().ownersMayShare,
  });
  publicSiteModules.push((site) => {
    registerPublicTerminalRoute(site, { backendOf: (id) => slots.backendOf(id), tickets, opening });
    registerSharePublicRoutes(site, {
      shares,
      sessions: sessionGuard,
      ownersMayShare: () => auth.settings.get().ownersMayShare,
    });
  });
  // The end users' portal API (/api/public/portal): their slots, keys, usage and preferences.
  publicSiteModules.push((site) =>
    registerPortalRoutes(site, {
      guard: sessionGuard,
      slots,
      users,
      usage,
      quotas,
      tickets,
      prefs: new PrefsStore(db),
      audit,
      limits: () => {
        const stored = auth.settings.get();
        return {
          keyLimit: stored.portalKeyLimit,
          allowedScopes: stored.portalKeyScopes,
          mayShare: stored.ownersMayShare,
        };
      },
      publicUrl: () => config.portal.publicUrl,
      gatewayUrl: () => gateway?.url() ?? null,
      backends: () => [terminals, ttyd],
    }),
  );

  const app = Fastify({
    // pino's Logger and Fastify's base logger differ only in generics; tsc needs the widening, lint thinks not.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: logger as FastifyBaseLogger,
    // Requests are logged once, by the onResponse hook below (quietly for successful reads the panel polls).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // The admin listener is reached through SSH tunnels; there is no proxy in front of it.
    trustProxy: false,
    frameworkErrors: answerFrameworkError,
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
  registerAdminActivity(app, idle);
  await app.register(websocket, {
    errorHandler: onWebSocketClientError,
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
    storageFull: () => storage.state().full,
  });
  registerSlotRoutes(app, slots);
  registerUserRoutes(app, users);
  registerUsageRoutes(app, { queries: usage, quotas, users, archiveAfterDays: config.usage.archiveAfterDays });
  registerGatewayAdminRoutes(app, {
    gateway,
    settings,
    upstreamKey,
    users,
    requestLog,
    upstreamBaseUrl: config.gateway.upstreamBaseUrl,
    disabledStatus: () => ({
      url: null,
      listen: null,
      upstream: { baseUrl: config.gateway.upstreamBaseUrl, keyConfigured: upstreamKey.get() !== null },
      legacyMode: { ...settings.legacyMode, username: null },
      defaultRateLimit: { ...settings.defaultRateLimit },
      inFlight: 0,
    }),
  });
  registerTerminalRoutes(app, { backendOf: (id) => slots.backendOf(id), tickets, opening });
  registerIdleRoutes(app, idle);
  registerAuthAdminRoutes(app, { service: auth, users, audit });
  registerAuditRoutes(app, audit);
  registerShareAdminRoutes(app, shares);

  // ops:services (issue 13: metrics, alerts, logs, backups are built and their routes registered below, one block
  // each, in this order; a block uses only what is built above it)
  // ops:metrics
  // Health details and metrics (modules/health, modules/metrics). backupStatus is bound by the backups block below.
  let backupStatus: () => { lastSuccessAt: string | null; lastError: string | null } = () => ({
    lastSuccessAt: null,
    lastError: null,
  });
  const healthDetails = new HealthDetailsService({
    db,
    supervisor,
    slots,
    dataDir: config.dataDir,
    version: AGENT_VERSION,
    startedAt,
    supervisorProblem: () => supervisorProblem,
    ops,
    backupStatus: () => backupStatus(),
    tlsCertFile: config.gateway.tlsCertFile,
    storage,
    logger,
  });
  registerHealthDetailsRoute(app, healthDetails);
  const metrics = new AgentMetrics({
    ops,
    knownModels: [...Object.keys(BUILT_IN_PRICES), ...Object.keys(config.gateway.prices)].filter(
      (model) => model !== DEFAULT_PRICE_KEY,
    ),
    slots,
    openStreams: () => gateway?.exchanges?.openStreams() ?? 0,
    inFlight: () => gateway?.status().inFlight ?? 0,
    backupStatus: () => backupStatus(),
    storageFull: () => storage.state().full,
  });
  const metricsSeries = new MetricsSeriesSampler({ ops, slots });
  const metricsToken = new PublicMetricsToken(config.dataDir);
  registerMetricsAdminRoutes(app, {
    metrics,
    series: metricsSeries,
    token: metricsToken,
    gatewayUrl: () => gateway?.url() ?? null,
    publicListenerSecure: () =>
      config.gateway.tlsCertFile !== null ||
      (config.portal.publicUrl?.startsWith('https://') ?? false) ||
      isLoopbackHost(config.gateway.host),
  });
  if (gateway) registerPublicMetricsRoute(gateway.app, { metrics, token: metricsToken });
  // ops:alerts
  // Alerts (modules/alerts): rules over the health details, quotas and ops events; history; the webhook. The backups
  // block binds backupsEnabled (a stale backup alerts only while scheduled backups are on).
  let backupsEnabled: () => boolean = () => false;
  const alertWebhook = new AlertWebhook({ db, dataDir: config.dataDir, logger });
  const alerts = new AlertService({
    db,
    ops,
    webhook: alertWebhook,
    logger,
    intervalMs: config.alerts.intervalMs,
    inputs: {
      details: () => healthDetails.details(),
      quotaUsers: () => quotaUsers(db, quotas),
      backupsEnabled: () => backupsEnabled(),
    },
  });
  registerAlertRoutes(app, { alerts, webhook: alertWebhook });
  // ops:logs
  // Every state-changing admin call in the audit log, named by the panel's host profile (modules/audit).
  registerAdminAudit(app, audit);
  // The log viewer (modules/logs), and rotation of the slots' PM2 logs (the agent's own file rotates itself).
  const logs = new LogService({ dataDir: config.dataDir, logDir: paths.logDir, slots: () => repo.list() });
  registerLogRoutes(app, logs);
  const logRotator = new LogRotator({
    limits: config.log,
    logDir: paths.logDir,
    slotExists: (id) => repo.get(id) !== null,
    extraFiles: () => pm2CapturedOutput(),
    onError: (file, error) => logger.warn({ err: error, file }, 'could not rotate a log'),
  });
  // ops:backups
  const backups = new BackupService({
    db,
    dataDir: config.dataDir,
    logger,
    ops,
    isolated: isolation !== null,
    slotFiles: () =>
      repo.list().map((row) => ({ slotId: row.id, home: row.homeDir, work: row.workDirManaged ? row.workDir : null })),
    requestRestart: deps.restartForRestore ?? (() => process.kill(process.pid, 'SIGTERM')),
  });
  backupStatus = () => backups.status();
  backupsEnabled = () => backups.settings().enabled;
  await registerBackupRoutes(app, backups);
  // ops:end

  // Rows older than the configured age move to the archive database; checked every 6 hours (a no-op when none are).
  const stopArchiver = usage.startArchiver({
    olderThanDays: config.usage.archiveAfterDays,
    intervalMs: 6 * 3_600_000,
    logger,
  });

  let closing: Promise<void> | null = null;
  return {
    app,
    slots,
    terminals,
    users,
    recorder,
    requestLog,
    gateway,
    tools,
    idle,
    auth,
    sessionGuard,
    audit,
    shares,
    ops,
    // ops:agent-values
    alerts,
    backups,
    storage,
    async start() {
      // The idle clock runs even while PM2 is unusable: a broken host left idle is still stopped.
      idle.start(config.idle.tickMs);
      audit.startPruning();
      auth.start();
      shares.startExpirySweep();
      // ops:start
      logRotator.start(config.log.checkIntervalMs);
      alerts.start();
      backups.start();
      storage.start();
      healthDetails.start();
      metricsSeries.start();
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
        idle.close();
        auth.stop();
        audit.stop();
        shares.close();
        // ops:close
        logRotator.stop();
        await alerts.close();
        await backups.close();
        storage.close();
        healthDetails.close();
        metricsSeries.close();
        metrics.close();
        await slots.stop();
        await terminals.close();
        // In-flight gateway requests finish (and are metered) before the recorder's last commit.
        await gateway?.close();
        stopArchiver();
        await recorder.close();
        requestLog.close();
        verifier.close();
        await app.close();
        await supervisor.disconnect();
      })();
      return closing;
    },
  };
}
