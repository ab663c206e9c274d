import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { LAUNCHER_PATH, SlotPaths } from '../../../../remote-agent/src/modules/slots/paths.js';
import { TicketStore, type TicketGrant } from '../../../../remote-agent/src/modules/terminal/tickets.js';
import { TtydBridge } from '../../../../remote-agent/src/modules/terminal/ttyd.js';

const FAKE_TTYD = join(__dirname, '../../../integration/fixtures/fake-ttyd.mjs');
const SLOT = 'bridge0001';

let dir: string;
let ttyd: ChildProcess | null = null;
let server: WebSocketServer;
let bridge: TtydBridge;
let tickets: TicketStore;
let paths: SlotPaths;

/** Runs the stand-in ttyd for the slot with `script` (sh) as each connection's program. */
async function startTtyd(script: string): Promise<void> {
  const spec = bridge.processSpec({
    id: SLOT,
    name: 'demo',
    argv: ['sh'],
    workDir: dir,
    cols: 80,
    rows: 24,
    ownerId: null,
    memoryLimitMb: null,
  });
  const ttydArgs = spec.args.slice(0, spec.args.indexOf('--'));
  ttyd = spawn(process.execPath, [FAKE_TTYD, ...ttydArgs, '--', '/bin/sh', '-c', script], {
    cwd: dir,
    stdio: 'ignore',
  });
  await expect.poll(() => existsSync(paths.ttydSocket(SLOT)), { timeout: 10_000 }).toBe(true);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-bridge-'));
  paths = new SlotPaths(join(dir, 'data'), join(dir, 'run'));
  mkdirSync(paths.runDir, { recursive: true });
  mkdirSync(join(paths.dataDir, 'slots', SLOT), { recursive: true });
  mkdirSync(paths.slotDir(SLOT), { recursive: true });
  tickets = new TicketStore();
  bridge = new TtydBridge({
    paths,
    launcher: LAUNCHER_PATH,
    tools: { ttyd: '/usr/local/bin/ttyd', tmux: '/usr/bin/tmux' },
    tickets,
    opening: { timeoutMs: 2000, allowedOrigins: [] },
    logger: createLogger('silent'),
    scrollbackLines: 1000,
    heartbeatMs: 200,
  });
  bridge.open({ id: SLOT, cols: 100, rows: 40 });
  server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'tty' });
  server.on('connection', (socket, request) => {
    const ticket = new URL(request.url ?? '/', 'http://x').searchParams.get('ticket') ?? '';
    const grant = tickets.redeem(ticket);
    bridge.accept(socket, SLOT, { grant, origin: undefined, audience: grant?.audience ?? 'public' });
  });
  await new Promise((resolve) => server.once('listening', resolve));
});

afterEach(async () => {
  await bridge.release(SLOT);
  ttyd?.kill();
  ttyd = null;
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function connect(
  grant: Partial<TicketGrant> = {},
  opening: Record<string, unknown> = { AuthToken: '', columns: 90, rows: 30 },
) {
  const { ticket } = tickets.issue(
    { slotId: SLOT, mode: 'writable', origin: null, audience: 'public', lease: 'share:sh_1', ...grant },
    30_000,
  );
  const port = (server.address() as AddressInfo).port;
  const socket = new WebSocket(`ws://127.0.0.1:${port}/?ticket=${ticket}`, ['tty']);
  let output = '';
  socket.on('message', (data: Buffer) => {
    if (data[0] === 0x30) output += data.subarray(1).toString('utf8');
  });
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  const opened = new Promise<void>((resolve) =>
    socket.once('open', () => {
      socket.send(Buffer.from(JSON.stringify(opening)));
      resolve();
    }),
  );
  return { socket, closed, opened, output: () => output };
}

describe('the ttyd bridge (a stand-in ttyd: tests/integration/fixtures/fake-ttyd.mjs, its protocol, not ttyd itself)', () => {
  it('passes nothing on from a viewer once its lease is ended, even when it never answers the close frame', async () => {
    const typed = join(dir, 'typed.txt');
    // One program for every connection, as tmux gives them: they all append to the same file.
    await startTtyd(`stty -echo; echo ready; cat >> ${typed}`);
    const viewer = connect();
    await viewer.opened;
    await expect.poll(() => viewer.output(), { timeout: 10_000 }).toContain('ready');
    viewer.socket.send(Buffer.from('0before\n'));
    await expect.poll(() => (existsSync(typed) ? readFileSync(typed, 'utf8') : '')).toContain('before');
    // The viewer stops reading (so it never sees the close frame) but keeps typing.
    (viewer.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    expect(bridge.disconnectLease('share:sh_1', 'this share link was revoked')).toBe(1);
    for (let i = 0; i < 5; i += 1) viewer.socket.send(Buffer.from(`0after${i}\n`));
    // A second writer's input arrives afterwards: the file shows what reached the program by then.
    const other = connect({ lease: 'session:s1' });
    await other.opened;
    await other.opened;
    await new Promise((resolve) => setTimeout(resolve, 300));
    other.socket.send(Buffer.from('0marker\n'));
    await expect.poll(() => readFileSync(typed, 'utf8'), { timeout: 10_000 }).toContain('marker');
    expect(readFileSync(typed, 'utf8')).not.toContain('after');
    expect(bridge.leaseViewers('share:sh_1')).toBe(0);
    other.socket.close();
  });

  it("gives a read-only viewer's terminal the writer's size, not its own or 80x24", async () => {
    await startTtyd('stty size; sleep 30');
    const writer = connect({}, { AuthToken: '', columns: 90, rows: 30 });
    await expect.poll(() => writer.output(), { timeout: 10_000 }).toContain('30 90');
    const reader = connect({ mode: 'read-only', lease: 'share:sh_2' }, { AuthToken: '', columns: 200, rows: 60 });
    await expect.poll(() => reader.output(), { timeout: 10_000 }).toMatch(/\d+ \d+/);
    expect(reader.output()).toContain('30 90');
    writer.socket.close();
    reader.socket.close();
  });

  it('cuts off a viewer that stops answering pings, freeing its place under the lease', async () => {
    await startTtyd('echo ready; sleep 30');
    const viewer = connect();
    await expect.poll(() => viewer.output(), { timeout: 10_000 }).toContain('ready');
    expect(bridge.leaseViewers('share:sh_1')).toBe(1);
    // A vanished network: nothing read, no pong sent.
    (viewer.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    await expect.poll(() => bridge.leaseViewers('share:sh_1'), { timeout: 10_000 }).toBe(0);
  });

  it('closes (1009) a client that sends more than 64 KiB before ttyd answers', async () => {
    // No ttyd yet: the bridge waits for it, holding what the client sends.
    const viewer = connect();
    await viewer.opened;
    for (let i = 0; i < 20; i += 1) viewer.socket.send(Buffer.concat([Buffer.from('0'), Buffer.alloc(8 * 1024, 97)]));
    expect(await viewer.closed).toBe(1009);
  });

  it('keeps places for the admin and owner: public viewers take at most 56 of 64', async () => {
    await startTtyd('sleep 30');
    const viewers = [];
    for (let i = 0; i < 56; i += 1) {
      const viewer = connect({ lease: `share:v${i}` });
      await viewer.opened;
      viewers.push(viewer);
    }
    await expect.poll(() => bridge.viewers(SLOT).writable, { timeout: 20_000 }).toBe(56);
    const refused = connect({ lease: 'share:extra' });
    expect(await refused.closed).toBe(1013);
    const admin = connect({ audience: 'admin', lease: undefined });
    await admin.opened;
    await expect.poll(() => bridge.viewers(SLOT).writable).toBe(57);
    for (const viewer of [...viewers, admin]) viewer.socket.close();
  }, 60_000);
});
