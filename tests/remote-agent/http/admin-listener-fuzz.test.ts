import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type Agent } from '../../../remote-agent/src/app.js';
import { loadConfig } from '../../../remote-agent/src/config.js';
import { openDatabase, type Db } from '../../../remote-agent/src/db/database.js';
import { ensureAdminToken } from '../../../remote-agent/src/http/admin-token.js';
import { createLogger } from '../../../remote-agent/src/logger.js';
import { idleSupervisor } from '../helpers/idle-supervisor.js';

let dir: string;
let db: Db;
let agent: Agent;
let port: number;
let token: string;
const errorLogs: string[] = [];
const processFaults: unknown[] = [];
const onFault = (error: unknown): void => {
  processFaults.push(error);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-fuzz-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'admin.port': 0,
      'gateway.enabled': false,
      'terminal.openingTimeoutMs': 100,
    },
  });
  mkdirSync(config.runDir, { recursive: true });
  token = ensureAdminToken(dir);
  db = openDatabase(join(dir, 'agent.db'));
  // Whatever the agent logs at error level (a 500's cause, a crashed handler) is kept for the assertions.
  const logger = createLogger('error', {
    write: (line: string) => {
      errorLogs.push(line);
    },
  });
  agent = await buildApp({
    config,
    db,
    supervisor: idleSupervisor,
    logger,
    tools: { dtach: null, ttyd: null, tmux: null },
  });
  await agent.start();
  const url = await agent.app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(url).port);
  process.on('unhandledRejection', onFault);
  process.on('uncaughtException', onFault);
});

afterAll(async () => {
  process.off('unhandledRejection', onFault);
  process.off('uncaughtException', onFault);
  await agent?.close();
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes on a fresh connection, half-closes it and collects everything until the agent closes it. */
function exchange(bytes: Buffer, after: Buffer | null = null): Promise<{ output: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let sentAfter = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ output: Buffer.concat(chunks), closed: false });
    }, 10_000);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // What a client sends once its upgrade was answered: frames, or junk.
      if (after && !sentAfter && Buffer.concat(chunks).includes('\r\n\r\n')) {
        sentAfter = true;
        socket.end(after);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ output: Buffer.concat(chunks), closed: true });
    });
    socket.write(bytes);
    if (!after) socket.end();
  });
}

const SLOT_ID = 'aaaaaaaaaa';
const TERMINAL = `/api/v1/slots/${SLOT_ID}/terminal`;

const text = (max: number) => fc.string({ unit: 'binary', maxLength: max });
const token68 = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{0,20}$/);

const method = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE', 'PRI', 'get', ''),
  token68,
);

const target = fc.oneof(
  fc.constantFrom(
    '//',
    '/%',
    '/%%',
    '/%zz',
    '/%00',
    '*',
    '/health',
    '//health',
    '/health/%2e%2e/',
    '/api/v1/slots',
    '/api/v1/slots/',
    '/api/v1/slots/%',
    `/api/v1/slots/${SLOT_ID}`,
    `/api/v1/slots/${SLOT_ID}/tickets`,
    TERMINAL,
    `${TERMINAL}?ticket=`,
    `${TERMINAL}?ticket=%`,
    `${TERMINAL}?ticket=a&ticket=b`,
    `${TERMINAL}?ticket[]=x`,
    `${TERMINAL}?ticket[a]=x`,
    '/api/v1/slots/%2e%2e/terminal',
    '/api/v1/users?limit=-1',
    '/api/v1/usage?from=x&to=%ff',
    'http://127.0.0.1/health',
    'http://evil.example/api/v1/slots',
    `ws://127.0.0.1${TERMINAL}`,
    'https://[::1]:99999/',
    'http://%/',
    '127.0.0.1:80',
  ),
  fc.array(text(12), { maxLength: 6 }).map((parts) => `/${parts.join('/')}`),
  fc
    .tuple(fc.constantFrom('/api/v1/slots', TERMINAL, '/api/v1/users', '/health'), text(40))
    .map(([path, rest]) => `${path}${rest}`),
  text(60),
);

const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1x', 'http/1.1', '');

const headerName = fc.oneof(
  fc.constantFrom(
    'Host',
    'Upgrade',
    'Connection',
    'Sec-WebSocket-Key',
    'Sec-WebSocket-Version',
    'Sec-WebSocket-Protocol',
    'Sec-WebSocket-Extensions',
    'Origin',
    'Authorization',
    'Content-Length',
    'Transfer-Encoding',
    'Content-Type',
    'Expect',
    'Cookie',
    'X-Forwarded-For',
  ),
  token68,
  text(10),
);

const headerValue = fc.oneof(
  fc.constantFrom(
    'websocket',
    'Upgrade',
    'upgrade, keep-alive',
    'dGhlIHNhbXBsZSBub25jZQ==',
    '13',
    '8',
    '99',
    'tty',
    'tty, tty',
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; server_max_window_bits=7',
    'http://127.0.0.1:1234',
    'null',
    'file://',
    'Bearer x',
    'chunked',
    'chunked, chunked',
    '-1',
    '18446744073709551616',
    'application/json',
    '100-continue',
  ),
  text(80),
  // Huge values: the listener's header limits must answer, not fall over.
  fc.integer({ min: 1_000, max: 80_000 }).map((length) => 'a'.repeat(length)),
);

const body = fc.oneof(
  fc.constant(''),
  fc.json({ maxDepth: 3 }),
  text(200),
  fc.constantFrom('0\r\n\r\n', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', '{"origin":"http://x"}', '{"mode":"nope"}'),
);

/** A request in HTTP/1 shape, with anything in its parts. */
const looseRequest = fc
  .record({
    method,
    target,
    version,
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
    authorized: fc.boolean(),
    separator: fc.constantFrom('\r\n', '\n', '\r', '\r\n '),
    body,
  })
  .map(({ method, target, version, headers, authorized, separator, body }) => {
    const lines = [`${method} ${target} ${version}`.trimEnd(), 'Host: 127.0.0.1'];
    if (authorized) lines.push(`Authorization: Bearer ${token}`);
    for (const [name, value] of headers) lines.push(`${name}: ${value}`);
    return { bytes: Buffer.from(`${lines.join(separator)}\r\n\r\n${body}`, 'latin1'), after: null };
  });

/** A WebSocket upgrade to the terminal route with odd parts, followed by raw frames or junk. */
const terminalUpgrade = fc
  .record({
    path: fc.constantFrom(TERMINAL, `${TERMINAL}?ticket=`, '/api/v1/slots/%zz/terminal'),
    ticket: fc.option(text(50)),
    origin: fc.option(fc.constantFrom('http://127.0.0.1:1', 'null', 'file://', '', ' ')),
    key: fc.constantFrom('dGhlIHNhbXBsZSBub25jZQ==', '', 'short', '!!!!'),
    version: fc.constantFrom('13', '8', '', 'x'),
    protocol: fc.option(fc.constantFrom('tty', 'other', 'tty, other', ',', '')),
    extension: fc.option(fc.constantFrom('permessage-deflate', 'permessage-deflate; x=1', 'foo')),
    after: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array())),
  })
  .map(({ path, ticket, origin, key, version, protocol, extension, after }) => {
    const url = ticket === null ? path : `${path}${path.includes('?') ? '' : '?ticket='}${encodeURIComponent(ticket)}`;
    const lines = [
      `GET ${url} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      `Sec-WebSocket-Version: ${version}`,
    ];
    if (origin !== null) lines.push(`Origin: ${origin}`);
    if (protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
    if (extension !== null) lines.push(`Sec-WebSocket-Extensions: ${extension}`);
    return { bytes: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), after: Buffer.from(after) };
  });

const randomBytes = fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes) => ({
  bytes: Buffer.from(bytes),
  after: null,
}));

/** The status of each HTTP response at the start of the output (101 upgrades are followed by frames). */
function firstStatus(output: Buffer): number | null {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(output.toString('latin1'));
  return match ? Number(match[1]) : null;
}

const openConnections = (): Promise<number> =>
  new Promise((resolve, reject) =>
    agent.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );

/** Waits until the agent holds no connection of the fuzzing: none may stay open, unanswered, for good. */
async function allConnectionsEnded(): Promise<void> {
  for (let tries = 0; (await openConnections()) > 0; tries++) {
    if (tries > 200) throw new Error(`the agent still holds ${await openConnections()} connections of the fuzzing`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function healthy(): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/health`);
  expect(response.status).toBe(200);
  const slots = await fetch(`http://127.0.0.1:${port}/api/v1/slots`, { headers: { authorization: `Bearer ${token}` } });
  expect(slots.status).toBe(200);
}

describe('the admin listener under arbitrary input', () => {
  it('answers or closes every connection, never with a 500, and keeps serving', { timeout: 600_000 }, async () => {
    const statuses = new Map<number | null, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { arbitrary: looseRequest, weight: 6 },
          { arbitrary: terminalUpgrade, weight: 3 },
          { arbitrary: randomBytes, weight: 1 },
        ),
        async ({ bytes, after }) => {
          const { output, closed } = await exchange(bytes, after);
          const status = firstStatus(output);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          // An answer (any HTTP status but a server error) or a plain close; never a hang.
          expect(closed, `no answer nor close for ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`).toBe(
            true,
          );
          expect(status === null || status < 500, output.toString('latin1').slice(0, 300)).toBe(true);
          expect(errorLogs).toEqual([]);
          expect(processFaults).toEqual([]);
        },
      ),
      { numRuns: 10_000, seed: 20_260_301, endOnFailure: true },
    );
    // The fuzzing reached the routes, not only the parser: some requests were answered, some upgraded.
    expect(statuses.get(101)).toBeGreaterThan(0);
    expect(statuses.get(400)).toBeGreaterThan(0);
    expect(statuses.get(404)).toBeGreaterThan(0);
    await allConnectionsEnded();
    await healthy();
  });
});
