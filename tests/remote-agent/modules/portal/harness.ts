/**
 * The portal's routes as the agent serves them: an agent built with buildApp (users, keys, slots, sign-in on
 * better-auth, SQLite) with its public listener, reached through the gateway's inject, and end users signed in
 * through the real sign-in routes (an admin's invite, then a password). PM2 is a stand-in that supervises nothing:
 * these tests are about who may do what; running slots are in tests/integration/agent/portal.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, findHostTools, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import { CreateUserBody, type User } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../../remote-agent/src/http/admin-token.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { idleSupervisor } from '../../helpers/idle-supervisor.js';

export const PASSWORD = 'violet-harbour-47-quartz';

export interface PortalSession {
  /** `name=value` of the session cookie. */
  cookie: string;
  csrf: string;
}

export interface PortalHarness {
  dir: string;
  db: Db;
  agent: Agent;
  /** http://127.0.0.1:<port>: the public listener's origin (what the portal page is served from). */
  site: string;
  host: string;
  /** What the agent logged at error level or above. */
  errorLogs: string[];
  logs: string[];
  admin(method: string, url: string, payload?: unknown): Promise<{ status: number; body: unknown }>;
  /** A user with a password set through an invite link. */
  newUser(username: string, extra?: Record<string, unknown>): Promise<User>;
  signIn(login: string): Promise<PortalSession>;
  /** A request on the public listener, as the portal page (or an attacker) sends it. */
  inject(options: {
    method: string;
    url: string;
    headers?: Record<string, string>;
    payload?: string;
  }): Promise<{ statusCode: number; body: string; headers: Record<string, unknown>; json<T>(): T }>;
  close(): Promise<void>;
}

export async function startPortal(): Promise<PortalHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-portal-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'admin.port': 0,
      'gateway.enabled': true,
      'gateway.host': '127.0.0.1',
      'gateway.port': 0,
    },
  });
  mkdirSync(config.runDir, { recursive: true });
  const token = ensureAdminToken(dir);
  const db = openDatabase(join(dir, 'agent.db'));
  const errorLogs: string[] = [];
  const logs: string[] = [];
  const logger = createLogger('info', {
    write: (line: string) => {
      logs.push(line);
      if (/"level":(50|60)/.test(line)) errorLogs.push(line);
    },
  });
  const agent = await buildApp({ config, db, supervisor: idleSupervisor, logger, tools: findHostTools() });
  await agent.start();
  const site = await agent.gateway!.listen();
  const host = new URL(site).host;
  const gateway = agent.gateway!.app;

  const admin: PortalHarness['admin'] = async (method, url, payload) => {
    const response = await agent.app.inject({
      method: method as 'GET',
      url,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return { status: response.statusCode, body: response.json<unknown>() };
  };
  const samePage = { host, origin: site, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' };

  return {
    dir,
    db,
    agent,
    site,
    host,
    errorLogs,
    logs,
    admin,
    async newUser(username, extra = {}) {
      const user = agent.users.create(CreateUserBody.parse({ username, ...extra }));
      const invite = await admin('POST', `/api/v1/users/${user.id}/invites`, { expiresInHours: 1 });
      if (invite.status !== 201) throw new Error(`invite: ${invite.status} ${JSON.stringify(invite.body)}`);
      const inviteToken = new URL((invite.body as { link: string }).link).pathname.split('/').pop()!;
      const accepted = await gateway.inject({
        method: 'POST',
        url: '/api/public/auth/invites/accept',
        headers: samePage,
        payload: JSON.stringify({ token: inviteToken, password: PASSWORD }),
      });
      if (accepted.statusCode !== 200) throw new Error(`accept: ${accepted.statusCode} ${accepted.body}`);
      return user;
    },
    async signIn(login) {
      const response = await gateway.inject({
        method: 'POST',
        url: '/api/public/auth/sign-in',
        headers: samePage,
        payload: JSON.stringify({ login, password: PASSWORD }),
      });
      if (response.statusCode !== 200) throw new Error(`sign-in: ${response.statusCode} ${response.body}`);
      const setCookie = response.headers['set-cookie'];
      const lines = Array.isArray(setCookie) ? setCookie : [String(setCookie)];
      const line = lines.find((l) => /slotdeck-session=/.test(l));
      if (!line) throw new Error(`no session cookie in ${JSON.stringify(lines)}`);
      return { cookie: line.split(';')[0]!, csrf: response.json<{ csrfToken: string }>().csrfToken };
    },
    async inject(options) {
      const response = await gateway.inject({
        method: options.method as 'GET',
        url: options.url,
        headers: { host, ...options.headers },
        ...(options.payload !== undefined ? { payload: options.payload } : {}),
      });
      return {
        statusCode: response.statusCode,
        body: response.body,
        headers: response.headers,
        json: <T>() => response.json<T>(),
      };
    },
    async close() {
      await agent.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
