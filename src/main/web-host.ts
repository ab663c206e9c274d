import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { CANCEL_CHANNEL, isInvokeChannel } from '../shared/ipc/channels';
import { IpcErrorCode } from '../shared/ipc/errors';
import type { Dispatcher } from './ipc/dispatch';
import type { EventBus } from './ipc/events';
import type { Logger } from './log';

/** The content policy of every page: our own scripts only; sockets only to loopback (this server and tunnels). */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self' ws://127.0.0.1:* http://127.0.0.1:*",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

const COOKIE = 'slotdeck_session';

const Incoming = z.discriminatedUnion('type', [
  z.object({ type: z.literal('invoke'), id: z.string().min(1).max(64), channel: z.string(), input: z.unknown() }),
  z.object({ type: z.literal('cancel'), id: z.string().min(1).max(64) }),
]);

export interface WebHostOptions {
  rendererDir: string;
  dispatcher: Dispatcher;
  events: EventBus;
  log: Logger;
  port?: number;
}

export interface WebHost {
  /** The link to open once: it carries the one-time token. */
  url: string;
  origin: string;
  close(): Promise<void>;
}

const equal = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Browser mode: the renderer served on 127.0.0.1, talking to the same handlers over a WebSocket. The printed link's
 * one-time token is traded for an HttpOnly, SameSite cookie on first use; every page, file and socket then needs
 * that cookie, the WebSocket also our exact Origin, and every request our own Host (no DNS rebinding).
 */
export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  let oneTimeToken: string | null = randomBytes(24).toString('base64url');
  const sessions = new Set<string>();
  let origin = '';
  const hostHeaders = new Set<string>();

  const sessionOf = (request: IncomingMessage): string | null => {
    const cookie = request.headers.cookie ?? '';
    const match = new RegExp(`(?:^|;\\s*)${COOKIE}=([A-Za-z0-9_-]+)`).exec(cookie);
    const value = match?.[1];
    return value && [...sessions].some((session) => equal(session, value)) ? value : null;
  };

  const refuse = (response: ServerResponse, status: number, text: string): void => {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(text);
  };

  const server = createServer((request, response) => {
    void (async () => {
      if (!hostHeaders.has(request.headers.host ?? '')) return refuse(response, 421, 'Wrong host.');
      const url = new URL(request.url ?? '/', origin);
      const token = url.searchParams.get('token');
      if (token !== null) {
        if (!oneTimeToken || !equal(token, oneTimeToken)) {
          return refuse(
            response,
            403,
            'This link was already used or is wrong. Open the tab you opened it in, or restart Slotdeck for a new link.',
          );
        }
        oneTimeToken = null;
        const session = randomBytes(32).toString('base64url');
        sessions.add(session);
        response
          .writeHead(303, {
            location: '/',
            'set-cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
            'cache-control': 'no-store',
          })
          .end();
        return;
      }
      if (!sessionOf(request)) return refuse(response, 401, 'Open Slotdeck with the link it printed when it started.');
      const relative = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
      const file = normalize(join(options.rendererDir, relative));
      if (!file.startsWith(options.rendererDir)) return refuse(response, 404, 'Not found.');
      try {
        const body = await readFile(file);
        response.writeHead(200, {
          'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
          'content-security-policy': CONTENT_SECURITY_POLICY,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
          'cross-origin-opener-policy': 'same-origin',
          // Built assets carry a hash in their name; the page itself must always be fresh.
          'cache-control': relative === 'index.html' ? 'no-store' : 'private, max-age=31536000, immutable',
        });
        response.end(body);
      } catch {
        refuse(response, 404, 'Not found.');
      }
    })();
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  server.on('upgrade', (request, socket, head) => {
    const allowed =
      hostHeaders.has(request.headers.host ?? '') &&
      request.headers.origin === origin &&
      new URL(request.url ?? '/', origin).pathname === '/ipc' &&
      sessionOf(request);
    if (!allowed) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => serve(ws));
  });

  const serve = (ws: WebSocket): void => {
    const unsubscribe = options.events.subscribe((channel, payload) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'event', channel, payload }));
    });
    // The page's request ids, mapped to the dispatcher's: two tabs can never cancel each other's calls.
    const mine = new Map<string, string>();
    ws.on('message', (data: Buffer) => {
      let message: z.infer<typeof Incoming>;
      try {
        message = Incoming.parse(JSON.parse(data.toString('utf8')));
      } catch {
        return;
      }
      if (message.type === 'cancel') {
        const key = mine.get(message.id);
        if (key) options.dispatcher.cancel(key);
        return;
      }
      const { id, channel, input } = message;
      if (!isInvokeChannel(channel) || channel === (CANCEL_CHANNEL as string)) {
        ws.send(
          JSON.stringify({
            type: 'result',
            id,
            result: {
              ok: false,
              error: { code: IpcErrorCode.IPC_INPUT_INVALID, message: `Unknown channel ${channel}.` },
            },
          }),
        );
        return;
      }
      const key = `${randomBytes(6).toString('hex')}:${id}`;
      mine.set(id, key);
      void options.dispatcher.dispatch(channel, input, key).then((result) => {
        mine.delete(id);
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'result', id, result }));
      });
    });
    ws.on('close', unsubscribe);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  origin = `http://127.0.0.1:${port}`;
  hostHeaders.add(`127.0.0.1:${port}`);
  hostHeaders.add(`localhost:${port}`);
  return {
    url: `${origin}/?token=${oneTimeToken}`,
    origin,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.close(1001, 'Slotdeck stopped');
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
