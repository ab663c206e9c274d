import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pty from '@lydell/node-pty';
import WebSocket from 'ws';
import type { Slot, TerminalTicket } from '../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../../tests/integration/helpers/agent.js';
import { stripAnsi } from '../../tests/integration/helpers/terminal-client.js';
import { median, percentile, round, type Figure, type Suite } from '../suite.js';

const FLOOD_MB = 48;
const END_MARK = 'BENCH-FLOOD-END';
const READY_MARK = 'BENCH-FLOOD-READY';
const IDLE_SLOTS = 100;
/**
 * How long an idle slot's screen mirror (@xterm/headless) stays in the agent after its last client left
 * (MIRROR_IDLE_MS in remote-agent/src/modules/terminal/screen-store.ts), and a margin: idle memory is sampled after.
 */
const SCREEN_IDLE_WAIT_MS = 60_000 + 5_000;

interface Stream {
  socket: WebSocket;
  /** Bytes of output received so far. */
  bytes: () => number;
  waitFor: (text: string, timeoutMs?: number) => Promise<void>;
  send: (input: string) => void;
  /** Forgets what was seen, so the next waitFor looks only at new output. */
  forget: () => void;
}

async function ticket(agent: AgentProcess, slotId: string): Promise<TerminalTicket> {
  const response = await agent.request<TerminalTicket>('POST', `/api/v1/slots/${slotId}/tickets`, { mode: 'writable' });
  if (response.status !== 201) throw new Error(`ticket: ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Opens a slot terminal; `firstOutput` resolves at the first frame that carries visible program output. */
async function openStream(agent: AgentProcess, slotId: string): Promise<Stream & { firstOutput: Promise<number> }> {
  const { path } = await ticket(agent, slotId);
  const socket = new WebSocket(`${agent.url.replace('http', 'ws')}${path}`, ['tty']);
  let received = 0;
  let tail = '';
  let resolveFirst: (at: number) => void = () => undefined;
  const firstOutput = new Promise<number>((resolve) => (resolveFirst = resolve));
  socket.on('message', (data: Buffer) => {
    if (data[0] !== 0x30) return;
    received += data.length - 1;
    // Only the end of the stream is kept to look for markers: the flood is tens of megabytes.
    tail = (tail + data.subarray(Math.max(1, data.length - 4096)).toString('latin1')).slice(-8192);
    // The first frame with visible text: a replayed empty screen is only escape sequences.
    if (/\S/.test(stripAnsi(data.subarray(1).toString('latin1')))) resolveFirst(performance.now());
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(Buffer.from(JSON.stringify({ AuthToken: '', columns: 120, rows: 40 })));
  return {
    socket,
    firstOutput,
    bytes: () => received,
    send: (input) => socket.send(Buffer.from(`0${input}`)),
    forget: () => {
      tail = '';
    },
    waitFor: async (text, timeoutMs = 120_000) => {
      // Polled: the output handler only keeps a tail, and a bench has no deadline finer than a few milliseconds.
      const deadline = Date.now() + timeoutMs;
      while (!tail.includes(text)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${text}`);
        await sleep(2);
      }
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function createSlot(agent: AgentProcess, body: Record<string, unknown>): Promise<Slot> {
  const response = await agent.request<Slot>('POST', '/api/v1/slots', body);
  if (response.status !== 201) throw new Error(`create: ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Create request → first visible output of the slot's program on an attached client. */
async function createToReady(agent: AgentProcess, name: string): Promise<{ ms: number; slot: Slot }> {
  const started = performance.now();
  const slot = await createSlot(agent, { name });
  const stream = await openStream(agent, slot.id);
  const first = await withTimeout(stream.firstOutput, 30_000, `${name}: no output in 30 s`);
  stream.socket.close();
  return { ms: first - started, slot };
}

function readStatus(pid: number, field: 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function readPss(pid: number): number {
  const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Direct baseline: the same file cat to a PTY read by node-pty, in this process, until all `expected` bytes came.
 * The shell then waits on its input, for the PTY to stay open: node-pty drops the last output of a program that
 * exits (about 12 KB of 48 MB here), which would count as a faster read.
 */
function readDirect(file: string, expected: number): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let bytes = 0;
    const term = pty.spawn('/bin/sh', ['-c', `cat ${file}; read -r done`], {
      cols: 120,
      rows: 40,
      encoding: null as unknown as string,
    });
    term.onData((data: string | Buffer) => {
      bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      if (bytes >= expected) {
        resolve({ bytes, seconds: (performance.now() - started) / 1000 });
        term.kill();
      }
    });
    term.onExit(() => {
      if (bytes < expected) reject(new Error(`the direct PTY read ${bytes} bytes, not ${expected}`));
    });
  });
}

export const slotsSuite: Suite = {
  async run(log) {
    const metrics: Record<string, Figure> = {};
    const work = mkdtempSync(join(tmpdir(), 'sd-bench-'));
    const agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_LOG_LEVEL: 'warn' } });
    try {
      const godPid = Number(readFileSync(join(agent.pm2Home, 'pm2.pid'), 'utf8'));
      const agentPid = agent.pid!;
      /** The agent and PM2's daemon, plus each slot's path (dtach holder and launcher; not the slot's program). */
      const measure = (slots: Slot[]): { rss: number; pss: number } => {
        let rss = readStatus(agentPid, 'VmRSS') + readStatus(godPid, 'VmRSS');
        let pss = readPss(agentPid) + readPss(godPid);
        for (const slot of slots) {
          for (const pid of [slot.pid!, ...childrenOf(slot.pid!)]) {
            if (pid === slot.programPid) continue;
            rss += readStatus(pid, 'VmRSS');
            pss += readPss(pid);
          }
        }
        return { rss, pss };
      };
      const listSlots = async (): Promise<Slot[]> =>
        (await agent.request<{ slots: Slot[] }>('GET', '/api/v1/slots')).body.slots;
      const deleteAll = async (): Promise<void> => {
        for (const slot of await listSlots()) await agent.request('DELETE', `/api/v1/slots/${slot.id}?workDir=remove`);
      };
      // Before any slot exists: what the agent and PM2 cost on their own. Whatever a slot adds (its processes, the
      // agent's modules and state for it, heap left over from earlier slots) counts against the slots measured later.
      const empty = measure([]);

      // Warm up: the first slot pays for loading modules and starting PM2's first child.
      await createToReady(agent, 'warmup');

      log('create → first output, 20 slots one after another');
      const times: number[] = [];
      for (let i = 0; i < 20; i++) times.push((await createToReady(agent, `ready-${i}`)).ms);
      metrics.create_to_ready_ms_p50 = {
        value: round(median(times), 1),
        unit: 'ms',
        what: 'create request → first visible program output on an attached client (median of 20, one at a time)',
        goal: '<= 300',
        detail: { p90: round(percentile(times, 90), 1), max: round(Math.max(...times), 1), samples: times.length },
      };

      log(`terminal throughput: ${FLOOD_MB} MB through the slot path vs read from a PTY directly`);
      const flood = join(work, 'flood.txt');
      const line = `${'0123456789abcdef'.repeat(7)}\n`;
      const lines = Math.ceil((FLOOD_MB * 2 ** 20) / line.length);
      writeFileSync(flood, line.repeat(lines));
      // What a PTY turns the file into (each \n becomes \r\n), and the marker line after it.
      const expectedBytes = lines * (line.length + 1) + END_MARK.length + 2;
      const floodSlot = await createSlot(agent, {
        name: 'flood',
        command: {
          preset: 'custom',
          command: '/bin/sh',
          args: ['-c', `stty -echo; echo ${READY_MARK}; while read -r go; do cat ${flood}; echo ${END_MARK}; done`],
        },
      });
      const stream = await openStream(agent, floodSlot.id);
      // The program says when it reads (the attach replays the screen if it said so before), then runs once to warm up.
      await stream.waitFor(READY_MARK);
      stream.send('go\r');
      await stream.waitFor(`${END_MARK}\r\n`);
      stream.forget();
      const direct: number[] = [];
      const viaSlot: number[] = [];
      const received: number[] = [];
      for (let round_ = 0; round_ < 3; round_++) {
        const d = await readDirect(flood, expectedBytes - END_MARK.length - 2);
        direct.push(d.bytes / d.seconds);
        const before = stream.bytes();
        const started = performance.now();
        stream.send('go\r');
        await stream.waitFor(`${END_MARK}\r\n`);
        const seconds = (performance.now() - started) / 1000;
        stream.forget();
        received.push(stream.bytes() - before);
        viaSlot.push((stream.bytes() - before) / seconds);
        await sleep(300);
      }
      stream.socket.close();
      // A fast figure means nothing if output was lost or altered on the way: every byte written must arrive.
      const lost = received.filter((bytes) => bytes !== expectedBytes);
      if (lost.length > 0)
        throw new Error(`the client received ${lost.join(', ')} bytes of output where ${expectedBytes} were written`);
      const directMBs = median(direct) / 1e6;
      const slotMBs = median(viaSlot) / 1e6;
      metrics.terminal_throughput_ratio = {
        value: round(slotMBs / directMBs, 3),
        unit: 'ratio',
        what: `MB/s of ${FLOOD_MB} MB of output (cat) through slot, agent and WebSocket ÷ node-pty reading the same cat; every byte checked to arrive`,
        goal: '>= 0.8',
        baseline: { value: round(directMBs, 1), unit: 'MB/s', what: 'node-pty reading cat directly' },
        ratio: round(slotMBs / directMBs, 3),
        detail: { slot_mb_per_s: round(slotMBs, 1), runs: direct.length, bytes_received_each_run: expectedBytes },
      };

      log(`${IDLE_SLOTS} slots created and ready, 8 at a time`);
      await deleteAll();
      const started = performance.now();
      const queue = Array.from({ length: IDLE_SLOTS }, (_, i) => `many-${i}`);
      const perSlot: number[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let name = queue.shift(); name; name = queue.shift())
            perSlot.push((await createToReady(agent, name)).ms);
        }),
      );
      const totalS = (performance.now() - started) / 1000;
      metrics.create_100_total_s = {
        value: round(totalS, 2),
        unit: 's',
        what: `${IDLE_SLOTS} slots created, each until its first output on an attached client, 8 at a time`,
        goal: '<= 20',
        detail: {
          concurrency: 8,
          per_slot_p50_ms: round(median(perSlot), 1),
          per_slot_p90_ms: round(percentile(perSlot, 90), 1),
        },
      };

      log(`idle memory: ${IDLE_SLOTS} idle slots, sampled ${SCREEN_IDLE_WAIT_MS / 1000} s after their clients left`);
      await sleep(SCREEN_IDLE_WAIT_MS);
      const idle = (await listSlots()).filter((slot) => slot.name.startsWith('many-'));
      if (idle.length !== IDLE_SLOTS) throw new Error(`${idle.length} of the ${IDLE_SLOTS} slots are listed`);
      const withSlots = measure(idle);
      metrics.idle_rss_mb_per_slot = {
        value: round((withSlots.rss - empty.rss) / IDLE_SLOTS / 2 ** 20, 2),
        unit: 'MB',
        what: `RSS of agent, PM2 and the slots' holders and launchers (not their programs) with ${IDLE_SLOTS} idle slots, minus agent and PM2 before any slot existed, per slot`,
        goal: '<= 30',
        detail: {
          slots: IDLE_SLOTS,
          rss_with_slots_mb: round(withSlots.rss / 2 ** 20),
          rss_before_slots_mb: round(empty.rss / 2 ** 20),
          sampled_after_idle_s: SCREEN_IDLE_WAIT_MS / 1000,
        },
      };
      metrics.idle_pss_mb_per_slot = {
        value: round((withSlots.pss - empty.pss) / IDLE_SLOTS / 2 ** 20, 2),
        unit: 'MB',
        what: 'the same as idle_rss_mb_per_slot in proportional set size (shared pages split among the processes using them)',
        detail: { pss_with_slots_mb: round(withSlots.pss / 2 ** 20), pss_before_slots_mb: round(empty.pss / 2 ** 20) },
      };
    } finally {
      await agent.destroy();
      rmSync(work, { recursive: true, force: true });
    }
    return metrics;
  },
};
