/**
 * Output bursts against a real agent (issue 13, §5): several slots each print a couple of megabytes at once while
 * the gateway serves a steady request rate and /health is polled. Reports the gateway's p99 and /health's worst
 * latency before and during the bursts, and the agent's RSS before, at its peak and a while after.
 *
 *   npx tsx bench/scripts/output-bursts.ts [--cli <path to dist/cli.js>] [--slots 5] [--mb 2] [--rate 20]
 *
 * `measureOutputBursts` is what the reliability suite calls. The agent is the built one (remote-agent/dist) unless
 * `cli` names another build (to compare before and after a change).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { TerminalTicket } from '../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../../tests/integration/helpers/agent.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic } from '../../tests/integration/fixtures/fake-anthropic.js';
import { percentile, round } from '../suite.js';

export interface OutputBurstOptions {
  /** The agent's CLI to run (default: remote-agent/dist/cli.js). */
  cli?: string;
  slots?: number;
  /** Bytes each slot prints per burst, before base64 (which adds a third). */
  megabytesPerSlot?: number;
  /** Gateway requests a second, sent at a steady pace whatever the answers take. */
  requestsPerSecond?: number;
  /** Quiet time measured before the bursts, and how long the bursts' window is watched. */
  baselineMs?: number;
  burstWindowMs?: number;
  /** How long after the bursts the agent's memory is read again (it should come back down). */
  settleMs?: number;
  log?: (message: string) => void;
}

export interface OutputBurstResult {
  gatewayP50MsBaseline: number;
  gatewayP99MsBaseline: number;
  gatewayP99MsDuringBursts: number;
  gatewayMaxMsDuringBursts: number;
  gatewayErrors: number;
  healthMaxMsBaseline: number;
  healthMaxMsDuringBursts: number;
  rssMbBaseline: number;
  rssMbPeak: number;
  rssMbAfter: number;
  /** From the first burst's start until every slot printed its end mark. */
  burstSeconds: number;
  requests: number;
}

const END_MARK = 'BURST-END';
const READY_MARK = 'BURST-READY';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

interface Viewer {
  socket: WebSocket;
  seen: (mark: string) => boolean;
  forget: () => void;
  send: (text: string) => void;
}

async function openViewer(agent: AgentProcess, slotId: string): Promise<Viewer> {
  const ticket = await agent.request<TerminalTicket>('POST', `/api/v1/slots/${slotId}/tickets`, { mode: 'writable' });
  if (ticket.status !== 201) throw new Error(`ticket: ${JSON.stringify(ticket.body)}`);
  const socket = new WebSocket(`${agent.url.replace('http', 'ws')}${ticket.body.path}`, ['tty']);
  // Only the end of the output is kept: enough to find the marks in.
  let tail = '';
  socket.on('message', (data: Buffer) => {
    if (data[0] !== 0x30) return;
    tail = (tail + data.subarray(Math.max(1, data.length - 256)).toString('latin1')).slice(-512);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 120, rows: 40 })));
  return {
    socket,
    seen: (mark) => tail.includes(mark),
    forget: () => (tail = ''),
    send: (text) => socket.send(Buffer.from(`0${text}`)),
  };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export async function measureOutputBursts(options: OutputBurstOptions = {}): Promise<OutputBurstResult> {
  const log = options.log ?? (() => undefined);
  const slotCount = options.slots ?? 5;
  const bytesPerSlot = Math.round((options.megabytesPerSlot ?? 2) * 1_000_000);
  const rate = options.requestsPerSecond ?? 20;
  const baselineMs = options.baselineMs ?? 5000;
  const burstWindowMs = options.burstWindowMs ?? 15_000;
  const settleMs = options.settleMs ?? 20_000;
  const upstream = await startFakeAnthropic();
  const agent = await AgentProcess.start({
    env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url, SLOTDECK_AGENT_LOG_LEVEL: 'warn' },
    ...(options.cli ? { cli: options.cli } : {}),
  });
  const viewers: Viewer[] = [];
  const slotIds: string[] = [];
  try {
    await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
    const user = await agent.request<{ id: string }>('POST', '/api/v1/users', { username: 'burst' });
    const key = await agent.request<{ secret: string }>('POST', `/api/v1/users/${user.body.id}/keys`, {
      name: 'burst',
      rateLimit: { requestsPerMinute: 100_000 },
    });
    const secret = key.body.secret;
    for (let i = 0; i < slotCount; i++) {
      const slot = await agent.createSlot({
        name: `burst${i}`,
        command: {
          preset: 'custom',
          command: '/bin/sh',
          args: [
            '-c',
            `stty -echo; echo ${READY_MARK}; while read -r go; do head -c ${bytesPerSlot} /dev/urandom | base64; echo ${END_MARK}; done`,
          ],
        },
      });
      slotIds.push(slot.id);
      const viewer = await openViewer(agent, slot.id);
      viewers.push(viewer);
      await until(() => viewer.seen(READY_MARK), 15_000, `slot ${i} to start`);
    }
    const pid = agent.pid!;
    log(`agent ${pid} up with ${slotCount} slots; ${rate} gateway requests/s`);

    const latencies: Array<{ at: number; ms: number }> = [];
    const health: Array<{ at: number; ms: number }> = [];
    const rss: Array<{ at: number; mb: number }> = [];
    let errors = 0;
    let stop = false;
    const body = JSON.stringify({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const pending = new Set<Promise<void>>();
    const load = (async () => {
      const interval = 1000 / rate;
      let next = performance.now();
      while (!stop) {
        const started = performance.now();
        const request = fetch(`${agent.gatewayUrl}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': secret, 'content-type': 'application/json' },
          body,
        })
          .then(async (response) => {
            await response.arrayBuffer();
            if (response.status !== 200) errors += 1;
          })
          .catch(() => {
            errors += 1;
          })
          .finally(() => {
            latencies.push({ at: started, ms: performance.now() - started });
            pending.delete(request);
          });
        pending.add(request);
        next += interval;
        await sleep(Math.max(0, next - performance.now()));
      }
    })();
    const probe = (async () => {
      while (!stop) {
        const started = performance.now();
        await fetch(`${agent.url}/health`)
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
        health.push({ at: started, ms: performance.now() - started });
        rss.push({ at: started, mb: rssMb(pid) });
        await sleep(100);
      }
    })();

    await sleep(baselineMs);
    const burstAt = performance.now();
    log('bursts start');
    for (const viewer of viewers) {
      viewer.forget();
      viewer.send('go\r');
    }
    // Consoles opened while the output flows: each needs the screen as it is (a replay of the journal so far).
    await sleep(500);
    for (const viewer of [...viewers]) {
      const slotId = slotIds[viewers.indexOf(viewer)]!;
      viewers.push(await openViewer(agent, slotId));
    }
    await until(() => viewers.slice(0, slotCount).every((v) => v.seen(END_MARK)), 120_000, 'every burst to end');
    const burstSeconds = (performance.now() - burstAt) / 1000;
    log(`bursts done in ${round(burstSeconds)} s`);
    await sleep(Math.max(0, burstWindowMs - (performance.now() - burstAt)));
    const windowEnd = performance.now();
    // The viewers go (as consoles close), and the agent is left alone to give memory back.
    for (const viewer of viewers) viewer.socket.close();
    await sleep(settleMs);
    stop = true;
    await Promise.all([load, probe]);
    await Promise.allSettled([...pending]);

    const before = (sample: { at: number }): boolean => sample.at < burstAt;
    const during = (sample: { at: number }): boolean => sample.at >= burstAt && sample.at < windowEnd;
    const p99 = (samples: Array<{ ms: number }>): number =>
      round(
        percentile(
          samples.map((s) => s.ms),
          99,
        ),
        1,
      );
    const max = (values: number[]): number => round(Math.max(...values), 1);
    const rssBefore = rss.filter(before).map((s) => s.mb);
    return {
      gatewayP50MsBaseline: round(
        percentile(
          latencies.filter(before).map((s) => s.ms),
          50,
        ),
        1,
      ),
      gatewayP99MsBaseline: p99(latencies.filter(before)),
      gatewayP99MsDuringBursts: p99(latencies.filter(during)),
      gatewayMaxMsDuringBursts: max(latencies.filter(during).map((s) => s.ms)),
      gatewayErrors: errors,
      healthMaxMsBaseline: max(health.filter(before).map((s) => s.ms)),
      healthMaxMsDuringBursts: max(health.filter(during).map((s) => s.ms)),
      rssMbBaseline: round(rssBefore[rssBefore.length - 1] ?? 0, 0),
      rssMbPeak: round(Math.max(...rss.map((s) => s.mb)), 0),
      rssMbAfter: round(rss[rss.length - 1]?.mb ?? 0, 0),
      burstSeconds: round(burstSeconds, 2),
      requests: latencies.length,
    };
  } finally {
    for (const viewer of viewers) viewer.socket.terminate();
    await agent.destroy();
    await upstream.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const arg = (name: string): string | undefined => {
    const index = process.argv.indexOf(`--${name}`);
    return index > 0 ? process.argv[index + 1] : undefined;
  };
  const number = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const options: OutputBurstOptions = { log: (message) => console.error(message) };
  if (arg('cli')) options.cli = arg('cli')!;
  if (number('slots') !== undefined) options.slots = number('slots')!;
  if (number('mb') !== undefined) options.megabytesPerSlot = number('mb')!;
  if (number('rate') !== undefined) options.requestsPerSecond = number('rate')!;
  console.log(JSON.stringify(await measureOutputBursts(options), null, 2));
}
