import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Dispatcher } from '../../../src/main/ipc/dispatch';
import { createHandlers, type HandlerServices } from '../../../src/main/ipc/handlers';
import { AgentClient } from '../../../src/main/services/agent/agent-client';
import type { HostService } from '../../../src/main/services/hosts/hosts';

/**
 * An agent stand-in for the IPC handler tests: a small HTTP server on loopback that records each request main sends
 * and answers as the test says (as the agent's contract would). The real agent is in the integration and E2E tests.
 */
export const TOKEN = 'admin-token-for-the-test-0123456789';

export interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization: string | undefined;
}

export interface AgentStandIn {
  /** The requests the agent got in this test, in order (emptied after each test). */
  seen: Seen[];
  /** How the agent answers; each test sets it. */
  answer: (request: Seen, response: ServerResponse) => void;
  /** What the dispatcher logged in this test (emptied after each test). */
  logged: unknown[];
  /** The IPC dispatcher main runs, with its handlers talking to this agent as host 'prod' in browser mode. */
  dispatcher: (extra?: Partial<HandlerServices>) => Dispatcher;
}

export const json = (response: ServerResponse, status: number, body: unknown): void => {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** Starts the stand-in before the file's tests and stops it after them; call once at the top of a test file. */
export function useAgentStandIn(): AgentStandIn {
  let server: Server;
  let baseUrl = '';
  const log = {
    info: (...args: unknown[]) => void agent.logged.push(args),
    warn: (...args: unknown[]) => void agent.logged.push(args),
    error: (...args: unknown[]) => void agent.logged.push(args),
  };
  const agent: AgentStandIn = {
    seen: [],
    answer: (_, response) => json(response, 500, { code: 'TEST_NO_ANSWER', message: 'The test set no answer.' }),
    logged: [],
    dispatcher: (extra = {}) => {
      const hosts = {
        client: () => new AgentClient(() => ({ baseUrl, token: TOKEN, label: 'prod' })),
      } as unknown as HostService;
      return new Dispatcher(
        createHandlers({
          store: {} as HandlerServices['store'],
          vault: {} as HandlerServices['vault'],
          hosts,
          app: { name: 'Slotdeck', version: '0.0.0', mode: 'browser' as const, dataDir: '/tmp' },
          ...extra,
        }),
        log,
      );
    },
  };

  beforeAll(async () => {
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      let raw = '';
      request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      request.on('end', () => {
        const url = new URL(request.url ?? '/', 'http://agent');
        const entry: Seen = {
          method: request.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          body: raw ? JSON.parse(raw) : undefined,
          authorization: request.headers.authorization,
        };
        agent.seen.push(entry);
        agent.answer(entry, response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(() => {
    agent.seen.length = 0;
    agent.logged.length = 0;
  });
  return agent;
}
