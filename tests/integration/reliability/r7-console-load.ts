/**
 * R7: many consoles each receiving output, plus a steady gateway request rate, for a while; some consoles print
 * bursts of output (several MB at once, as bench/scripts/output-bursts.ts does) every few seconds. Counts errors
 * (a gateway request without a complete answer, a console that closed, stalled or lost burst bytes), samples the
 * agent's RSS every second, and splits gateway latency into requests sent during a burst and outside one.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import WebSocket from 'ws';
import type { Slot, TerminalMode, TerminalTicket } from '../../../remote-agent/src/contract/index.js';
import { commandLineOf, readProcessTable, residentBytes } from '../../../remote-agent/src/util/procfs.js';
import { AgentProcess } from '../helpers/agent.js';
import { gatewayUser, JSON_BODY, send } from './gateway-client.js';

export interface ConsoleLoadOptions {
  upstreamUrl: string;
  /** Slots printing a numbered line twice a second, and how many consoles watch each. */
  tickerSlots: number;
  viewersPerTicker: number;
  /** Slots that print `burstBytes` at once when told, each with one console (counted among the consoles). */
  burstSlots: number;
  burstBytes: number;
  burstEveryS: number;
  /** Bursts printed even when they take longer than the run's time. */
  minBursts?: number;
  requestsPerSecond: number;
  /**
   * Requests waiting for their answer at most; a request due beyond that is not sent but counted (gatewayNotSent):
   * an agent that cannot keep up shows as a lower rate instead of a backlog that grows for minutes.
   */
  maxOutstanding?: number;
  warmupS: number;
  seconds: number;
  log?: (message: string) => void;
}

export interface ConsoleLoadResult {
  consoles: number;
  gatewayRequests: number;
  gatewayErrors: number;
  /** Requests due while maxOutstanding were waiting: not sent. */
  gatewayNotSent: number;
  /** CPU the agent and this process (the load generator) used over the measured part, in % of one core. */
  agentCpuPct: number;
  loadGeneratorCpuPct: number;
  /** Requests answered a second over the measured part of the run. */
  gatewayRateMeasured: number;
  gatewayErrorKinds: Record<string, number>;
  consoleErrors: string[];
  gatewayP99MsDuringBursts: number;
  gatewayP99MsWithoutBursts: number;
  gatewayP50MsWithoutBursts: number;
  requestsDuringBursts: number;
  healthMaxMsDuringBursts: number;
  healthMaxMsWithoutBursts: number;
  bursts: number;
  burstSecondsP50: number;
  /** The agent's RSS (MB) once a second from the end of the warm-up to the end of the run. */
  rssMb: number[];
  rssMbAfterWarmup: number;
  rssMbEnd: number;
  rssMbPeak: number;
  /** What the RSS holds at the end, from the agent's own process metrics: V8's heap (used, total) and Buffers. */
  heapUsedMbEnd: number;
  heapTotalMbEnd: number;
  externalMbEnd: number;
  /** Bytes of output the consoles received in all. */
  consoleBytes: number;
}

/** Gateway connections; by default no more requests wait than there are connections (none queue in the client). */
const CONNECTIONS = 64;
const READY = 'R7-READY';
const END = 'R7-BURST-END';

interface Viewer {
  socket: WebSocket;
  bytes: number;
  tail: string;
  closed: boolean;
}

async function openViewer(agent: AgentProcess, slotId: string, mode: TerminalMode): Promise<Viewer> {
  const ticket = await agent.request<TerminalTicket>('POST', `/api/v1/slots/${slotId}/tickets`, { mode });
  if (ticket.status !== 201) throw new Error(`ticket: ${ticket.status} ${JSON.stringify(ticket.body)}`);
  const socket = new WebSocket(`${agent.url.replace('http', 'ws')}${ticket.body.path}`, ['tty']);
  const viewer: Viewer = { socket, bytes: 0, tail: '', closed: false };
  socket.on('message', (data: Buffer) => {
    if (data[0] !== 0x30) return;
    viewer.bytes += data.length - 1;
    // Only the end is kept (a burst is megabytes): enough to find the marks and the last tick in.
    viewer.tail = (viewer.tail + data.subarray(Math.max(1, data.length - 512)).toString('latin1')).slice(-1024);
  });
  socket.on('close', () => (viewer.closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 120, rows: 40 })));
  return viewer;
}

const lastTick = (viewer: Viewer): number => {
  const ticks = [...viewer.tail.matchAll(/r7-tick (\d+)/g)];
  return ticks.length > 0 ? Number(ticks[ticks.length - 1]![1]) : -1;
};

/**
 * CPU seconds a process has used (user + system), with what its children that ended used (cutime, cstime): the
 * agent's screen renderers, which do the agent's work in processes of their own, from /proc.
 */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}

/** The agent's own view of its memory (prom-client's process metrics on the admin listener), in MB. */
async function heapMb(agent: AgentProcess): Promise<{ used: number; total: number; external: number }> {
  const response = await fetch(`${agent.url}/metrics`, { headers: { authorization: `Bearer ${agent.token}` } });
  const text = await response.text();
  const value = (name: string): number => {
    const line = new RegExp(`^\\w*${name} (\\S+)$`, 'm').exec(text);
    return line ? Math.round((Number(line[1]) / 2 ** 20) * 10) / 10 : Number.NaN;
  };
  return {
    used: value('nodejs_heap_size_used_bytes'),
    total: value('nodejs_heap_size_total_bytes'),
    external: value('nodejs_external_memory_bytes'),
  };
}

/** The agent's memory: its process's RSS plus its screen renderer's while one runs (it renders for the agent). */
function rssMb(pid: number): number {
  let bytes = residentBytes(pid);
  for (const info of readProcessTable().values())
    if (info.ppid === pid && commandLineOf(info.pid)?.some((arg) => arg.includes('screen-render-process')))
      bytes += residentBytes(info.pid);
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const percentileOf = (values: number[], p: number): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};

/** Runs `work` on up to `limit` items at once. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

export async function runConsoleLoad(options: ConsoleLoadOptions): Promise<ConsoleLoadResult> {
  const log = options.log ?? (() => undefined);
  const work = mkdtempSync(join(tmpdir(), 'sd-r7-'));
  const agent = await AgentProcess.start({
    env: { SLOTDECK_AGENT_UPSTREAM_URL: options.upstreamUrl, SLOTDECK_AGENT_LOG_LEVEL: 'warn' },
  });
  const viewers: Viewer[] = [];
  const pool = new Pool(agent.gatewayUrl, { connections: CONNECTIONS });
  try {
    const { secret } = await gatewayUser(agent, 'r7-load');
    // The burst: base64 of random bytes (as output-bursts.ts prints), written to a file once so the slot's
    // program costs nothing but the cat.
    const burstFile = join(work, 'burst.txt');
    const burstText = `${randomBytes(Math.ceil((options.burstBytes * 3) / 4))
      .toString('base64')
      .match(/.{1,76}/g)!
      .join('\n')}\n`;
    writeFileSync(burstFile, burstText);
    // What a console receives per burst: each \n made \r\n by the terminal, then the end mark's line.
    const burstBytesSeen = burstText.length + burstText.split('\n').length - 1 + END.length + 2;
    const tickers: Slot[] = [];
    const bursters: Slot[] = [];
    log(`creating ${options.tickerSlots} ticker slots and ${options.burstSlots} burst slots`);
    await eachLimited(
      Array.from({ length: options.tickerSlots + options.burstSlots }, (_, i) => i),
      6,
      async (i) => {
        const ticker = i < options.tickerSlots;
        const slot = await agent.createSlot({
          name: ticker ? `r7-ticker-${i}` : `r7-burst-${i}`,
          command: {
            preset: 'custom',
            command: '/bin/sh',
            args: [
              '-c',
              ticker
                ? `i=0; while :; do i=$((i+1)); echo "r7-tick $i ................................................"; sleep 0.5; done`
                : `stty -echo; echo ${READY}; while read -r go; do cat ${burstFile}; echo ${END}; done`,
            ],
          },
        });
        (ticker ? tickers : bursters).push(slot);
      },
    );
    const tickerViewers: Viewer[] = [];
    const burstViewers: Viewer[] = [];
    await eachLimited(
      tickers.flatMap((slot) => Array.from({ length: options.viewersPerTicker }, () => slot)),
      8,
      async (slot) => {
        const viewer = await openViewer(agent, slot.id, 'read-only');
        viewers.push(viewer);
        tickerViewers.push(viewer);
      },
    );
    for (const slot of bursters) {
      const viewer = await openViewer(agent, slot.id, 'writable');
      viewers.push(viewer);
      burstViewers.push(viewer);
    }
    await until(() => tickerViewers.every((v) => lastTick(v) >= 0), 30_000, 'every ticker console to show a tick');
    await until(() => burstViewers.every((v) => v.tail.includes(READY)), 30_000, 'every burst slot to start');
    const consoles = viewers.length;
    const pid = agent.pid!;
    log(`${consoles} consoles open; ${options.requestsPerSecond} gateway requests/s`);

    const latencies: Array<{ at: number; ms: number }> = [];
    const health: Array<{ at: number; ms: number }> = [];
    const errorKinds: Record<string, number> = {};
    let gatewayErrors = 0;
    let gatewayNotSent = 0;
    const maxOutstanding = options.maxOutstanding ?? CONNECTIONS;
    let stop = false;
    const inFlight = new Set<Promise<void>>();
    // Open loop: requests leave at a steady pace whatever the answers take, as independent clients would send them.
    const load = (async () => {
      const perTick = options.requestsPerSecond / 100;
      let due = performance.now();
      let owed = 0;
      while (!stop) {
        owed += perTick;
        for (; owed >= 1; owed -= 1) {
          if (inFlight.size >= maxOutstanding) {
            gatewayNotSent += 1;
            continue;
          }
          const at = performance.now();
          const request = send(pool, secret, JSON_BODY).then((answer) => {
            latencies.push({ at, ms: answer.ms });
            if (!answer.complete) {
              gatewayErrors += 1;
              errorKinds[answer.error ?? 'unknown'] = (errorKinds[answer.error ?? 'unknown'] ?? 0) + 1;
            }
            inFlight.delete(request);
          });
          inFlight.add(request);
        }
        due += 10;
        await sleep(Math.max(0, due - performance.now()));
      }
    })();
    const rss: Array<{ at: number; mb: number }> = [];
    const probe = (async () => {
      let due = performance.now();
      while (!stop) {
        const at = performance.now();
        await fetch(`${agent.url}/health`)
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
        health.push({ at, ms: performance.now() - at });
        rss.push({ at, mb: rssMb(pid) });
        due += 1000;
        await sleep(Math.max(0, due - performance.now()));
      }
    })();

    await sleep(options.warmupS * 1000);
    const measuredFrom = performance.now();
    const rssAfterWarmup = rssMb(pid);
    const agentCpuFrom = cpuSeconds(pid);
    const ownCpuFrom = process.cpuUsage();
    const heapAfterWarmup = await heapMb(agent);
    log(
      `warm-up done: agent RSS ${rssAfterWarmup} MB (heap ${heapAfterWarmup.used} MB used of ${heapAfterWarmup.total}; external ${heapAfterWarmup.external} MB); ${options.seconds} s of load with bursts every ${options.burstEveryS} s`,
    );
    const endAt = measuredFrom + options.seconds * 1000;
    const consoleErrors: string[] = [];
    const burstWindows: Array<{ from: number; to: number }> = [];
    const ticksAtStart = tickerViewers.map(lastTick);
    // At least minBursts, however long they take on a busy machine; more while the run's time allows.
    while (
      burstWindows.length < (options.minBursts ?? 0) ||
      performance.now() + options.burstEveryS * 1000 <= endAt + 1
    ) {
      await sleep(options.burstEveryS * 500);
      const from = performance.now();
      const before = burstViewers.map((v) => v.bytes);
      for (const viewer of burstViewers) {
        viewer.tail = '';
        viewer.socket.send(Buffer.from('0go\r'));
      }
      await until(() => burstViewers.every((v) => v.tail.includes(END) || v.closed), 60_000, 'every burst to end');
      burstWindows.push({ from, to: performance.now() });
      burstViewers.forEach((viewer, i) => {
        const got = viewer.bytes - before[i]!;
        if (got !== burstBytesSeen)
          consoleErrors.push(`burst console ${i}: ${got} bytes where ${burstBytesSeen} were printed`);
      });
      await sleep(Math.max(0, from + options.burstEveryS * 500 - performance.now()));
    }
    await sleep(Math.max(0, endAt - performance.now()));
    stop = true;
    const measuredS = (performance.now() - measuredFrom) / 1000;
    const agentCpuPct = ((cpuSeconds(pid) - agentCpuFrom) / measuredS) * 100;
    const ownCpu = process.cpuUsage(ownCpuFrom);
    const ownCpuPct = ((ownCpu.user + ownCpu.system) / 1e6 / measuredS) * 100;
    await Promise.all([load, probe]);
    await Promise.all([...inFlight]);
    const rssEnd = rssMb(pid);
    const heapEnd = await heapMb(agent);
    log(
      `end: agent RSS ${rssEnd} MB; heap ${heapEnd.used} MB used of ${heapEnd.total}; external ${heapEnd.external} MB`,
    );

    // A console that kept up shows a tick from the last two seconds (a line every 0.5 s).
    const ticksAtEnd = tickerViewers.map(lastTick);
    await sleep(2500);
    tickerViewers.forEach((viewer, i) => {
      if (viewer.closed) consoleErrors.push(`ticker console ${i} closed`);
      else if (!(lastTick(viewer) > ticksAtEnd[i]!) || !(ticksAtEnd[i]! > ticksAtStart[i]!))
        consoleErrors.push(`ticker console ${i} stalled at tick ${lastTick(viewer)}`);
    });
    burstViewers.forEach((viewer, i) => viewer.closed && consoleErrors.push(`burst console ${i} closed`));

    const inBurst = (at: number): boolean => burstWindows.some((w) => at >= w.from && at < w.to);
    const measured = latencies.filter((s) => s.at >= measuredFrom);
    const during = measured.filter((s) => inBurst(s.at)).map((s) => s.ms);
    const outside = measured.filter((s) => !inBurst(s.at)).map((s) => s.ms);
    const healthMeasured = health.filter((s) => s.at >= measuredFrom);
    const round1 = (value: number): number => Math.round(value * 10) / 10;
    const curve = rss.filter((s) => s.at >= measuredFrom).map((s) => s.mb);
    return {
      consoles,
      gatewayRequests: latencies.length,
      gatewayErrors,
      gatewayNotSent,
      agentCpuPct: round1(agentCpuPct),
      loadGeneratorCpuPct: round1(ownCpuPct),
      gatewayRateMeasured: round1(latencies.filter((s) => s.at >= measuredFrom).length / measuredS),
      gatewayErrorKinds: errorKinds,
      consoleErrors,
      gatewayP99MsDuringBursts: round1(percentileOf(during, 99)),
      gatewayP99MsWithoutBursts: round1(percentileOf(outside, 99)),
      gatewayP50MsWithoutBursts: round1(percentileOf(outside, 50)),
      requestsDuringBursts: during.length,
      healthMaxMsDuringBursts: round1(Math.max(0, ...healthMeasured.filter((s) => inBurst(s.at)).map((s) => s.ms))),
      healthMaxMsWithoutBursts: round1(Math.max(0, ...healthMeasured.filter((s) => !inBurst(s.at)).map((s) => s.ms))),
      bursts: burstWindows.length,
      burstSecondsP50: round1(
        percentileOf(
          burstWindows.map((w) => (w.to - w.from) / 1000),
          50,
        ),
      ),
      rssMb: curve,
      rssMbAfterWarmup: rssAfterWarmup,
      rssMbEnd: rssEnd,
      rssMbPeak: Math.max(rssAfterWarmup, rssEnd, ...curve),
      heapUsedMbEnd: heapEnd.used,
      heapTotalMbEnd: heapEnd.total,
      externalMbEnd: heapEnd.external,
      consoleBytes: viewers.reduce((sum, v) => sum + v.bytes, 0),
    };
  } finally {
    for (const viewer of viewers) viewer.socket.terminate();
    await pool.close();
    await agent.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}
