import type { FastifyInstance } from 'fastify';
import { adminApi, AGENT_CONTRACT_VERSION } from '../../contract/index.js';
import { LATEST_SCHEMA_VERSION } from '../../db/migrations.js';
import { schemaVersion, type Db } from '../../db/database.js';
import { bindRoute } from '../../http/route.js';
import type { SlotService } from '../slots/service.js';
import type { ProcessSupervisor } from '../../supervisor/supervisor.js';
import { metricsAdminApi } from '../../contract/metrics.js';
import type { HealthDetailsService } from './details.js';

export interface HealthDeps {
  db: Db;
  supervisor: ProcessSupervisor;
  slots: SlotService;
  version: string;
  startedAt: number;
  /** Why the supervisor is not usable, when it is not. */
  supervisorProblem: () => string | null;
  /** True while the data dir cannot be written (ops/storage.ts): /health says degraded then. */
  storageFull?: () => boolean;
}

export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps): void {
  bindRoute(app, adminApi.health, () => {
    let database: { ok: boolean; schemaVersion: number; error?: string };
    try {
      deps.db.prepare('SELECT 1').get();
      const version = schemaVersion(deps.db);
      database =
        version === LATEST_SCHEMA_VERSION
          ? { ok: true, schemaVersion: version }
          : { ok: false, schemaVersion: version, error: `schema ${version}, expected ${LATEST_SCHEMA_VERSION}` };
    } catch (error) {
      database = { ok: false, schemaVersion: -1, error: (error as Error).message };
    }
    const daemonPid = deps.supervisor.daemonPid();
    const problem = deps.supervisorProblem() ?? (daemonPid === null ? 'the PM2 daemon is not running' : null);
    const supervisor = problem
      ? { ok: false, kind: 'pm2' as const, daemonPid, error: problem }
      : { ok: true, kind: 'pm2' as const, daemonPid };
    return {
      status:
        database.ok && supervisor.ok && !(deps.storageFull?.() ?? false) ? ('ok' as const) : ('degraded' as const),
      version: deps.version,
      contractVersion: AGENT_CONTRACT_VERSION,
      uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
      database,
      supervisor,
      slots: deps.slots.counts(),
    };
  });
}

export function registerHealthDetailsRoute(app: FastifyInstance, details: HealthDetailsService): void {
  bindRoute(app, metricsAdminApi.healthDetails, () => details.details());
}
