import { createHash, createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Dispatcher, type Handlers } from '../../src/main/ipc/dispatch';
import { EventBus } from '../../src/main/ipc/events';
import { Store } from '../../src/main/services/db/store';
import {
  LINK_LIFETIME_MS,
  memorySessions,
  SESSION_IDLE_MS,
  startWebHost,
  type WebHost,
  type WebHostOptions,
} from '../../src/main/web-host';

let root: string;
let rendererDir: string;
const events = new EventBus();
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const handlers = {
  'hosts:list': () => Promise.resolve({ hosts: [] }),
  'hosts:connect': (_input: unknown, { signal }: { signal: AbortSignal }) =>
    new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('x')))),
} as unknown as Handlers;
const started: WebHost[] = [];
const opened: Store[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sd-web-'));
  rendererDir = join(root, 'renderer');
  mkdirSync(join(rendererDir, 'assets'), { recursive: true });
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>Slotdeck</title>');
  writeFileSync(join(rendererDir, 'assets', 'app.js'), 'console.log("app")');
  // A sibling whose name starts with the renderer's: nothing in it may be served.
  mkdirSync(join(root, 'renderer-evil'));
  writeFileSync(join(root, 'renderer-evil', 'secret.txt'), 'not for the browser');
});

afterEach(async () => {
  for (const host of started.splice(0)) await host.close();
  for (const store of opened.splice(0)) store.close();
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function start(options: Partial<WebHostOptions> = {}): Promise<WebHost> {
  const host = await startWebHost({
    rendererDir,
    dispatcher: new Dispatcher(handlers, silent),
    events,
    log: silent,
    authTimeoutMs: 300,
    ...options,
  });
  started.push(host);
  return host;
}

const tokenOf = (host: WebHost): string => new URL(host.url).searchParams.get('token')!;

/** What the page computes with crypto.subtle: HMAC-SHA256(key = SHA-256(secret), `nonce|origin`), in hex. */
const proofFor = (secret: string, nonce: string, origin: string): string =>
  createHmac('sha256', createHash('sha256').update(secret).digest()).update(`${nonce}|${origin}`).digest('hex');

/** A kept session (`<id>.<secret>`, as the page stores it) split in two. */
const parts = (session: string): { id: string; secret: string } => {
  const [id = '', secret = ''] = session.split('.');
  return { id, secret };
};

/** A socket to /ipc that keeps every message it gets, and how it closed. */
class Client {
  readonly messages: Array<Record<string, unknown>> = [];
  readonly closed: Promise<{ code: number }>;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly ws: WebSocket,
    readonly origin: string,
  ) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve({ code })));
  }

  static open(host: WebHost, headers: Record<string, string> = { origin: host.origin }): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${host.origin.replace('http', 'ws')}/ipc`, { headers });
      const client = new Client(ws, host.origin);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The next message matching `match` (already received or still to come). */
  async next(match: (message: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (;;) {
      const found = this.messages.find(match);
      if (found) {
        this.messages.splice(this.messages.indexOf(found), 1);
        return found;
      }
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }

  /** The nonce the server opened this socket with. */
  async challenge(): Promise<string> {
    const message = await this.next((received) => received.type === 'challenge');
    return message.nonce as string;
  }

  /** Signs in as the page does: the link's token, or the kept session's proof for this socket's challenge. */
  async auth(credential: { token?: string; session?: string }): Promise<Record<string, unknown>> {
    const nonce = await this.challenge();
    const message: Record<string, unknown> = { type: 'auth' };
    if (credential.token) message.token = credential.token;
    if (credential.session) {
      const { id, secret } = parts(credential.session);
      message.id = id;
      message.proof = proofFor(secret, nonce, this.origin);
    }
    this.send(message);
    return this.next((received) => received.type === 'auth');
  }

  /** Sends a first message as it is and returns the server's answer to it. */
  async authRaw(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.send({ type: 'auth', ...message });
    return this.next((received) => received.type === 'auth');
  }

  async call(id: string, channel: string, input: unknown): Promise<Record<string, unknown>> {
    this.send({ type: 'invoke', id, channel, input });
    return this.next((message) => message.type === 'result' && message.id === id);
  }
}

/** Trades the link's token for a session secret, as the page's script does. */
async function signIn(host: WebHost): Promise<string> {
  const client = await Client.open(host);
  const answer = await client.auth({ token: tokenOf(host) });
  expect(answer).toMatchObject({ ok: true, session: expect.any(String) as string });
  client.ws.close();
  return answer.session as string;
}

/** A raw HTTP exchange, for what fetch will not send (another Host header, `//`, `%`). */
function raw(host: WebHost, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(host.origin).port), '127.0.0.1');
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(response));
    socket.on('connect', () => socket.write(text.replaceAll('PORT', new URL(host.origin).port)));
  });
}

describe('browser mode’s web host: pages', () => {
  it('serves the app’s files without any credential (they hold no secret), with its content policy', async () => {
    const host = await start();
    const page = await fetch(host.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await page.text()).toContain('Slotdeck');
    expect((await fetch(`${host.origin}/assets/app.js`)).status).toBe(200);
  });

  it('sets no cookie: no other server on 127.0.0.1 ever receives a credential from the browser', async () => {
    const host = await start();
    const link = await fetch(host.url, { redirect: 'manual' });
    const page = await fetch(`${host.origin}/`);
    expect(link.headers.get('set-cookie')).toBeNull();
    expect(page.headers.get('set-cookie')).toBeNull();
  });

  it('refuses other Host names (DNS rebinding), paths outside the app and its sibling directories', async () => {
    const host = await start();
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(host.origin);
      const req = request(
        { host: url.hostname, port: url.port, path: '/', headers: { host: 'evil.example' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
    expect((await fetch(`${host.origin}/..%2f..%2fetc%2fpasswd`)).status).toBe(404);
    const sibling = await fetch(`${host.origin}/..%2frenderer-evil%2fsecret.txt`);
    expect(sibling.status).toBe(404);
    expect(await sibling.text()).not.toContain('not for the browser');
  });

  it('answers 400 to targets that are not paths (`//`, `/%`, absolute-form) and keeps serving', async () => {
    const host = await start();
    for (const target of ['//', '/%', '/%zz', 'http://evil.example/', '*']) {
      expect(await raw(host, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: close\r\n\r\n`)).toMatch(
        /^HTTP\/1\.1 400 /,
      );
    }
    const upgrade = await raw(
      host,
      'GET // HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(upgrade).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${host.origin}/`)).status).toBe(200);
  });
});

describe('browser mode’s web host: signing in on the IPC socket', () => {
  it('trades the link’s token once for a session secret that signs in again after a reload', async () => {
    const host = await start();
    const session = await signIn(host);

    // The link works once.
    const again = await Client.open(host);
    expect(await again.auth({ token: tokenOf(host) })).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('already used') as string },
    });
    expect((await again.closed).code).toBe(4401);

    // A reload: the page signs in with the secret it kept.
    const reloaded = await Client.open(host);
    expect(await reloaded.auth({ session })).toEqual({ type: 'auth', ok: true });
    expect(await reloaded.call('a', 'hosts:list', {})).toEqual({
      type: 'result',
      id: 'a',
      result: { ok: true, data: { hosts: [] } },
    });
    reloaded.ws.close();
  });

  it('answers calls, pushes events and cancels over a signed-in socket', async () => {
    const host = await start();
    const client = await Client.open(host);
    await client.auth({ session: await signIn(host) });

    events.emit('hosts:changed', {});
    expect(await client.next((message) => message.type === 'event')).toEqual({
      type: 'event',
      channel: 'hosts:changed',
      payload: {},
    });

    client.send({ type: 'invoke', id: 'b', channel: 'hosts:connect', input: { id: 'h-1' } });
    client.send({ type: 'cancel', id: 'b' });
    expect(await client.next((message) => message.id === 'b')).toMatchObject({
      result: { ok: false, error: { code: 'IPC_CANCELLED' } },
    });

    expect(await client.call('c', 'shell:exec', {})).toMatchObject({
      result: { ok: false, error: { code: 'IPC_INPUT_INVALID', message: expect.stringContaining('reload') as string } },
    });
    client.ws.close();
  });

  it('drives nothing for a client replaying a captured cookie with a forged Origin', async () => {
    const host = await start();
    await signIn(host);
    // What a cookie-stealing server on another port could capture: whatever cookie the link or the page set (none).
    const captured = (await fetch(host.url, { redirect: 'manual' })).headers.get('set-cookie') ?? 'slotdeck_session=x';
    const replay = await Client.open(host, { origin: host.origin, cookie: captured.split(';')[0]! });
    replay.send({ type: 'invoke', id: 'a', channel: 'hosts:list', input: {} });
    expect(await replay.next((message) => message.type === 'auth')).toMatchObject({
      ok: false,
      error: { code: 'BROWSER_NOT_SIGNED_IN' },
    });
    expect((await replay.closed).code).toBe(4401);
    expect(replay.messages.filter((message) => message.type === 'result')).toEqual([]);
  });

  it('refuses sockets from other origins before any message', async () => {
    const host = await start();
    await expect(Client.open(host, { origin: 'http://127.0.0.1:1' })).rejects.toThrow(/403/);
    await expect(Client.open(host, {})).rejects.toThrow(/403/);
  });

  it('closes a socket that does not sign in in time, or signs in with a wrong secret', async () => {
    const host = await start();
    const silentClient = await Client.open(host);
    events.emit('hosts:changed', {});
    expect((await silentClient.closed).code).toBe(4401);
    // Not signed in: it got its challenge and no event.
    expect(silentClient.messages.map((message) => message.type)).toEqual(['challenge']);

    const wrong = await Client.open(host);
    expect(await wrong.auth({ session: 'guessed.guessed' })).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('Open the link Slotdeck printed') as string },
    });
    expect((await wrong.closed).code).toBe(4401);
  });

  it('keeps sessions across a restart with the same settings database, storing only their hash', async () => {
    const file = join(mkdtempSync(join(root, 'db-')), 'slotdeck.db');
    const first = Store.open(file);
    opened.push(first);
    const before = await start({ sessions: first });
    const session = await signIn(before);
    await before.close();
    started.splice(started.indexOf(before), 1);
    first.close();
    opened.splice(opened.indexOf(first), 1);
    const bytes = ['', '-wal'].map((suffix) => {
      try {
        return readFileSync(file + suffix).toString('latin1');
      } catch {
        return '';
      }
    });
    expect(bytes.join('')).not.toContain(session);

    const second = Store.open(file);
    opened.push(second);
    // Slotdeck takes the port it used last time: the same origin, so the same session.
    const after = await start({ sessions: second, preferredPort: before.port });
    expect(after.origin).toBe(before.origin);
    const client = await Client.open(after);
    expect(await client.auth({ session })).toEqual({ type: 'auth', ok: true });
    expect(await client.call('a', 'hosts:list', {})).toMatchObject({ result: { ok: true } });
    client.ws.close();
  });

  it('lets a session expire after 30 days unused', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const host = await start({ now: () => now });
    const session = await signIn(host);
    now = new Date(now.getTime() + SESSION_IDLE_MS - 60_000);
    const used = await Client.open(host);
    expect(await used.auth({ session })).toMatchObject({ ok: true });
    used.ws.close();
    await used.closed;
    now = new Date(now.getTime() + SESSION_IDLE_MS + 60_000);
    const late = await Client.open(host);
    expect(await late.auth({ session })).toMatchObject({ ok: false });
  });

  it('signs out: every tab of that session is closed, the secret stops working, and a new link is made', async () => {
    const links: string[] = [];
    const host = await start({ onNewLink: (url, reason) => reason === 'signed-out' && links.push(url) });
    const session = await signIn(host);
    const tab1 = await Client.open(host);
    const tab2 = await Client.open(host);
    await tab1.auth({ session });
    await tab2.auth({ session });

    tab1.send({ type: 'sign-out' });
    expect(await tab2.next((message) => message.type === 'signed-out')).toMatchObject({
      message: expect.stringContaining('new link') as string,
    });
    expect((await tab1.closed).code).toBe(4401);
    expect((await tab2.closed).code).toBe(4401);

    const after = await Client.open(host);
    expect(await after.auth({ session })).toMatchObject({ ok: false });
    expect(links).toHaveLength(1);
    const fresh = await Client.open(host);
    expect(await fresh.auth({ token: new URL(links[0]!).searchParams.get('token')! })).toMatchObject({ ok: true });
    fresh.ws.close();
  });
});

describe('browser mode’s web host: a program squatting on the port while Slotdeck is stopped', () => {
  it('never needs the secret on the socket: a fresh challenge per socket, a proof for another nonce is refused', async () => {
    const host = await start();
    const session = await signIn(host);
    const { id, secret } = parts(session);

    const first = await Client.open(host);
    const second = await Client.open(host);
    const [nonce1, nonce2] = [await first.challenge(), await second.challenge()];
    expect(nonce1).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(nonce1).not.toBe(nonce2);

    // What a squatter got from the page for its own nonce is worth nothing on a real socket.
    expect(await first.authRaw({ id, proof: proofFor(secret, 'squatter-nonce', host.origin) })).toMatchObject({
      ok: false,
      error: { code: 'BROWSER_NOT_SIGNED_IN' },
    });
    expect((await first.closed).code).toBe(4401);
    // Nor a proof made for another socket's challenge.
    expect(await second.authRaw({ id, proof: proofFor(secret, nonce1, host.origin) })).toMatchObject({ ok: false });

    // The page's way: the proof for this socket's own challenge and origin.
    const page = await Client.open(host);
    expect(await page.auth({ session })).toEqual({ type: 'auth', ok: true });
    expect(await page.call('a', 'hosts:list', {})).toMatchObject({ result: { ok: true } });
    page.ws.close();
  });

  it('refuses a session on any origin but the one it was made on, even with a forged Origin', async () => {
    const store = memorySessions();
    const old = await start({ sessions: store });
    const session = await signIn(old);
    const { id, secret } = parts(session);

    // Slotdeck now listens elsewhere (its port was taken), with the same sessions database.
    const moved = await start({ sessions: store });
    expect(moved.origin).not.toBe(old.origin);
    const forSocket = await Client.open(moved);
    const nonce = await forSocket.challenge();
    expect(await forSocket.authRaw({ id, proof: proofFor(secret, nonce, moved.origin) })).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('the newest one') as string },
    });
    const forOld = await Client.open(moved);
    const nonce2 = await forOld.challenge();
    expect(await forOld.authRaw({ id, proof: proofFor(secret, nonce2, old.origin) })).toMatchObject({ ok: false });

    // On its own origin it still signs in.
    const home = await Client.open(old);
    expect(await home.auth({ session })).toEqual({ type: 'auth', ok: true });
    home.ws.close();
  });

  it('keeps a session’s origin in the settings database across a restart', async () => {
    const file = join(mkdtempSync(join(root, 'db-')), 'slotdeck.db');
    const first = Store.open(file);
    opened.push(first);
    const host = await start({ sessions: first });
    const session = await signIn(host);
    expect(first.webSession(parts(session).id, new Date())).toMatchObject({ origin: host.origin });
  });
});

describe('browser mode’s web host: the printed link', () => {
  it('works for 10 minutes; opened later it is refused and Slotdeck prints a new one', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const links: Array<{ url: string; reason: string }> = [];
    const host = await start({ now: () => now, onNewLink: (url, reason) => links.push({ url, reason }) });
    now = new Date(now.getTime() + LINK_LIFETIME_MS);
    const late = await Client.open(host);
    expect(await late.auth({ token: tokenOf(host) })).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('expired') as string },
    });
    expect(links).toEqual([{ url: expect.stringContaining('?token=') as string, reason: 'expired' }]);
    const fresh = new URL(links[0]!.url).searchParams.get('token')!;
    expect(fresh).not.toBe(tokenOf(host));

    // The old one stays dead; the new one works within its own 10 minutes.
    const again = await Client.open(host);
    expect(await again.auth({ token: tokenOf(host) })).toMatchObject({ ok: false });
    now = new Date(now.getTime() + LINK_LIFETIME_MS - 1000);
    const client = await Client.open(host);
    expect(await client.auth({ token: fresh })).toMatchObject({ ok: true, session: expect.any(String) as string });
    client.ws.close();
  });

  it('still works just before its 10 minutes are up', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const host = await start({ now: () => now });
    now = new Date(now.getTime() + LINK_LIFETIME_MS - 1);
    const client = await Client.open(host);
    expect(await client.auth({ token: tokenOf(host) })).toMatchObject({ ok: true });
    client.ws.close();
  });
});

describe('browser mode’s web host: its port', () => {
  it('takes the port it used last time, and another one with a notice when that one is taken', async () => {
    const first = await start();
    const port = first.port;
    await first.close();
    started.splice(0);
    const again = await start({ preferredPort: port });
    expect(again.port).toBe(port);
    expect(again.notice).toBeNull();

    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const taken = (busy.address() as { port: number }).port;
    try {
      const moved = await start({ preferredPort: taken });
      expect(moved.port).not.toBe(taken);
      expect(moved.notice).toContain(`Port ${taken}`);
      // Tabs left on the old port must not trust what answers there, and need the new link.
      expect(moved.notice).toContain(`Close any Slotdeck tab still open on port ${taken}`);
      expect(moved.notice).toContain('open the new link');
      expect((await fetch(`${moved.origin}/`)).status).toBe(200);
    } finally {
      busy.close();
    }
  });
});
