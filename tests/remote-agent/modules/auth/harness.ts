/**
 * An agent built with buildApp (admin listener and the gateway's public listener with the site), on a SQLite file in
 * a temp dir, with helpers for the sign-in routes: the admin API by inject, the public site by inject with a cookie
 * jar and the portal's Origin.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type Agent } from '../../../../remote-agent/src/app.js';
import { loadConfig } from '../../../../remote-agent/src/config.js';
import { CreateUserBody, type User } from '../../../../remote-agent/src/contract/index.js';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../../remote-agent/src/http/admin-token.js';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { idleSupervisor } from '../../helpers/idle-supervisor.js';

export interface Answer<T = unknown> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

/** A browser's cookies for the public site (name=value only). */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  take(setCookie: string | string[] | undefined): void {
    for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair, ...attributes] = line.split(';');
      const index = pair!.indexOf('=');
      const name = pair!.slice(0, index).trim();
      const value = pair!.slice(index + 1).trim();
      if (value === '' || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string | undefined {
    return this.cookies.size ? [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ') : undefined;
  }
}

export interface Harness {
  agent: Agent;
  db: Db;
  dir: string;
  logs: string[];
  origin: string;
  admin<T = unknown>(method: string, url: string, payload?: unknown, token?: string | null): Promise<Answer<T>>;
  /** A request to the public site; with `jar` its cookies go along and answers' cookies come back into it. */
  site<T = unknown>(
    method: string,
    url: string,
    options?: { jar?: CookieJar; payload?: unknown; headers?: Record<string, string>; csrf?: string | null },
  ): Promise<Answer<T>>;
  newUser(username: string, extra?: Partial<CreateUserBody>): User;
  /** An invited user who set `password` through the invite: the jar holds their session. */
  signedInUser(username: string, password: string): Promise<{ user: User; jar: CookieJar; csrf: string }>;
  close(): Promise<void>;
}

export async function startAuthHarness(overrides: Record<string, unknown> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-auth-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'admin.port': 0,
      'gateway.enabled': true,
      'gateway.host': '127.0.0.1',
      'gateway.port': 0,
      ...overrides,
    },
  });
  mkdirSync(config.runDir, { recursive: true });
  const token = ensureAdminToken(dir);
  const db = openDatabase(join(dir, 'agent.db'));
  const logs: string[] = [];
  const agent = await buildApp({
    config,
    db,
    supervisor: idleSupervisor,
    logger: createLogger('debug', { write: (line: string) => void logs.push(line) }),
    tools: { dtach: null, ttyd: null, tmux: null },
  });
  await agent.start();
  const origin = await agent.gateway!.listen();
  const host = new URL(origin).host;

  const harness: Harness = {
    agent,
    db,
    dir,
    logs,
    origin,
    async admin(method, url, payload, auth = token) {
      const response = await agent.app.inject({
        method: method as 'GET',
        url,
        headers: auth ? { authorization: `Bearer ${auth}` } : {},
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      let body: unknown = response.body;
      try {
        body = response.json();
      } catch {
        // Not JSON (an export).
      }
      return { status: response.statusCode, body: body as never, headers: response.headers as Answer['headers'] };
    },
    async site(method, url, options = {}) {
      const headers: Record<string, string> = { host, origin, 'sec-fetch-site': 'same-origin', ...options.headers };
      const cookie = options.jar?.header();
      if (cookie) headers.cookie = cookie;
      if (options.csrf) headers['x-slotdeck-csrf'] = options.csrf;
      const response = await agent.gateway!.app.inject({
        method: method as 'GET',
        url,
        headers,
        ...(options.payload === undefined ? {} : { payload: options.payload as object }),
      });
      options.jar?.take(response.headers['set-cookie']);
      let body: unknown = response.body;
      try {
        body = response.json();
      } catch {
        // A redirect.
      }
      return { status: response.statusCode, body: body as never, headers: response.headers as Answer['headers'] };
    },
    newUser(username, extra = {}) {
      return agent.users.create(CreateUserBody.parse({ username, ...extra }));
    },
    async signedInUser(username, password) {
      const user = harness.newUser(username);
      const invite = await harness.admin<{ link: string }>('POST', `/api/v1/users/${user.id}/invites`, {});
      const inviteToken = invite.body.link.split('/invite/')[1]!;
      const jar = new CookieJar();
      const accepted = await harness.site<{ csrfToken: string }>('POST', '/api/public/auth/invites/accept', {
        jar,
        payload: { token: inviteToken, password },
      });
      if (accepted.status !== 200) throw new Error(`invite failed: ${JSON.stringify(accepted.body)}`);
      return { user, jar, csrf: accepted.body.csrfToken };
    },
    async close() {
      await agent.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
