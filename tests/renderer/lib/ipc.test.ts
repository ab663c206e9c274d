import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createIpcClient, type Credentials, IpcClientError, socketTransport } from '../../../src/renderer/src/lib/ipc';
import type { IpcResult } from '../../../src/shared/ipc/contract';

type Transport = Parameters<typeof createIpcClient>[0];

/** A transport whose answers the test gives by hand; it records the calls and cancels it receives. */
function manualTransport() {
  const calls: Array<{ channel: string; id: string; input: unknown; answer: (result: IpcResult<unknown>) => void }> =
    [];
  const cancels: string[] = [];
  const transport: Transport = {
    invoke: (channel, id, input) =>
      new Promise((answer) => {
        calls.push({ channel, id, input, answer });
      }),
    cancel: (id) => cancels.push(id),
    on: () => () => undefined,
    onConnection: () => () => undefined,
  };
  return { transport, calls, cancels };
}

const tick = (): Promise<void> => Promise.resolve();

describe('createIpcClient', () => {
  it('sends the channel and input and resolves with the data of a successful answer', async () => {
    const { transport, calls } = manualTransport();
    const client = createIpcClient(transport);
    const call = client.invoke('hosts:remove', { id: 'prod' });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ channel: 'hosts:remove', input: { id: 'prod' } });
    calls[0]?.answer({ ok: true, data: { ok: true } });
    await expect(call).resolves.toEqual({ ok: true });
  });

  it('throws an IpcClientError carrying the code, message and details of a failed answer', async () => {
    const { transport, calls } = manualTransport();
    const client = createIpcClient(transport);
    const call = client.invoke('hosts:connect', { id: 'prod' });
    calls[0]?.answer({
      ok: false,
      error: {
        code: 'HOST_KEY_UNKNOWN',
        message: 'Check the fingerprint before trusting it.',
        details: { fingerprint: 'SHA256:abc', algorithm: 'ssh-ed25519' },
      },
    });
    const error: unknown = await call.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(IpcClientError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      code: 'HOST_KEY_UNKNOWN',
      message: 'Check the fingerprint before trusting it.',
      details: { fingerprint: 'SHA256:abc', algorithm: 'ssh-ed25519' },
    });
  });

  it('gives each call its own request id', () => {
    const { transport, calls } = manualTransport();
    const client = createIpcClient(transport);
    void client.invoke('hosts:list', {});
    void client.invoke('hosts:list', {});
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
  });

  it('cancels the request on main when its signal is aborted during the call', async () => {
    const { transport, calls, cancels } = manualTransport();
    const client = createIpcClient(transport);
    const controller = new AbortController();
    void client.invoke('hosts:list', {});
    const call = client.invoke('hosts:connect', { id: 'prod' }, { signal: controller.signal });
    controller.abort();
    expect(cancels).toEqual([calls[1]?.id]);

    calls[1]?.answer({ ok: false, error: { code: 'IPC_CANCELLED', message: 'Cancelled.' } });
    await expect(call).rejects.toMatchObject({ code: 'IPC_CANCELLED' });
  });

  it('sends no cancel when the signal is aborted after the call finished', async () => {
    const { transport, calls, cancels } = manualTransport();
    const client = createIpcClient(transport);
    const controller = new AbortController();
    const call = client.invoke('hosts:list', {}, { signal: controller.signal });
    calls[0]?.answer({ ok: true, data: { hosts: [] } });
    await call;
    controller.abort();
    expect(cancels).toEqual([]);
  });
});

/** A stand-in for the browser's WebSocket: the test opens, answers and closes it. */
class FakeSocket {
  static made: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  readonly sent: unknown[] = [];
  private readonly closeListeners: Array<() => void> = [];
  private sentWaiters: Array<() => void> = [];

  constructor(readonly url: string) {
    FakeSocket.made.push(this);
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
    for (const wake of this.sentWaiters.splice(0)) wake();
  }

  /** Resolves once the page has sent its sign-in (it computes its proof with crypto.subtle, asynchronously). */
  async authSent(): Promise<Record<string, unknown>> {
    for (;;) {
      const auth = this.sent.find((message) => (message as { type: string }).type === 'auth');
      if (auth) return auth as Record<string, unknown>;
      await new Promise<void>((wake) => this.sentWaiters.push(wake));
    }
  }

  addEventListener(type: string, listener: () => void): void {
    if (type === 'close') this.closeListeners.push(listener);
  }

  open(): void {
    this.onopen?.();
  }

  /** Opens with a challenge and, once the page answered it, lets its sign-in through as the server does. */
  async signIn(session?: string): Promise<void> {
    this.open();
    this.receive({ type: 'challenge', nonce: 'nonce-1' });
    await this.authSent();
    this.receive({ type: 'auth', ok: true, ...(session ? { session } : {}) });
  }

  receive(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  drop(): void {
    this.onclose?.();
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  static last(): FakeSocket {
    const socket = FakeSocket.made[FakeSocket.made.length - 1];
    if (!socket) throw new Error('no socket was opened');
    return socket;
  }
}

const URL = 'ws://127.0.0.1:7421/ipc';
const ORIGIN = 'http://127.0.0.1:7421';

/** What the server expects for a challenge: HMAC-SHA256(key = SHA-256(secret), `nonce|origin`), in hex. */
async function proofFor(secret: string, nonce: string, origin = ORIGIN): Promise<string> {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const raw = await crypto.subtle.digest('SHA-256', bytes(secret));
  const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, bytes(`${nonce}|${origin}`)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
const keptAuth = async () => ({ type: 'auth', id: 'sid', proof: await proofFor('kept-secret', 'nonce-1') });

/** The page's credentials, in memory: what the transport kept, forgot and dropped. */
function memoryCredentials(initial: { token?: string; session?: string } = { session: 'sid.kept-secret' }) {
  const state = { token: initial.token ?? null, session: initial.session ?? null };
  const credentials: Credentials = {
    token: () => state.token,
    session: () => state.session,
    signedIn(session) {
      if (session) state.session = session;
      state.token = null;
    },
    forget() {
      state.session = null;
      state.token = null;
    },
  };
  return { credentials, state };
}

const transport = (credentials: Credentials = memoryCredentials().credentials) =>
  socketTransport(URL, FakeSocket as unknown as typeof WebSocket, credentials, ORIGIN);

/** The invokes a socket sent, as {id, channel, input}. */
const invokes = (socket: FakeSocket) =>
  socket.sent.filter((message) => (message as { type: string }).type === 'invoke') as Array<{
    type: 'invoke';
    id: string;
    channel: string;
    input: unknown;
  }>;

describe('socketTransport', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.made = [];
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('connects to the given URL at once', () => {
    transport();
    expect(FakeSocket.made.map((socket) => socket.url)).toEqual([URL]);
  });

  it('sends an invoke once the socket is open and resolves each call with the result of its own id', async () => {
    const ipc = transport();
    const socket = FakeSocket.last();
    const first = ipc.invoke('hosts:list', 'req-1', {});
    const second = ipc.invoke('hosts:remove', 'req-2', { id: 'prod' });
    await tick();
    expect(socket.sent).toEqual([]);

    await socket.signIn();
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent).toEqual([
      await keptAuth(),
      { type: 'invoke', id: 'req-1', channel: 'hosts:list', input: {} },
      { type: 'invoke', id: 'req-2', channel: 'hosts:remove', input: { id: 'prod' } },
    ]);

    socket.receive({ type: 'result', id: 'req-2', result: { ok: true, data: { ok: true } } });
    socket.receive({ type: 'result', id: 'req-1', result: { ok: true, data: { hosts: [] } } });
    await expect(first).resolves.toEqual({ ok: true, data: { hosts: [] } });
    await expect(second).resolves.toEqual({ ok: true, data: { ok: true } });
  });

  it('sends a cancel for a request id', async () => {
    const ipc = transport();
    const socket = FakeSocket.last();
    await socket.signIn();
    await tick();
    ipc.cancel('req-9');
    expect(socket.sent).toEqual([await keptAuth(), { type: 'cancel', id: 'req-9' }]);
  });

  it('delivers events to the listeners of their channel only, until they unsubscribe', async () => {
    const ipc = transport();
    const socket = FakeSocket.last();
    await socket.signIn();
    const statuses: unknown[] = [];
    const changes: unknown[] = [];
    const stopStatuses = ipc.on('hosts:status', (payload) => statuses.push(payload));
    ipc.on('hosts:changed', (payload) => changes.push(payload));

    const payload = { hostId: 'prod', status: { state: 'connected', since: '2024-01-01T00:00:00.000Z' } };
    socket.receive({ type: 'event', channel: 'hosts:status', payload });
    expect(statuses).toEqual([payload]);
    expect(changes).toEqual([]);

    stopStatuses();
    socket.receive({ type: 'event', channel: 'hosts:status', payload });
    socket.receive({ type: 'event', channel: 'hosts:changed', payload: {} });
    expect(statuses).toEqual([payload]);
    expect(changes).toEqual([{}]);
  });

  it('answers calls in flight with IPC_UNAVAILABLE, tells the page and reconnects when the socket closes', async () => {
    const ipc = transport();
    const socket = FakeSocket.last();
    const connection: boolean[] = [];
    ipc.onConnection((connected) => connection.push(connected));
    await socket.signIn();
    expect(connection).toEqual([true]);

    const inFlight = ipc.invoke('hosts:list', 'req-1', {});
    await tick();
    socket.drop();
    await expect(inFlight).resolves.toMatchObject({ ok: false, error: { code: 'IPC_UNAVAILABLE' } });
    expect(connection).toEqual([true, false]);
    expect(FakeSocket.made).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(5000);
    expect(FakeSocket.made).toHaveLength(2);
    const again = FakeSocket.last();
    await again.signIn();
    expect(connection).toEqual([true, false, true]);

    const next = ipc.invoke('hosts:list', 'req-2', {});
    await tick();
    expect(invokes(again).map((message) => message.id)).toEqual(['req-2']);
    again.receive({ type: 'result', id: 'req-2', result: { ok: true, data: { hosts: [] } } });
    await expect(next).resolves.toEqual({ ok: true, data: { hosts: [] } });
  });

  it('waits longer between attempts while the socket keeps failing to open', async () => {
    transport();
    FakeSocket.last().drop();
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeSocket.made).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.made).toHaveLength(2);

    FakeSocket.last().drop();
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeSocket.made).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.made).toHaveLength(3);
  });
});

describe('socketTransport while Slotdeck is down', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.made = [];
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  // A call made while a connection attempt is under way waits for it; when that attempt fails, the call must be
  // answered (IPC_UNAVAILABLE) rather than wait for ever.
  it('does not leave a call made during a failed reconnect attempt waiting forever', async () => {
    const ipc = transport();
    await FakeSocket.last().signIn();
    FakeSocket.last().drop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(FakeSocket.made).toHaveLength(2);

    const settled = vi.fn();
    void ipc.invoke('hosts:list', 'req-1', {}).then(settled);
    await tick();
    FakeSocket.last().drop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(FakeSocket.made).toHaveLength(3);
    const third = FakeSocket.last();
    await third.signIn();
    await vi.advanceTimersByTimeAsync(0);
    for (const message of invokes(third)) {
      third.receive({ type: 'result', id: message.id, result: { ok: true, data: { hosts: [] } } });
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toHaveBeenCalledTimes(1);
  });
});

describe('socketTransport signing in (browser mode)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.made = [];
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends nothing but the sign-in until the server accepts it', async () => {
    const ipc = transport();
    const socket = FakeSocket.last();
    const call = ipc.invoke('hosts:list', 'req-1', {});
    socket.open();
    await vi.advanceTimersByTimeAsync(0);
    // It waits for the server's challenge before saying anything.
    expect(socket.sent).toEqual([]);
    socket.receive({ type: 'challenge', nonce: 'nonce-1' });
    await socket.authSent();
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent).toEqual([await keptAuth()]);

    socket.receive({ type: 'auth', ok: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(invokes(socket).map((message) => message.id)).toEqual(['req-1']);
    socket.receive({ type: 'result', id: 'req-1', result: { ok: true, data: { hosts: [] } } });
    await expect(call).resolves.toEqual({ ok: true, data: { hosts: [] } });
  });

  it('trades the link’s token, keeps the session it gets back and drops the token', async () => {
    const { credentials, state } = memoryCredentials({ token: 'one-time' });
    transport(credentials);
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: 'challenge', nonce: 'n-0' });
    expect(await socket.authSent()).toEqual({ type: 'auth', token: 'one-time' });
    socket.receive({ type: 'auth', ok: true, session: 'new-id.new-secret' });
    expect(state).toEqual({ token: null, session: 'new-id.new-secret' });

    // A reload (a new page on the same origin) proves it holds the kept secret.
    transport(credentials);
    FakeSocket.last().open();
    FakeSocket.last().receive({ type: 'challenge', nonce: 'n-1' });
    expect(await FakeSocket.last().authSent()).toEqual({
      type: 'auth',
      id: 'new-id',
      proof: await proofFor('new-secret', 'n-1'),
    });
  });

  it('never sends the session secret: it answers each socket’s challenge with a proof bound to this origin', async () => {
    transport();
    const squatted = FakeSocket.last();
    // Whatever listens on this port (Slotdeck, or a program squatting on it) picks the nonce.
    squatted.open();
    squatted.receive({ type: 'challenge', nonce: 'chosen-by-squatter' });
    const auth = await squatted.authSent();
    expect(JSON.stringify(squatted.sent)).not.toContain('kept-secret');
    expect(auth).toEqual({ type: 'auth', id: 'sid', proof: await proofFor('kept-secret', 'chosen-by-squatter') });
    // It is worth nothing for another nonce or another origin.
    expect(auth.proof).not.toBe(await proofFor('kept-secret', 'chosen-by-squatter', 'http://127.0.0.1:7422'));

    // A second challenge on the same socket gets no second answer.
    squatted.receive({ type: 'challenge', nonce: 'another' });
    await vi.advanceTimersByTimeAsync(0);
    expect(squatted.sent).toHaveLength(1);
  });

  it('ignores a sign-in "yes" that answers nothing it sent', async () => {
    const ipc = transport();
    const connection: boolean[] = [];
    ipc.onConnection((connected) => connection.push(connected));
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: 'auth', ok: true });
    void ipc.invoke('hosts:list', 'req-1', {});
    await vi.advanceTimersByTimeAsync(0);
    expect(connection).toEqual([]);
    expect(socket.sent).toEqual([]);
  });

  it('signs in with nothing an older Slotdeck kept (a bare secret) and says to open the link', async () => {
    const { credentials, state } = memoryCredentials({ session: 'bare-old-secret' });
    const ipc = transport(credentials);
    const messages: string[] = [];
    ipc.session?.onSignedOut((message) => messages.push(message));
    expect(FakeSocket.made).toHaveLength(0);
    expect(messages).toEqual([expect.stringContaining('Open the link Slotdeck printed') as string]);
    expect(state.session).toBeNull();
    await expect(ipc.invoke('hosts:list', 'req-1', {})).resolves.toMatchObject({
      error: { code: 'BROWSER_NOT_SIGNED_IN' },
    });
  });

  it('tells a page left on a port Slotdeck moved away from to open the new link', async () => {
    const ipc = transport();
    await FakeSocket.last().signIn();
    FakeSocket.last().drop();
    // Nothing answers on this port any more: the next attempt fails too.
    const call = ipc.invoke('hosts:list', 'req-1', {});
    await tick();
    FakeSocket.last().drop();
    await expect(call).resolves.toMatchObject({
      ok: false,
      error: { code: 'IPC_UNAVAILABLE', message: expect.stringContaining('open the new link it printed') as string },
    });
  });

  it('tells the page what to do when the server refuses the sign-in, forgets the secret and stops trying', async () => {
    const { credentials, state } = memoryCredentials({ session: 'sid.expired' });
    const ipc = transport(credentials);
    const messages: string[] = [];
    ipc.session?.onSignedOut((message) => messages.push(message));
    const call = ipc.invoke('hosts:list', 'req-1', {});
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: 'challenge', nonce: 'n' });
    await socket.authSent();
    socket.receive({ type: 'auth', ok: false, error: { code: 'BROWSER_NOT_SIGNED_IN', message: 'Open the link.' } });
    socket.drop();
    await expect(call).resolves.toEqual({
      ok: false,
      error: { code: 'BROWSER_NOT_SIGNED_IN', message: 'Open the link.' },
    });
    expect(messages).toEqual(['Open the link.']);
    expect(state.session).toBeNull();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeSocket.made).toHaveLength(1);
  });

  it('opens no socket at all without a token or a session, and says how to sign in', async () => {
    const ipc = transport(memoryCredentials({}).credentials);
    const messages: string[] = [];
    ipc.session?.onSignedOut((message) => messages.push(message));
    expect(FakeSocket.made).toHaveLength(0);
    expect(messages).toEqual([expect.stringContaining('Open the link Slotdeck printed') as string]);
    await expect(ipc.invoke('hosts:list', 'req-1', {})).resolves.toMatchObject({
      ok: false,
      error: { code: 'BROWSER_NOT_SIGNED_IN' },
    });
  });

  it('signs out: asks the server to end the session, forgets the secret and does not reconnect', async () => {
    const { credentials, state } = memoryCredentials();
    const ipc = transport(credentials);
    const messages: string[] = [];
    ipc.session?.onSignedOut((message) => messages.push(message));
    const socket = FakeSocket.last();
    await socket.signIn();

    const done = ipc.session!.signOut();
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent.at(-1)).toEqual({ type: 'sign-out' });
    socket.receive({ type: 'signed-out', message: 'You signed out.' });
    socket.drop();
    await done;
    expect(messages).toEqual(['You signed out.']);
    expect(state).toEqual({ token: null, session: null });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeSocket.made).toHaveLength(1);
  });
});
