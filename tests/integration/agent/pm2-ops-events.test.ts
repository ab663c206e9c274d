/**
 * What the slots report on the operations bus (metrics and alerts listen there) when PM2's daemon dies and when a
 * program crashes: an agent built in this process with a real PM2 daemon of its own.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type Agent } from '../../../remote-agent/src/app.js';
import { loadConfig } from '../../../remote-agent/src/config.js';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../remote-agent/src/http/admin-token.js';
import { createLogger } from '../../../remote-agent/src/logger.js';
import { OpsEvents, type OpsEventMap } from '../../../remote-agent/src/ops/events.js';
import { Pm2Supervisor } from '../../../remote-agent/src/supervisor/pm2.js';
import { endSessions, slotSessions } from '../../../remote-agent/src/supervisor/sessions.js';
import { until } from '../helpers/until.js';

let dir: string;
let db: Db;
let agent: Agent;
let supervisor: Pm2Supervisor;
let token: string;
let runDir: string;
const ops = new OpsEvents();
const seen: Array<{ event: keyof OpsEventMap; payload: unknown }> = [];

async function admin<T>(method: 'GET' | 'POST', url: string, payload?: object): Promise<{ status: number; body: T }> {
  const response = await agent.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload ? { payload } : {}),
  });
  return { status: response.statusCode, body: response.json<T>() };
}

const events = <E extends keyof OpsEventMap>(event: E): Array<OpsEventMap[E]> =>
  seen.filter((e) => e.event === event).map((e) => e.payload as OpsEventMap[E]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-pm2-ops-'));
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'admin.port': 0, reconcileIntervalMs: 500 } });
  runDir = config.runDir;
  mkdirSync(config.runDir, { recursive: true });
  token = ensureAdminToken(dir);
  db = openDatabase(join(dir, 'agent.db'));
  supervisor = new Pm2Supervisor(config.pm2Home);
  for (const event of ['recovery', 'slot.state', 'slot.restarted'] as const)
    ops.on(event, (payload) => seen.push({ event, payload }));
  agent = await buildApp({
    config,
    db,
    supervisor,
    logger: createLogger('warn', { write: () => undefined }),
    tools: { dtach: '/usr/bin/dtach', ttyd: null, tmux: null },
    ops,
  });
  await agent.start();
});

afterAll(async () => {
  const sessions = slotSessions({ runDir, slotsDir: join(dir, 'slots'), agentUid: process.getuid!() });
  await agent?.close();
  await supervisor?.shutdownDaemon();
  await endSessions(sessions);
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('operations events from the slots', () => {
  it('reports state changes, a crash restart and the adoption after the daemon is killed', async () => {
    const created = await admin<Slot>('POST', '/api/v1/slots', { name: 'ops-events' });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const running = await until(
      'the slot to run its program',
      async () => (await admin<Slot>('GET', `/api/v1/slots/${id}`)).body,
      (slot) => slot.state === 'running' && slot.programPid !== null,
    );
    await until(
      'a running state event',
      () => events('slot.state'),
      (list) => list.some((e) => e.slotId === id && e.state === 'running'),
    );

    // A crash: PM2 starts the program again, reported as a restart and as something that healed itself.
    process.kill(running.programPid!, 'SIGKILL');
    await until(
      'a restart event',
      () => events('slot.restarted'),
      (list) => list.some((e) => e.slotId === id && e.restarts === 1),
    );
    expect(events('recovery')).toContainEqual(expect.objectContaining({ kind: 'slot-restarted', target: id }));
    const afterCrash = await until(
      'the new session',
      async () => (await admin<Slot>('GET', `/api/v1/slots/${id}`)).body,
      (slot) => slot.state === 'running' && slot.programPid !== null && slot.programPid !== running.programPid,
      { timeoutMs: 30_000 },
    );

    // The daemon killed: the slot routes say so at once, then the session is adopted by a new daemon.
    const daemon = Number(readFileSync(join(dir, 'pm2', 'pm2.pid'), 'utf8'));
    process.kill(daemon, 'SIGKILL');
    const during = await until(
      'the agent to notice',
      () => admin<{ error: { code: string } }>('GET', '/api/v1/slots'),
      (answer) => answer.status === 503,
    );
    expect(during.body.error.code).toBe('SUPERVISOR_UNAVAILABLE');
    const recovered = await until(
      'the recovery event',
      () => events('recovery'),
      (list) => list.some((e) => e.kind === 'supervisor-restarted'),
    );
    expect(recovered).toContainEqual(expect.objectContaining({ kind: 'slot-adopted', target: id }));
    expect(recovered.find((e) => e.kind === 'supervisor-restarted')!.message).toMatch(/adopted 1 running session/);
    const after = (await admin<Slot>('GET', `/api/v1/slots/${id}`)).body;
    expect(after.programPid).toBe(afterCrash.programPid);
    expect(supervisor.daemonPid()).not.toBe(daemon);
  });
});
