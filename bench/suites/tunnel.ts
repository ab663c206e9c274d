import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { consoleLogger } from '../../src/main/log';
import { Tunnel } from '../../src/main/services/ssh/tunnel';
import type { Slot, TerminalTicket } from '../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../../tests/integration/helpers/agent.js';
import { TestSshd } from '../../tests/integration/helpers/sshd.js';
import { median, round, type Figure, type Suite } from '../suite.js';

const STREAM_MB = 256;
const ECHO_ROUNDS = 300;
const WARMUP = 30;

/** A TCP server on loopback that sends STREAM_MB to whoever connects, as fast as it can. */
async function source(): Promise<{ server: Server; port: number }> {
  const block = Buffer.alloc(1 << 20, 'x');
  const server = createServer((socket) => {
    let sent = 0;
    const pump = (): void => {
      while (sent < STREAM_MB) {
        sent += 1;
        if (!socket.write(block)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A TCP server on loopback that sends back what it receives. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.pipe(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Keystroke round trips over a plain TCP connection to a local port (an echo server behind a forward). */
async function tcpRtts(port: number): Promise<number[]> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  const arrivals = arrivalsOf((listener) => socket.on('data', (data: Buffer) => listener(data.toString('latin1'))));
  const times = await echoRtts((byte) => socket.write(byte), arrivals);
  socket.destroy();
  return times;
}

/** Bytes per second read from a local port until the far end closes. */
function download(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let bytes = 0;
    const socket = connect({ port, host: '127.0.0.1' });
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('end', () => resolve(bytes / ((performance.now() - started) / 1000)));
    socket.on('error', reject);
  });
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`port ${port} never opened`);
    await sleep(20);
  }
}

const SSH_OPTIONS = (sshd: TestSshd): string[] => [
  '-i',
  sshd.clientKeyPath,
  '-p',
  String(sshd.port),
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'BatchMode=yes',
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Round trips of one keystroke and its echo, through whatever `send`/`echoed` talk to. */
async function echoRtts(
  send: (byte: string) => void,
  arrivals: { wait: (byte: string) => Promise<void> },
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < ECHO_ROUNDS; i++) {
    const byte = String.fromCharCode(97 + (i % 26));
    const started = performance.now();
    const arrived = arrivals.wait(byte);
    send(byte);
    await arrived;
    if (i >= WARMUP) times.push(performance.now() - started);
  }
  return times;
}

/** Resolves `wait(byte)` when that byte arrives in a stream of text. */
function arrivalsOf(subscribe: (listener: (text: string) => void) => void): { wait: (byte: string) => Promise<void> } {
  let waiting: { byte: string; resolve: () => void } | null = null;
  subscribe((text) => {
    if (waiting && text.includes(waiting.byte)) {
      const { resolve } = waiting;
      waiting = null;
      resolve();
    }
  });
  return { wait: (byte) => new Promise<void>((resolve) => (waiting = { byte, resolve })) };
}

export const tunnelSuite: Suite = {
  async run(log) {
    const metrics: Record<string, Figure> = {};
    const [sshd, agent, target] = await Promise.all([
      TestSshd.start(),
      AgentProcess.start({ env: { SLOTDECK_AGENT_LOG_LEVEL: 'warn' } }),
      source(),
    ]);
    const children: ChildProcess[] = [];
    const tunnels: Tunnel[] = [];
    const open = async (remotePort: number): Promise<Tunnel> => {
      const pinned = sshd.fingerprint;
      const tunnel = new Tunnel({
        label: 'bench',
        address: '127.0.0.1',
        port: sshd.port,
        user: 'root',
        auth: () => Promise.resolve({ privateKey: sshd.clientKey }),
        pinnedFingerprint: () => pinned,
        remotePort,
        onStatus: () => undefined,
        log: consoleLogger(() => undefined),
      });
      tunnels.push(tunnel);
      await tunnel.start();
      return tunnel;
    };
    try {
      log(`throughput: ${STREAM_MB} MB through an ssh2 local forward vs OpenSSH ssh -L, same sshd`);
      const ours = await open(target.port);
      const opensshPort = await freePort();
      const forward = spawn(
        'ssh',
        ['-N', '-L', `${opensshPort}:127.0.0.1:${target.port}`, ...SSH_OPTIONS(sshd), 'root@127.0.0.1'],
        { stdio: 'ignore' },
      );
      children.push(forward);
      await waitForPort(opensshPort);
      const viaOurs: number[] = [];
      const viaOpenssh: number[] = [];
      for (let i = 0; i < 3; i++) {
        viaOpenssh.push(await download(opensshPort));
        viaOurs.push(await download(ours.localPort));
      }
      const oursMBs = median(viaOurs) / 1e6;
      const opensshMBs = median(viaOpenssh) / 1e6;
      metrics.throughput_ratio_vs_openssh = {
        value: round(oursMBs / opensshMBs, 3),
        unit: 'ratio',
        what: 'MB/s through the panel’s ssh2 local forward ÷ through OpenSSH’s ssh -L, same sshd, median of 3 downloads',
        goal: '>= 0.7',
        baseline: { value: round(opensshMBs, 1), unit: 'MB/s', what: 'OpenSSH ssh -L to the same sshd' },
        ratio: round(oursMBs / opensshMBs, 3),
        detail: { ssh2_mb_per_s: round(oursMBs, 1) },
      };

      log(`echo round trip: ${ECHO_ROUNDS} keystrokes through tunnel + agent + slot terminal vs ssh -tt, same sshd`);
      const agentTunnel = await open(Number(new URL(agent.url).port));
      const base = `http://127.0.0.1:${agentTunnel.localPort}`;
      const headers = { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' };
      const slot = (await (
        await fetch(`${base}/api/v1/slots`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ name: 'echo', command: { preset: 'custom', command: 'cat' } }),
        })
      ).json()) as Slot;
      const ticket = (await (
        await fetch(`${base}/api/v1/slots/${slot.id}/tickets`, { method: 'POST', headers, body: '{}' })
      ).json()) as TerminalTicket;
      const socket = new WebSocket(`ws://127.0.0.1:${agentTunnel.localPort}${ticket.path}`, ['tty']);
      await new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      const slotArrivals = arrivalsOf((listener) =>
        socket.on('message', (data: Buffer) => data[0] === 0x30 && listener(data.subarray(1).toString('latin1'))),
      );
      socket.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 80, rows: 24 })));
      await sleep(500);
      const oursRtt = await echoRtts((byte) => socket.send(Buffer.from(`0${byte}`)), slotArrivals);
      socket.close();

      const ssh = spawn('ssh', ['-tt', ...SSH_OPTIONS(sshd), 'root@127.0.0.1', 'cat'], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      children.push(ssh);
      const sshArrivals = arrivalsOf((listener) =>
        ssh.stdout.on('data', (data: Buffer) => listener(data.toString('latin1'))),
      );
      await sleep(1000);
      const opensshRtt = await echoRtts((byte) => ssh.stdin.write(byte), sshArrivals);

      // Where the time goes: the same loop straight to the agent (no SSH), and a bare TCP echo behind each forward.
      const directTicket = await agent.request<TerminalTicket>('POST', `/api/v1/slots/${slot.id}/tickets`, {
        mode: 'writable',
      });
      const direct = new WebSocket(`${agent.url.replace('http', 'ws')}${directTicket.body.path}`, ['tty']);
      await new Promise((resolve, reject) => {
        direct.once('open', resolve);
        direct.once('error', reject);
      });
      const directArrivals = arrivalsOf((listener) =>
        direct.on('message', (data: Buffer) => data[0] === 0x30 && listener(data.subarray(1).toString('latin1'))),
      );
      direct.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 80, rows: 24 })));
      await sleep(500);
      const directRtt = await echoRtts((byte) => direct.send(Buffer.from(`0${byte}`)), directArrivals);
      direct.close();
      const echo = await echoServer();
      const echoTunnel = await open(echo.port);
      const echoOpensshPort = await freePort();
      const echoForward = spawn(
        'ssh',
        ['-N', '-L', `${echoOpensshPort}:127.0.0.1:${echo.port}`, ...SSH_OPTIONS(sshd), 'root@127.0.0.1'],
        { stdio: 'ignore' },
      );
      children.push(echoForward);
      await waitForPort(echoOpensshPort);
      const ssh2TcpRtt = await tcpRtts(echoTunnel.localPort);
      const opensshTcpRtt = await tcpRtts(echoOpensshPort);
      echo.server.close();

      const oursMs = median(oursRtt);
      const opensshMs = median(opensshRtt);
      metrics.echo_rtt_ratio_vs_openssh = {
        value: round(oursMs / opensshMs, 3),
        unit: 'ratio',
        what: 'p50 keystroke → echo through tunnel, agent and slot terminal ÷ through ssh -tt to the same sshd',
        goal: '<= 1.2',
        baseline: { value: round(opensshMs, 3), unit: 'ms', what: 'ssh -tt to the same sshd, cat echoing' },
        ratio: round(oursMs / opensshMs, 3),
        detail: {
          slotdeck_ms_p50: round(oursMs, 3),
          agent_without_ssh_ms_p50: round(median(directRtt), 3),
          tcp_echo_via_ssh2_forward_ms_p50: round(median(ssh2TcpRtt), 3),
          tcp_echo_via_openssh_forward_ms_p50: round(median(opensshTcpRtt), 3),
          rounds: oursRtt.length,
        },
      };

      log('recovery: sshd back → tunnel usable again (three outages of 1 s)');
      const recoveries: number[] = [];
      for (let i = 0; i < 3; i++) {
        sshd.kill();
        await sleep(1000);
        await sshd.restart();
        const back = performance.now();
        for (;;) {
          const ok = await fetch(`${base}/health`, { signal: AbortSignal.timeout(500) }).then(
            (r) => r.ok,
            () => false,
          );
          if (ok) break;
          if (performance.now() - back > 30_000) throw new Error('the tunnel did not recover within 30 s');
          await sleep(10);
        }
        recoveries.push(performance.now() - back);
      }
      metrics.recovery_ms = {
        value: round(median(recoveries), 0),
        unit: 'ms',
        what: 'sshd back after a 1 s outage → the tunnel answers /health again (median of 3 outages)',
        goal: '<= 2000',
        detail: { worst_ms: round(Math.max(...recoveries), 0), outages: recoveries.length },
      };
    } finally {
      for (const tunnel of tunnels) tunnel.stop({ silent: true });
      for (const child of children) child.kill();
      target.server.close();
      sshd.stop();
      await agent.destroy();
    }
    return metrics;
  },
};
