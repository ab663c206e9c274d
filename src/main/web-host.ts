import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { CANCEL_CHANNEL, isInvokeChannel } from '../shared/ipc/channels';
import { IpcErrorCode } from '../shared/ipc/errors';
import type { Dispatcher } from './ipc/dispatch';
import type { EventBus } from './ipc/events';
import type { Logger } from './log';
import type { WebSessionRow } from './services/db/store';

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

/** Content types of the renderer's built files, for browser mode and Electron's app:// scheme alike. */
export const RENDERER_CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.map': 'application/json; charset=utf-8',
};

/** Sessions unused for this long expire: the browser needs a new link then. */
export const SESSION_IDLE_MS = 30 * 24 * 60 * 60 * 1000;
/** The printed link works once, and only for this long; an expired one brings a new link in the terminal. */
export const LINK_LIFETIME_MS = 10 * 60 * 1000;
/** A socket that has not signed in by then is closed. */
export const AUTH_TIMEOUT_MS = 2000;
/** The close code of a socket that is not (or no longer) signed in; the page does not reconnect after it. */
export const CLOSE_NOT_SIGNED_IN = 4401;

/** What the page reads when it cannot sign in: each says what to do next. */
export const SIGN_IN_MESSAGES = {
  notSignedIn:
    'This browser is not signed in to Slotdeck at this address (or its session expired after 30 days unused). Open the link Slotdeck printed in the terminal where it runs (the newest one: if Slotdeck moved to another port, its new link has that port); if that link was used already, stop Slotdeck (Ctrl-C) and start it again (npm start) for a new one.',
  linkExpired:
    'This link expired: a link works for 10 minutes. Slotdeck just printed a new one in the terminal where it runs: open that one.',
  linkUsed:
    'This link was already used or is wrong. Open Slotdeck in the browser where you first opened the link, or stop Slotdeck (Ctrl-C) and start it again (npm start) for a new link.',
  signedOut:
    'You signed out of Slotdeck in this browser. To sign in again, open the new link Slotdeck printed in the terminal where it runs.',
  authFirst:
    'Sign in first: the first message on this socket must be {"type":"auth"} with a link token, or a session id and its proof for this socket’s challenge.',
} as const;

/**
 * Where browser mode keeps its sessions: the panel's SQLite (Store) so that a restart keeps them, or memory. Only the
 * SHA-256 of a session secret is ever given to it, with the session's public id and the origin it belongs to.
 */
export interface SessionStore {
  insertWebSession(session: WebSessionRow, now: Date, expiresAt: Date): void;
  /** A live session by its id; undefined when it is unknown or has expired. */
  webSession(id: string, now: Date): WebSessionRow | undefined;
  /** Marks a live session used and moves its expiry; false when it is unknown or has expired. */
  touchWebSession(id: string, now: Date, expiresAt: Date): boolean;
  deleteWebSession(id: string): void;
  deleteExpiredWebSessions(now: Date): void;
}

/** Sessions that end with the process (tests, and a panel without a settings database). */
export function memorySessions(): SessionStore {
  const rows = new Map<string, { row: WebSessionRow; expiry: number }>();
  const live = (id: string, now: Date) => {
    const entry = rows.get(id);
    return entry && entry.expiry > now.getTime() ? entry : undefined;
  };
  return {
    insertWebSession: (row, _now, expiresAt) => void rows.set(row.id, { row: { ...row }, expiry: expiresAt.getTime() }),
    webSession: (id, now) => live(id, now)?.row,
    touchWebSession(id, now, expiresAt) {
      const entry = live(id, now);
      if (entry) entry.expiry = expiresAt.getTime();
      return entry !== undefined;
    },
    deleteWebSession: (id) => void rows.delete(id),
    deleteExpiredWebSessions(now) {
      for (const [id, entry] of rows) if (entry.expiry <= now.getTime()) rows.delete(id);
    },
  };
}

/**
 * The page's answer to a socket's challenge: HMAC-SHA256 keyed by the SHA-256 of its session secret, over
 * `nonce|origin`, in hex. The page computes the same with crypto.subtle; the secret itself never crosses the socket.
 */
export function sessionProof(secretSha256Hex: string, nonce: string, origin: string): string {
  return createHmac('sha256', Buffer.from(secretSha256Hex, 'hex')).update(`${nonce}|${origin}`, 'utf8').digest('hex');
}

const Auth = z.object({
  type: z.literal('auth'),
  id: z.string().min(1).max(128).optional(),
  proof: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  token: z.string().min(1).max(128).optional(),
});

const Incoming = z.discriminatedUnion('type', [
  z.object({ type: z.literal('invoke'), id: z.string().min(1).max(64), channel: z.string(), input: z.unknown() }),
  z.object({ type: z.literal('cancel'), id: z.string().min(1).max(64) }),
  z.object({ type: z.literal('sign-out') }),
]);

export interface WebHostOptions {
  rendererDir: string;
  dispatcher: Dispatcher;
  events: EventBus;
  log: Logger;
  /** The port to listen on, or fail (SLOTDECK_PORT). */
  port?: number;
  /** The port to try first (the last run's, so that the browser's origin and its session stay the same). */
  preferredPort?: number;
  /** Where sessions live; the panel's SQLite keeps them across restarts. In memory when absent. */
  sessions?: SessionStore;
  /**
   * A new one-time link, for the admin to sign in again (browser.ts prints it): after a sign-out, or when someone
   * opened the printed link after it expired.
   */
  onNewLink?: (url: string, reason: 'signed-out' | 'expired') => void;
  authTimeoutMs?: number;
  now?: () => Date;
}

export interface WebHost {
  /** The link to open once, within LINK_LIFETIME_MS: it carries the one-time token. */
  url: string;
  origin: string;
  port: number;
  /** Said to the admin when the preferred port was taken and another one is used. */
  notice: string | null;
  close(): Promise<void>;
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();
const hashOf = (secret: string): string => sha256(secret).toString('hex');
const hexEqual = (a: string, b: string): boolean => {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
};
/** Constant-time comparison of two strings of any length. */
const equal = (a: string, b: string): boolean => timingSafeEqual(sha256(a), sha256(b));

/**
 * The path of an origin-form request target (`/x?y`), decoded; null for anything else: absolute-form, `//`, `*`,
 * bad percent escapes, NUL bytes.
 */
export function requestPath(target: string | undefined): string | null {
  if (!target?.startsWith('/') || target.startsWith('//')) return null;
  try {
    const path = decodeURIComponent(new URL(target, 'http://127.0.0.1').pathname);
    return path.includes('\0') ? null : path;
  } catch {
    return null;
  }
}

/** The file under `root` a decoded path names, or null when it would leave `root` (`..`, a sibling directory). */
export function fileUnder(root: string, path: string): string | null {
  const base = resolve(root);
  const file = normalize(join(base, path === '/' ? 'index.html' : path));
  return file.startsWith(base + sep) ? file : null;
}

/**
 * Browser mode: the renderer served on 127.0.0.1, talking to the same handlers over a WebSocket.
 *
 * Cookies are not scoped by port, so any other server on 127.0.0.1 would receive one: there is none. The static files
 * (no secrets in them) are served to anyone with our Host header; what matters is the `/ipc` socket, which needs our
 * exact Origin and, as its first message, a credential: the printed link's one-time token (valid 10 minutes, traded
 * for a session id and secret the page keeps in localStorage, which is scoped by origin, port included), or that
 * session's proof: each socket starts with a fresh challenge nonce, and the page answers with an HMAC of it and its
 * origin keyed by the SHA-256 of the secret. The secret never crosses the socket again, so whatever listens on our
 * remembered port while Slotdeck is stopped learns nothing it can replay. A session belongs to the origin it was made
 * on and signs in nowhere else. Only the SHA-256 of a session secret is stored; sessions expire after 30 days unused
 * and end with a sign-out.
 */
export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const sessions = options.sessions ?? memorySessions();
  const now = options.now ?? (() => new Date());
  const authTimeoutMs = options.authTimeoutMs ?? AUTH_TIMEOUT_MS;
  const expiry = (from: Date): Date => new Date(from.getTime() + SESSION_IDLE_MS);
  let oneTimeToken: string | null = null;
  let tokenExpiresAt = 0;
  const newToken = (): void => {
    oneTimeToken = randomBytes(24).toString('base64url');
    tokenExpiresAt = now().getTime() + LINK_LIFETIME_MS;
  };
  newToken();
  let origin = '';
  const hostHeaders = new Set<string>();
  /** The open sockets of each session (by id), to close them all at its sign-out. */
  const sockets = new Map<string, Set<WebSocket>>();
  let stopping = false;
  const link = (): string => `${origin}/?token=${oneTimeToken ?? ''}`;

  sessions.deleteExpiredWebSessions(now());

  const refuse = (response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
    response
      .writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers })
      .end(text);
  };

  const serveFile = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (!hostHeaders.has(request.headers.host ?? ''))
      return refuse(response, 421, 'Wrong host: open Slotdeck at http://127.0.0.1 with the link it printed.');
    const path = requestPath(request.url);
    if (path === null) return refuse(response, 400, 'Bad request target: ask for a path such as /index.html.');
    if (request.method !== 'GET' && request.method !== 'HEAD')
      return refuse(response, 405, 'Only GET and HEAD are served here.', { allow: 'GET, HEAD' });
    const file = fileUnder(options.rendererDir, path);
    if (!file) return refuse(response, 404, 'Not found: Slotdeck’s page is at / (open the link it printed).');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return refuse(response, 404, 'Not found: Slotdeck’s page is at / (open the link it printed).');
    }
    const page = extname(file) === '.html';
    response.writeHead(200, {
      'content-type': RENDERER_CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      // The link's token is in the page's address until its script removes it: never send it on.
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      // Built assets carry a hash in their name; the page itself must always be fresh.
      'cache-control': page ? 'no-store' : 'private, max-age=31536000, immutable',
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  };

  const server = createServer((request, response) => {
    serveFile(request, response).catch((error: unknown) => {
      options.log.error('browser mode could not answer a request', error);
      if (!response.headersSent) refuse(response, 500, 'Slotdeck failed to answer; see its log.');
      else response.destroy();
    });
  });

  const reject = (socket: Duplex, status: string): void => {
    if (socket.destroyed) return;
    // The peer may never close its side: do not wait for it once the answer is out.
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A peer that resets the connection must not become an uncaught 'error'.
    socket.on('error', () => socket.destroy());
    try {
      const path = requestPath(request.url);
      if (path === null) return reject(socket, '400 Bad Request');
      if (!hostHeaders.has(request.headers.host ?? '')) return reject(socket, '421 Misdirected Request');
      if (request.headers.origin !== origin || path !== '/ipc') return reject(socket, '403 Forbidden');
      wss.handleUpgrade(request, socket, head, (ws) => serve(ws));
    } catch (error) {
      options.log.warn('browser mode refused a malformed upgrade', error);
      socket.destroy();
    }
  });

  /**
   * Checks the first message's credential against this socket's challenge: the session id it signs in with (and, for
   * a traded link token, the new session's credential for the page to keep), or why not.
   */
  const signIn = (message: unknown, nonce: string): { id: string; credential?: string } | { error: string } => {
    const auth = Auth.safeParse(message);
    if (!auth.success) return { error: SIGN_IN_MESSAGES.authFirst };
    const at = now();
    if (auth.data.id && auth.data.proof) {
      const row = sessions.webSession(auth.data.id, at);
      // Another origin's session is refused whatever it proves: it was made for a page this server never served.
      if (
        row?.origin === origin &&
        hexEqual(auth.data.proof, sessionProof(row.secretSha256, nonce, origin)) &&
        sessions.touchWebSession(row.id, at, expiry(at))
      )
        return { id: row.id };
    }
    if (auth.data.token && oneTimeToken && equal(auth.data.token, oneTimeToken)) {
      if (at.getTime() >= tokenExpiresAt) {
        // Expired unused: a new link in the terminal, where only the admin sees it.
        newToken();
        options.onNewLink?.(link(), 'expired');
        return { error: SIGN_IN_MESSAGES.linkExpired };
      }
      oneTimeToken = null;
      const id = randomBytes(12).toString('base64url');
      const secret = randomBytes(32).toString('base64url');
      sessions.insertWebSession({ id, secretSha256: hashOf(secret), origin }, at, expiry(at));
      return { id, credential: `${id}.${secret}` };
    }
    return { error: auth.data.token ? SIGN_IN_MESSAGES.linkUsed : SIGN_IN_MESSAGES.notSignedIn };
  };

  const signOut = (id: string): void => {
    sessions.deleteWebSession(id);
    for (const ws of sockets.get(id) ?? []) {
      if (ws.readyState === ws.OPEN)
        ws.send(JSON.stringify({ type: 'signed-out', message: SIGN_IN_MESSAGES.signedOut }));
      ws.close(CLOSE_NOT_SIGNED_IN, 'signed out');
    }
    sockets.delete(id);
    // The admin may want to sign in again: a new link (for 10 minutes), as at the start.
    newToken();
    options.onNewLink?.(link(), 'signed-out');
  };

  const serve = (ws: WebSocket): void => {
    let session: string | null = null;
    let unsubscribe = (): void => undefined;
    // The page's request ids, mapped to the dispatcher's: two tabs can never cancel each other's calls.
    const mine = new Map<string, string>();
    const timer = setTimeout(() => ws.close(CLOSE_NOT_SIGNED_IN, 'not signed in in time'), authTimeoutMs);
    const send = (message: unknown): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    // This socket's challenge: a proof for it is worth nothing on any other socket.
    const nonce = randomBytes(32).toString('base64url');
    send({ type: 'challenge', nonce });
    ws.on('error', () => ws.terminate());
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let raw: unknown;
      try {
        raw = isBinary ? undefined : JSON.parse(data.toString('utf8'));
      } catch {
        raw = undefined;
      }
      if (session === null) {
        clearTimeout(timer);
        let result: ReturnType<typeof signIn>;
        try {
          result = signIn(raw, nonce);
        } catch (error) {
          options.log.error('browser mode could not check a sign-in', error);
          result = {
            error: 'Slotdeck could not read its sessions database (see its log). Reload the page to try again.',
          };
        }
        if ('error' in result) {
          send({ type: 'auth', ok: false, error: { code: 'BROWSER_NOT_SIGNED_IN', message: result.error } });
          ws.close(CLOSE_NOT_SIGNED_IN, 'not signed in');
          return;
        }
        session = result.id;
        const open = sockets.get(session) ?? new Set();
        open.add(ws);
        sockets.set(session, open);
        unsubscribe = options.events.subscribe((channel, payload) => send({ type: 'event', channel, payload }));
        send({ type: 'auth', ok: true, ...(result.credential ? { session: result.credential } : {}) });
        return;
      }
      const parsed = Incoming.safeParse(raw);
      if (!parsed.success) return;
      const message = parsed.data;
      if (message.type === 'sign-out') {
        try {
          signOut(session);
        } catch (error) {
          options.log.error('browser mode could not sign out', error);
          ws.close(1011, 'sign-out failed');
        }
        return;
      }
      if (message.type === 'cancel') {
        const key = mine.get(message.id);
        if (key) options.dispatcher.cancel(key);
        return;
      }
      const { id, channel, input } = message;
      if (!isInvokeChannel(channel) || channel === (CANCEL_CHANNEL as string)) {
        send({
          type: 'result',
          id,
          result: {
            ok: false,
            error: {
              code: IpcErrorCode.IPC_INPUT_INVALID,
              message: `Unknown channel ${channel}: update the page (reload it) to match this Slotdeck.`,
            },
          },
        });
        return;
      }
      const key = `${randomBytes(6).toString('hex')}:${id}`;
      mine.set(id, key);
      void options.dispatcher.dispatch(channel, input, key).then((result) => {
        mine.delete(id);
        send({ type: 'result', id, result });
      });
    });
    ws.on('close', () => {
      clearTimeout(timer);
      unsubscribe();
      if (session === null) return;
      sockets.get(session)?.delete(ws);
      // A tab left open for weeks keeps its session alive (not once Slotdeck is stopping: its database may be closed).
      if (stopping) return;
      const at = now();
      try {
        sessions.touchWebSession(session, at, expiry(at));
      } catch (error) {
        options.log.warn('browser mode could not note a session’s last use', error);
      }
    });
  };

  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolveListen, rejectListen) => {
      server.once('error', rejectListen);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', rejectListen);
        resolveListen();
      });
    });
  let notice: string | null = null;
  if (options.port) {
    await listen(options.port);
  } else if (options.preferredPort) {
    try {
      await listen(options.preferredPort);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' && (error as NodeJS.ErrnoException).code !== 'EACCES')
        throw error;
      await listen(0);
      notice = `Port ${options.preferredPort}, used last time, is taken by another program, so Slotdeck now listens on another port. Close any Slotdeck tab still open on port ${options.preferredPort} (whatever answers there now is not Slotdeck) and open the new link printed below: a browser's sign-in belongs to the port it was made on. Set SLOTDECK_PORT to choose a fixed port.`;
    }
  } else {
    await listen(0);
  }
  server.on('error', (error) => options.log.error('browser mode’s server failed', error));
  // Every connection, upgraded ones included (the server forgets those), so that close() can end them all.
  const connections = new Set<Duplex>();
  server.on('connection', (socket: Duplex) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  origin = `http://127.0.0.1:${port}`;
  hostHeaders.add(`127.0.0.1:${port}`);
  hostHeaders.add(`localhost:${port}`);
  return {
    url: link(),
    origin,
    port,
    notice,
    close: () =>
      new Promise((resolveClose) => {
        stopping = true;
        for (const client of wss.clients) client.close(1001, 'Slotdeck stopped');
        wss.close();
        server.close(() => resolveClose());
        server.closeAllConnections();
        // Sockets still upgrading or not answering the close frame: done waiting for them.
        for (const socket of connections) socket.destroy();
      }),
  };
}
