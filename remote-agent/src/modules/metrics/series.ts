import type { MetricsSample, MetricsSeries, Slot } from '../../contract/index.js';
import type { OpsEvents } from '../../ops/events.js';
import { readMemory } from '../health/details.js';

export interface SeriesDeps {
  ops: OpsEvents;
  slots: { list(): Promise<Slot[]> };
  intervalMs?: number;
  /** Samples kept: an hour at the default 10 s. */
  keep?: number;
  now?: () => number;
  meminfoPath?: string;
}

const SLOT_LIST_TIMEOUT_MS = 2000;

/**
 * The panel's live charts: a short in-memory series (every 10 s, the last hour) of request and error rates, tokens,
 * slots by state, the agent's CPU and the host's memory. Prometheus keeps the long history; this needs none.
 */
export class MetricsSeriesSampler {
  private readonly intervalMs: number;
  private readonly keep: number;
  private readonly now: () => number;
  private readonly samples: MetricsSample[] = [];
  private requests = 0;
  private errors = 0;
  private tokens = 0;
  private lastSlots: Record<string, number> = {};
  private cpu = process.cpuUsage();
  private cpuAt: number;
  private lastAt: number;
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;
  private readonly unsubscribe: Array<() => void>;

  constructor(private readonly deps: SeriesDeps) {
    this.intervalMs = deps.intervalMs ?? 10_000;
    this.keep = deps.keep ?? 360;
    this.now = deps.now ?? Date.now;
    this.cpuAt = performance.now();
    this.lastAt = this.now();
    this.unsubscribe = [
      deps.ops.on('gateway.exchange', (e) => {
        this.requests++;
        // Errors as a user sees them: any answer of 400 or more (refusals included); a client that left is not one.
        if (e.outcome !== 'client_left' && e.status >= 400) this.errors++;
      }),
      deps.ops.on('usage.recorded', (e) => {
        this.tokens += e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
      }),
    ];
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const off of this.unsubscribe.splice(0)) off();
  }

  series(since?: string): MetricsSeries {
    const after = since === undefined ? -Infinity : Date.parse(since);
    return {
      intervalS: Math.round(this.intervalMs / 1000),
      samples: this.samples.filter((sample) => Date.parse(sample.at) > after),
    };
  }

  /** Takes one sample now (the timer calls it; tests too). */
  async sample(): Promise<MetricsSample | null> {
    if (this.sampling) return null;
    this.sampling = true;
    try {
      const slots = await this.slotCounts();
      const at = this.now();
      const seconds = Math.max(0.001, (at - this.lastAt) / 1000);
      const cpu = process.cpuUsage(this.cpu);
      const cpuSeconds = (performance.now() - this.cpuAt) / 1000;
      const sample: MetricsSample = {
        at: new Date(at).toISOString(),
        requestsPerS: round2(this.requests / seconds),
        errorsPerS: round2(this.errors / seconds),
        tokensPerMin: Math.round((this.tokens / seconds) * 60),
        slots,
        agentCpuPercent: cpuSeconds > 0 ? round2(((cpu.user + cpu.system) / 1e6 / cpuSeconds) * 100) : 0,
        hostMemoryPercent: readMemory(this.deps.meminfoPath).usedPercent,
      };
      this.requests = 0;
      this.errors = 0;
      this.tokens = 0;
      this.lastAt = at;
      this.cpu = process.cpuUsage();
      this.cpuAt = performance.now();
      this.samples.push(sample);
      if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
      return sample;
    } finally {
      this.sampling = false;
    }
  }

  /** Slots by state; the last known counts when PM2 does not answer in time. */
  private async slotCounts(): Promise<Record<string, number>> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const slots = await Promise.race([
        this.deps.slots.list(),
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), SLOT_LIST_TIMEOUT_MS);
        }),
      ]);
      if (slots !== null) {
        const counts: Record<string, number> = {};
        for (const slot of slots) counts[slot.state] = (counts[slot.state] ?? 0) + 1;
        this.lastSlots = counts;
      }
    } catch {
      // PM2 unusable: keep the last counts.
    } finally {
      clearTimeout(timer);
    }
    return this.lastSlots;
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
