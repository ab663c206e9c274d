import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, type Handlers } from '../../src/main/ipc/dispatch';
import { EventBus } from '../../src/main/ipc/events';
import { startWebHost, type WebHost } from '../../src/main/web-host';

/**
 * Browser mode's web host listens on 127.0.0.1, where any local program (a slot user's included) can talk to it:
 * no request line, header or upgrade may crash the panel or leave a connection hanging.
 */

let host: WebHost;
let dir: string;
let port: number;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const crashes: unknown[] = [];
const onCrash = (error: unknown): void => void crashes.push(error);

beforeAll(async () => {
  process.on('unhandledRejection', onCrash);
  process.on('uncaughtException', onCrash);
  dir = mkdtempSync(join(tmpdir(), 'sd-web-fuzz-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Slotdeck</title>');
  const handlers = { 'hosts:list': () => Promise.resolve({ hosts: [] }) } as unknown as Handlers;
  host = await startWebHost({
    rendererDir: dir,
    dispatcher: new Dispatcher(handlers, silent),
    events: new EventBus(),
    log: silent,
  });
  port = Number(new URL(host.origin).port);
});

afterAll(async () => {
  process.off('unhandledRejection', onCrash);
  process.off('uncaughtException', onCrash);
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** How long a connection may stay without an answer or a close before the test calls it a hang. */
const HANG_BOUND_MS = 5000;

interface Outcome {
  hung: boolean;
  response: string;
}

/**
 * Sends the bytes on a fresh connection, then a last request asking the server to close (so that a request the bytes
 * left complete is answered, and nothing waits for a keep-alive timeout), and waits for the server to close.
 */
function exchange(bytes: Uint8Array): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ hung: true, response: Buffer.concat(chunks).toString('latin1') });
    }, HANG_BOUND_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset is an answer too (the server gave up on the connection), not a hang.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ hung: false, response: Buffer.concat(chunks).toString('latin1') });
    });
    socket.on('connect', () => {
      socket.write(bytes);
      socket.write(`GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    });
  });
}

const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
const anyText = fc.string({ unit: 'binary', maxLength: 64 }).map((text) => text.replace(/[\r\n]/g, ' '));
const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 64 });

// Mostly well-formed, so that most cases reach our handlers rather than stop in Node's parser.
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constant('GET') },
  { weight: 2, arbitrary: fc.constantFrom('POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE', 'PRI') },
  token,
  anyText,
);

const target = fc.oneof(
  fc.constantFrom(
    '/',
    '//',
    '///',
    '/%',
    '/%zz',
    '/%2',
    '/%00',
    '/%c0%ae%c0%ae/etc/passwd',
    '/..%2f..%2fetc%2fpasswd',
    '/ipc',
    '//ipc',
    '/ipc?token=%',
    '/?token=',
    '/?token=%',
    '/index.html',
    '*',
    'http://evil.example/',
    'http://127.0.0.1/ipc',
    'http://[::1',
    '127.0.0.1:80',
    'ws://127.0.0.1/ipc',
    '',
  ),
  fc.webPath(),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.webSegment().map((segment) => `//${segment}`),
  printable.map((text) => `/${text.replace(/ /g, '')}`),
  anyText.map((text) => `/${text}`),
  anyText,
);

const version = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.0') },
  fc.constantFrom('HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 extra', 'HTTPS/1.1', ''),
);

const header = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'Connection: Upgrade',
      'Connection: keep-alive',
      'Connection: close',
      'Connection: upgrade, keep-alive',
      'Upgrade: websocket',
      'Upgrade: WebSocket',
      'Upgrade: h2c',
      'Upgrade: ',
      'Upgrade: websocket, websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Version: 8',
      'Sec-WebSocket-Version: x',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Key: not a key',
      'Sec-WebSocket-Protocol: ,,,',
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=99',
      'Host: evil.example',
      'Host:',
      'Origin: null',
      'Origin: http://127.0.0.1:1',
      'Cookie: slotdeck_session=x',
      'Cookie: ;;;==;',
      'Transfer-Encoding: chunked',
      'Content-Length: 5',
      'Content-Length: -1',
      'Content-Length: 99999999999999999999',
      'Expect: 100-continue',
    ),
  },
  { weight: 2, arbitrary: fc.tuple(token, printable).map(([name, value]) => `${name}: ${value}`) },
  fc.tuple(token, anyText).map(([name, value]) => `${name}: ${value}`),
  anyText,
  // Headers larger than any limit.
  fc.integer({ min: 1000, max: 40_000 }).map((size) => `X-Big: ${'a'.repeat(size)}`),
);

/** A request line and headers, the way a client (or an attacker) might write them; our own Host most of the time. */
const request = fc
  .record({
    method,
    target,
    version,
    ownHost: fc.boolean(),
    ownOrigin: fc.boolean(),
    headers: fc.array(header, { maxLength: 4 }),
    body: fc.oneof({ weight: 4, arbitrary: fc.constant('') }, anyText),
  })
  .map(({ method, target, version, ownHost, ownOrigin, headers, body }) => {
    const lines = [`${method} ${target} ${version}`.trimEnd()];
    if (ownHost) lines.push(`Host: 127.0.0.1:${port}`);
    if (ownOrigin) lines.push(`Origin: http://127.0.0.1:${port}`);
    lines.push(...headers);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
  });

/** A request Node's parser accepts, so that it reaches our handlers: any target, our Host, known headers. */
const wellFormed = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST'),
    target,
    headers: fc.array(
      header.filter((line) => /^[A-Za-z-]+: [\x21-\x7e][\x20-\x7e]*$/.test(line)),
      { maxLength: 3 },
    ),
  })
  .map(({ method, target, headers }) =>
    Buffer.from(
      `${method} ${target.replace(/[^\x21-\x7e]/g, '')} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers.join('\r\n')}\r\n\r\n`,
      'latin1',
    ),
  );

/** A WebSocket upgrade to any target, with a valid or broken handshake. */
const upgrade = fc
  .record({
    target,
    ownHost: fc.boolean(),
    ownOrigin: fc.boolean(),
    upgradeHeader: fc.constantFrom('websocket', 'WebSocket', 'h2c', '', 'websocket, h2c'),
    key: fc.oneof(fc.constant('dGhlIHNhbXBsZSBub25jZQ=='), anyText),
    version: fc.constantFrom('13', '8', ''),
    extra: fc.array(header, { maxLength: 3 }),
    frames: fc.uint8Array({ maxLength: 256 }),
  })
  .map(({ target, ownHost, ownOrigin, upgradeHeader, key, version, extra, frames }) => {
    const lines = [
      `GET ${target} HTTP/1.1`,
      ownHost ? `Host: 127.0.0.1:${port}` : 'Host: evil.example',
      ...(ownOrigin ? [`Origin: http://127.0.0.1:${port}`] : []),
      'Connection: Upgrade',
      `Upgrade: ${upgradeHeader}`,
      `Sec-WebSocket-Key: ${key}`,
      `Sec-WebSocket-Version: ${version}`,
      ...extra,
    ];
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), frames]);
  });

const randomBytes = fc.uint8Array({ maxLength: 4096 });

/** A valid request first, then anything: the second request of a kept-alive connection is parsed too. */
const pipelined = fc
  .tuple(request, fc.oneof(request, randomBytes))
  .map(([first, second]) =>
    Buffer.concat([Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`), first, second]),
  );

describe('browser mode’s web host under arbitrary input', () => {
  it('answers or closes every connection, never crashes, and still serves the page afterwards', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 3, arbitrary: wellFormed },
          { weight: 3, arbitrary: request },
          { weight: 3, arbitrary: upgrade },
          randomBytes,
          pipelined,
        ),
        async (bytes) => {
          const outcome = await exchange(bytes);
          expect(
            outcome.hung,
            `no answer and no close for ${JSON.stringify(Buffer.from(bytes).toString('latin1').slice(0, 300))}`,
          ).toBe(false);
          // An answer, if any, is never a server error.
          const statuses = [...outcome.response.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => Number(match[1]));
          expect(statuses.filter((status) => status >= 500)).toEqual([]);
          expect(crashes).toEqual([]);
        },
      ),
      { numRuns: 10_000 },
    );

    const page = await fetch(`${host.origin}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Slotdeck');
    expect(crashes).toEqual([]);
  }, 120_000);
});
