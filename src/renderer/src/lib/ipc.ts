import type { EventChannel, InvokeChannel } from '../../../shared/ipc/channels';
import type { IpcErrorShape, IpcEvent, IpcInput, IpcOutput, IpcResult } from '../../../shared/ipc/contract';

/** An IPC failure as the renderer sees it: the stable code to branch on, the message to show. */
export class IpcClientError extends Error {
  readonly code: string;
  readonly details: Record<string, string> | undefined;

  constructor(shape: IpcErrorShape) {
    super(shape.message);
    this.name = 'IpcClientError';
    this.code = shape.code;
    this.details = shape.details;
  }
}

/** What the Electron preload exposes (see src/preload). */
interface Bridge {
  invoke(channel: string, requestId: string, input: unknown): Promise<unknown>;
  cancel(requestId: string): void;
  on(channel: string, listener: (payload: unknown) => void): () => void;
}

interface Transport {
  invoke(channel: string, requestId: string, input: unknown): Promise<IpcResult<unknown>>;
  cancel(requestId: string): void;
  on(channel: string, listener: (payload: unknown) => void): () => void;
  onConnection(listener: (connected: boolean) => void): () => void;
  /** Browser mode only: this browser's sign-in. */
  session?: BrowserSession;
}

/** Browser mode's sign-in, as the page sees it. */
export interface BrowserSession {
  /** Ends this browser's session on the server, forgets its secret, and closes the socket (every tab's). */
  signOut(): Promise<void>;
  /** The page is not (or no longer) signed in; the message says what to do next. */
  onSignedOut(listener: (message: string) => void): () => void;
}

/**
 * Where the page keeps its credentials: the link's one-time token (in the address, until traded) and the session it
 * was traded for (`<id>.<secret>`), in localStorage, which is scoped by origin (port included), so no other server on
 * 127.0.0.1 can read it (a cookie would go to every port). The secret is never sent: the page proves it holds it.
 */
export interface Credentials {
  token(): string | null;
  session(): string | null;
  /** Signed in: keeps a new session (`<id>.<secret>`), and drops the used token from the address bar. */
  signedIn(session: string | undefined): void;
  /** Forgets the secret and the token (sign-out, or a secret the server no longer knows). */
  forget(): void;
}

const SESSION_KEY = 'slotdeck.session';

/** The page's own credentials: `?token=` in its address, the session secret in localStorage. */
export function pageCredentials(): Credentials {
  const dropToken = (): void => {
    const url = new URL(location.href);
    if (!url.searchParams.has('token')) return;
    url.searchParams.delete('token');
    history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
  };
  return {
    token: () => new URL(location.href).searchParams.get('token') || null,
    session: () => localStorage.getItem(SESSION_KEY),
    signedIn(session) {
      if (session) localStorage.setItem(SESSION_KEY, session);
      dropToken();
    },
    forget() {
      localStorage.removeItem(SESSION_KEY);
      dropToken();
    },
  };
}

/** The typed client of main's IPC contract, the same in the Electron window and in browser mode. */
export interface IpcClient {
  invoke<C extends InvokeChannel>(
    channel: C,
    input: IpcInput<C>,
    options?: { signal?: AbortSignal },
  ): Promise<IpcOutput<C>>;
  on<E extends EventChannel>(channel: E, listener: (payload: IpcEvent<E>) => void): () => void;
  /** Browser mode's socket to main dropped (Slotdeck stopped) or came back. */
  onConnection(listener: (connected: boolean) => void): () => void;
  /** Browser mode only: this browser's sign-in (sign out, hear that it ended). */
  session?: BrowserSession;
}

let counter = 0;
const nextId = (): string => `${Date.now().toString(36)}-${(counter += 1)}`;

function bridgeTransport(bridge: Bridge): Transport {
  return {
    invoke: (channel, id, input) => bridge.invoke(channel, id, input) as Promise<IpcResult<unknown>>,
    cancel: (id) => bridge.cancel(id),
    on: (channel, listener) => bridge.on(channel, listener),
    onConnection: () => () => undefined,
  };
}

const UNAVAILABLE: IpcResult<never> = {
  ok: false,
  error: {
    code: 'IPC_UNAVAILABLE',
    message:
      'Lost the connection to Slotdeck. If it stopped, start it again (npm start): this page reconnects by itself. If Slotdeck said it now listens on another port, close this page and open the new link it printed (this page’s sign-in belongs to this port).',
  },
};

const NOT_SIGNED_IN =
  'This browser is not signed in to Slotdeck at this address. Open the link Slotdeck printed in the terminal where it runs (the newest one); if that link was used already, stop Slotdeck (Ctrl-C) and start it again (npm start) for a new one.';

const hex = (bytes: ArrayBuffer): string =>
  Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, '0')).join('');

/**
 * The answer to a socket's challenge: HMAC-SHA256 over `nonce|origin`, keyed by the SHA-256 of the session secret
 * (what the server stores), in hex. Whoever sent the nonce learns nothing it could use on another socket or origin.
 */
export async function sessionProof(secret: string, nonce: string, origin: string): Promise<string> {
  const encoder = new TextEncoder();
  const keyBytes = await crypto.subtle.digest('SHA-256', encoder.encode(secret));
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return hex(await crypto.subtle.sign('HMAC', key, encoder.encode(`${nonce}|${origin}`)));
}

/** A kept session, `<id>.<secret>`; null for anything else (an older Slotdeck's bare secret included). */
function parseSession(value: string | null): { id: string; secret: string } | null {
  const match = /^([A-Za-z0-9_-]{1,128})\.([A-Za-z0-9_-]{1,128})$/.exec(value ?? '');
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

type ServerMessage =
  | { type: 'challenge'; nonce: string }
  | { type: 'auth'; ok: true; session?: string }
  | { type: 'auth'; ok: false; error: IpcErrorShape }
  | { type: 'signed-out'; message: string }
  | { type: 'result'; id: string; result: IpcResult<unknown> }
  | { type: 'event'; channel: string; payload: unknown };

/**
 * Browser mode: one WebSocket to main, reopened when it drops; a call made meanwhile waits for the next attempt. The
 * server opens with a challenge; the page's first message signs in (the session's id and its proof for that
 * challenge and this page's origin, or the link's token, traded for a session); the secret itself is never sent, so
 * a program squatting on this port while Slotdeck is stopped gets nothing it can replay. Nothing else is sent before
 * the server says yes. When the server says no (or the admin signs out), the page is told and the socket stays closed.
 */
export function socketTransport(
  url: string,
  WebSocketImpl: typeof WebSocket = WebSocket,
  credentials: Credentials = pageCredentials(),
  origin: string = location.origin,
): Transport {
  const pending = new Map<string, (result: IpcResult<unknown>) => void>();
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const connectionListeners = new Set<(connected: boolean) => void>();
  const signedOutListeners = new Set<(message: string) => void>();
  let socket: WebSocket | null = null;
  let opened: Promise<WebSocket | null> | null = null;
  let retry = 0;
  /** Why the page is not signed in; once set, no socket is opened any more. */
  let signedOut: string | null = null;

  const signOutLocally = (message: string): void => {
    if (signedOut !== null) return;
    signedOut = message;
    credentials.forget();
    for (const listener of signedOutListeners) listener(message);
  };

  /** The signed-in socket, opening it when needed; null when this attempt failed (the caller answers). */
  const open = (): Promise<WebSocket | null> => {
    if (signedOut !== null) return Promise.resolve(null);
    opened ??= new Promise<WebSocket | null>((resolve) => {
      const token = credentials.token();
      const session = parseSession(credentials.session());
      if (!token && !session) {
        signOutLocally(NOT_SIGNED_IN);
        resolve(null);
        return;
      }
      const ws = new WebSocketImpl(url);
      let answered = false;
      ws.onmessage = (event: MessageEvent<string>) => {
        const message = JSON.parse(event.data) as ServerMessage;
        if (message.type === 'challenge') {
          // One answer per socket, to a nonce of sane size.
          if (answered || typeof message.nonce !== 'string' || message.nonce.length > 256) return;
          answered = true;
          void (async () => {
            const proof = session ? await sessionProof(session.secret, message.nonce, origin) : null;
            ws.send(
              JSON.stringify({
                type: 'auth',
                ...(session && proof ? { id: session.id, proof } : {}),
                ...(token ? { token } : {}),
              }),
            );
          })().catch(() => {
            signOutLocally(
              'This browser could not sign in: it has no Web Crypto here. Open Slotdeck at the http://127.0.0.1 link it printed, in an up-to-date browser.',
            );
            ws.close();
          });
        } else if (message.type === 'auth') {
          // Only an answer to our sign-in counts.
          if (!answered) return;
          if (!message.ok) {
            signOutLocally(message.error.message);
            resolve(null);
            return;
          }
          credentials.signedIn(message.session);
          retry = 0;
          socket = ws;
          for (const listener of connectionListeners) listener(true);
          resolve(ws);
        } else if (message.type === 'signed-out') {
          signOutLocally(message.message);
        } else if (message.type === 'result') {
          pending.get(message.id)?.(message.result);
          pending.delete(message.id);
        } else {
          for (const listener of listeners.get(message.channel) ?? []) listener(message.payload);
        }
      };
      ws.onclose = () => {
        const wasOpen = socket === ws;
        socket = null;
        opened = null;
        // Whoever waited for this attempt gets an answer now instead of waiting forever.
        resolve(null);
        if (wasOpen) for (const listener of connectionListeners) listener(false);
        // Calls in flight cannot be answered any more.
        for (const [id, settle] of pending) {
          settle(unavailable());
          pending.delete(id);
        }
        if (signedOut !== null) return;
        retry += 1;
        setTimeout(() => void open(), Math.min(5000, 250 * 2 ** Math.min(retry, 5)));
      };
    });
    return opened;
  };
  const unavailable = (): IpcResult<never> =>
    signedOut === null ? UNAVAILABLE : { ok: false, error: { code: 'BROWSER_NOT_SIGNED_IN', message: signedOut } };
  void open();

  return {
    async invoke(channel, id, input) {
      const ws = socket ?? (await open());
      if (!ws) return unavailable();
      return new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(JSON.stringify({ type: 'invoke', id, channel, input }));
      });
    },
    cancel(id) {
      socket?.send(JSON.stringify({ type: 'cancel', id }));
    },
    on(channel, listener) {
      const set = listeners.get(channel) ?? new Set();
      set.add(listener);
      listeners.set(channel, set);
      return () => set.delete(listener);
    },
    onConnection(listener) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },
    session: {
      async signOut() {
        const ws = socket ?? (await open());
        if (ws) {
          // The server revokes the session and closes every tab's socket; this one waits for its close.
          const closed = new Promise<void>((resolve) => ws.addEventListener('close', () => resolve(), { once: true }));
          ws.send(JSON.stringify({ type: 'sign-out' }));
          await closed;
        }
        signOutLocally(
          'You signed out of Slotdeck in this browser. To sign in again, open the new link Slotdeck printed in the terminal where it runs.',
        );
      },
      onSignedOut(listener) {
        signedOutListeners.add(listener);
        if (signedOut !== null) listener(signedOut);
        return () => signedOutListeners.delete(listener);
      },
    },
  };
}

export function createIpcClient(transport: Transport): IpcClient {
  return {
    async invoke(channel, input, options = {}) {
      const id = nextId();
      const abort = (): void => transport.cancel(id);
      options.signal?.addEventListener('abort', abort, { once: true });
      try {
        const result = await transport.invoke(channel, id, input);
        if (!result.ok) throw new IpcClientError(result.error);
        return result.data as IpcOutput<typeof channel>;
      } finally {
        options.signal?.removeEventListener('abort', abort);
      }
    },
    on(channel, listener) {
      return transport.on(channel, (payload) => listener(payload as IpcEvent<typeof channel>));
    },
    onConnection(listener) {
      return transport.onConnection(listener);
    },
    ...(transport.session ? { session: transport.session } : {}),
  };
}

declare global {
  interface Window {
    slotdeck?: Bridge;
  }
}

/** The Electron bridge when the preload put one there, otherwise browser mode's socket on this page's own server. */
export function defaultIpcClient(): IpcClient {
  if (window.slotdeck) return createIpcClient(bridgeTransport(window.slotdeck));
  const protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return createIpcClient(socketTransport(`${protocol}//${location.host}/ipc`));
}

/** A failed form submission as the form shows it: messages under the fields they are about, the rest below. */
export interface FormErrors {
  /** By the form's own field key. */
  fields: Record<string, string>;
  /** What belongs to no field of the form (or a failure that is not about the input); null when none. */
  message: string | null;
}

const sentence = (text: string): string => {
  const trimmed = text.trim();
  return trimmed ? `${trimmed[0]!.toUpperCase()}${trimmed.slice(1)}${/[.!?]$/.test(trimmed) ? '' : '.'}` : trimmed;
};

/**
 * Sorts a failure into the form's fields. Main reports invalid input as `path: message` lines (the schema's paths,
 * such as `port` or `changes.auth.privateKey`): a line whose path ends with one of `labels`' keys goes under that
 * field (in words, the schema's path left out); any other line is shown below the form, its path left out too.
 */
export function formErrors(error: unknown, labels: Record<string, string>): FormErrors {
  if (!(error instanceof IpcClientError) || error.code !== 'IPC_INPUT_INVALID' || !error.details?.fields)
    return { fields: {}, message: error instanceof Error ? error.message : String(error) };
  const fields: Record<string, string> = {};
  const rest: string[] = [];
  for (const line of error.details.fields.split('\n')) {
    const split = line.indexOf(': ');
    const path = split >= 0 ? line.slice(0, split) : '';
    const message = split >= 0 ? line.slice(split + 2) : line;
    const key = Object.keys(labels)
      .sort((a, b) => b.length - a.length)
      .find((candidate) => path === candidate || path.endsWith(`.${candidate}`));
    if (key) fields[key] ??= sentence(message);
    else rest.push(sentence(message));
  }
  return {
    fields,
    message: rest.length > 0 ? `Check the form: ${rest.join(' ')}` : null,
  };
}
