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
  error: { code: 'IPC_UNAVAILABLE', message: 'Lost the connection to Slotdeck. Is it still running?' },
};

/** Browser mode: one WebSocket to main, reopened when it drops; a call made meanwhile waits for the next attempt. */
export function socketTransport(url: string, WebSocketImpl: typeof WebSocket = WebSocket): Transport {
  const pending = new Map<string, (result: IpcResult<unknown>) => void>();
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const connectionListeners = new Set<(connected: boolean) => void>();
  let socket: WebSocket | null = null;
  let opened: Promise<WebSocket | null> | null = null;
  let retry = 0;

  /** The socket, opening it when needed; null when this attempt failed (the caller answers IPC_UNAVAILABLE). */
  const open = (): Promise<WebSocket | null> => {
    opened ??= new Promise<WebSocket | null>((resolve) => {
      const ws = new WebSocketImpl(url);
      ws.onopen = () => {
        retry = 0;
        socket = ws;
        for (const listener of connectionListeners) listener(true);
        resolve(ws);
      };
      ws.onmessage = (event: MessageEvent<string>) => {
        const message = JSON.parse(event.data) as
          | { type: 'result'; id: string; result: IpcResult<unknown> }
          | { type: 'event'; channel: string; payload: unknown };
        if (message.type === 'result') {
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
          settle(UNAVAILABLE);
          pending.delete(id);
        }
        retry += 1;
        setTimeout(() => void open(), Math.min(5000, 250 * 2 ** Math.min(retry, 5)));
      };
    });
    return opened;
  };
  void open();

  return {
    async invoke(channel, id, input) {
      const ws = socket ?? (await open());
      if (!ws) return UNAVAILABLE;
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
