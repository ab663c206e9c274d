import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Dispatcher, type Handlers } from '../../src/main/ipc/dispatch';
import { EventBus } from '../../src/main/ipc/events';
import { startWebHost, type WebHost } from '../../src/main/web-host';

let host: WebHost;
let dir: string;
const events = new EventBus();
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-web-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Slotdeck</title>');
  const handlers = {
    'hosts:list': () => Promise.resolve({ hosts: [] }),
    'hosts:connect': (_input: unknown, { signal }: { signal: AbortSignal }) =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('x')))),
  } as unknown as Handlers;
  host = await startWebHost({ rendererDir: dir, dispatcher: new Dispatcher(handlers, silent), events, log: silent });
});

afterAll(async () => {
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Uses the one-time link once and returns the session cookie it gave. */
let cookie = '';
async function session(): Promise<string> {
  if (cookie) return cookie;
  const response = await fetch(host.url, { redirect: 'manual' });
  expect(response.status).toBe(303);
  expect(response.headers.get('location')).toBe('/');
  const setCookie = response.headers.get('set-cookie')!;
  expect(setCookie).toMatch(/HttpOnly/);
  expect(setCookie).toMatch(/SameSite=Strict/);
  cookie = setCookie.split(';')[0]!;
  return cookie;
}

function socket(headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${host.origin.replace('http', 'ws')}/ipc`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

describe('browser mode’s web host', () => {
  it('serves the page only to the session of the one-time link, with its content policy', async () => {
    expect((await fetch(`${host.origin}/`)).status).toBe(401);
    const page = await fetch(`${host.origin}/`, { headers: { cookie: await session() } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).toContain('Slotdeck');
    // The link works once.
    expect((await fetch(host.url, { redirect: 'manual' })).status).toBe(403);
  });

  it('refuses other Host names (DNS rebinding) and paths outside the app', async () => {
    await session();
    // fetch will not send another Host header; a raw request does, as a rebound DNS name would.
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(host.origin);
      const req = request(
        { host: url.hostname, port: url.port, path: '/', headers: { host: 'evil.example', cookie: cookie } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
    const escape = await fetch(`${host.origin}/..%2f..%2fetc%2fpasswd`, { headers: { cookie: await session() } });
    expect(escape.status).toBe(404);
  });

  it('opens the IPC socket only with the session and the exact origin, and answers calls over it', async () => {
    await expect(socket({ origin: host.origin })).rejects.toThrow(/403/);
    await expect(socket({ cookie: await session(), origin: 'http://127.0.0.1:1' })).rejects.toThrow(/403/);
    const ws = await socket({ cookie: await session(), origin: host.origin });
    const reply = new Promise<unknown>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()))),
    );
    ws.send(JSON.stringify({ type: 'invoke', id: 'a', channel: 'hosts:list', input: {} }));
    expect(await reply).toEqual({ type: 'result', id: 'a', result: { ok: true, data: { hosts: [] } } });

    const pushed = new Promise<unknown>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()))),
    );
    events.emit('hosts:changed', {});
    expect(await pushed).toEqual({ type: 'event', channel: 'hosts:changed', payload: {} });

    const cancelled = new Promise<unknown>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()))),
    );
    ws.send(JSON.stringify({ type: 'invoke', id: 'b', channel: 'hosts:connect', input: { id: 'h-1' } }));
    ws.send(JSON.stringify({ type: 'cancel', id: 'b' }));
    expect(await cancelled).toMatchObject({ id: 'b', result: { ok: false, error: { code: 'IPC_CANCELLED' } } });

    const unknown = new Promise<unknown>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()))),
    );
    ws.send(JSON.stringify({ type: 'invoke', id: 'c', channel: 'shell:exec', input: {} }));
    expect(await unknown).toMatchObject({ id: 'c', result: { ok: false, error: { code: 'IPC_INPUT_INVALID' } } });
    ws.close();
  });
});
