import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Slot } from '../../contract/index.js';
import type { OpsEvents } from '../../ops/events.js';

/** Every metric's name starts with this. */
export const METRIC_PREFIX = 'slotdeck_';

/**
 * Label values are bounded so that no client can grow the exposition: a model is one of the price table's prefixes
 * (claude-sonnet-4, ...) or "other", at most MAX_MODELS of them; slots are labelled by name, at most MAX_SLOT_LABELS
 * distinct names over the agent's life (slots beyond are summed under "other"); a status is a 3-digit HTTP code.
 */
export const MAX_MODELS = 30;
export const MAX_SLOT_LABELS = 200;
export const OTHER = 'other';

/** The reasons the gateway gives for a refusal (see refusalReason); all are exported from the start, at 0. */
const REFUSAL_REASONS = [
  'auth',
  'quota',
  'rate_limit',
  'concurrency',
  'storage_full',
  'shutting_down',
  'upstream_key_missing',
  'model_unpriced',
  'invalid_request',
];
const SLOT_STATES = ['starting', 'running', 'restarting', 'stopped', 'failed'];
/** How long one scrape's slot list is reused by the other slot metrics of the same scrape. */
const SLOT_SNAPSHOT_MS = 1000;
const SLOT_LIST_TIMEOUT_MS = 2000;

export interface AgentMetricsDeps {
  ops: OpsEvents;
  /** The model prefixes the price table knows (built-in and configured). */
  knownModels: string[];
  slots: { list(): Promise<Slot[]> };
  openStreams: () => number;
  inFlight: () => number;
  backupStatus: () => { lastSuccessAt: string | null };
  storageFull: () => boolean;
}

/** A bounded set of label values: the first `max` seen keep their name, the rest are "other". */
class LabelCap {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  label(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return OTHER;
    this.seen.add(value);
    return value;
  }
}

/** The agent's Prometheus metrics, in a registry of its own (nothing global), fed by the operations events. */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly models: string[];
  private readonly slotNames = new LabelCap(MAX_SLOT_LABELS);
  /** Slot ids to names, from the last slot list (terminal output events name a slot by id). */
  private readonly nameOf = new Map<string, string>();
  private snapshot: { at: number; slots: Promise<Slot[] | null> } | null = null;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly deps: AgentMetricsDeps) {
    // Longest prefix first, as the price table matches them.
    this.models = [...new Set(deps.knownModels)].sort((a, b) => b.length - a.length).slice(0, MAX_MODELS);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    // prom-client names three gauges *_total, which promtool's lint refuses; the same counts are in
    // nodejs_active_{handles,requests,resources} by type, so these totals go.
    for (const kind of ['handles', 'requests', 'resources'])
      this.registry.removeSingleMetric(`${METRIC_PREFIX}nodejs_active_${kind}_total`);

    const requests = new Counter({
      name: `${METRIC_PREFIX}gateway_requests_total`,
      help: 'Gateway requests answered, by HTTP status, model (price-table family or "other") and outcome.',
      labelNames: ['status', 'model', 'outcome'],
      registers,
    });
    const duration = new Histogram({
      name: `${METRIC_PREFIX}gateway_request_duration_seconds`,
      help: "Gateway requests from arrival to the answer's last byte.",
      labelNames: ['outcome', 'stream'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    const overhead = new Histogram({
      name: `${METRIC_PREFIX}gateway_overhead_seconds`,
      help: "Time a forwarded request spent in the gateway itself (total minus the upstream's time).",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
      registers,
    });
    const tokens = new Counter({
      name: `${METRIC_PREFIX}gateway_tokens_total`,
      help: 'Tokens metered by the gateway, by model and kind (input, output, cache_read, cache_write).',
      labelNames: ['model', 'kind'],
      registers,
    });
    const cost = new Counter({
      name: `${METRIC_PREFIX}gateway_cost_usd_total`,
      help: 'Cost of metered gateway requests in US dollars, by model, at the price table in force.',
      labelNames: ['model'],
      registers,
    });
    const refusals = new Counter({
      name: `${METRIC_PREFIX}gateway_refusals_total`,
      help: 'Requests the gateway refused before the upstream, by reason (quota, rate_limit, auth, storage_full...).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);
    const upstream = new Counter({
      name: `${METRIC_PREFIX}upstream_answers_total`,
      help: 'Answers of the upstream API by status class (2xx, 4xx, 5xx) or "failed" when it did not answer.',
      labelNames: ['class'],
      registers,
    });
    new Gauge({
      name: `${METRIC_PREFIX}gateway_open_streams`,
      help: 'Streamed gateway answers being sent now.',
      registers,
      collect() {
        this.set(deps.openStreams());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}gateway_in_flight_requests`,
      help: 'Gateway requests forwarded to the upstream and not yet answered in full.',
      registers,
      collect() {
        this.set(deps.inFlight());
      },
    });

    const terminalBytes = new Counter({
      name: `${METRIC_PREFIX}terminal_output_bytes_total`,
      help: "Bytes of terminal output written to viewers' sockets, by slot name.",
      labelNames: ['slot'],
      registers,
    });
    const dbCommit = new Histogram({
      name: `${METRIC_PREFIX}db_commit_duration_seconds`,
      help: 'SQLite write transactions, from begin to commit.',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    const backups = new Counter({
      name: `${METRIC_PREFIX}backups_total`,
      help: 'Backup runs by result (ok, failed).',
      labelNames: ['result'],
      registers,
    });
    backups.inc({ result: 'ok' }, 0);
    backups.inc({ result: 'failed' }, 0);
    new Gauge({
      name: `${METRIC_PREFIX}backup_last_success_timestamp_seconds`,
      help: 'When the last backup succeeded (Unix time); 0 when none has.',
      registers,
      collect() {
        const at = deps.backupStatus().lastSuccessAt;
        const ms = at === null ? NaN : Date.parse(at);
        this.set(Number.isNaN(ms) ? 0 : ms / 1000);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}storage_full`,
      help: '1 while the data dir cannot be written (the gateway refuses requests then), else 0.',
      registers,
      collect() {
        this.set(deps.storageFull() ? 1 : 0);
      },
    });

    // Slots: read from one slot list per scrape (PM2 is asked once, with a bound).
    const slotList = (): Promise<Slot[] | null> => this.slotList();
    const slotLabel = (slot: Slot): string => this.slotLabel(slot.id, slot.name);
    const slotsGauge = (name: string, help: string, value: (slot: Slot) => number | null): Gauge<'slot'> =>
      new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help,
        labelNames: ['slot'],
        registers,
        async collect() {
          const slots = await slotList();
          if (slots === null) return;
          this.reset();
          for (const slot of slots) {
            const v = value(slot);
            if (v !== null) this.inc({ slot: slotLabel(slot) }, v);
          }
        },
      });
    new Gauge({
      name: `${METRIC_PREFIX}slots`,
      help: 'Slots by state (starting, running, restarting, stopped, failed).',
      labelNames: ['state'],
      registers,
      async collect() {
        const slots = await slotList();
        if (slots === null) return;
        for (const state of SLOT_STATES) this.set({ state }, slots.filter((s) => s.state === state).length);
      },
    });
    slotsGauge('slot_restarts', "Automatic restarts of each slot's program since it was created.", (s) => s.restarts);
    slotsGauge('slot_memory_bytes', "Resident memory of each slot's processes.", (s) => s.memoryBytes);
    slotsGauge('slot_cpu_percent', "CPU use of each slot's processes, percent of one core.", (s) => s.cpuPercent);
    slotsGauge(
      'slot_viewers',
      'Terminal viewers attached to each slot.',
      (s) => s.viewers.writable + s.viewers.readOnly,
    );
    const slotRestartEvents = new Counter({
      name: `${METRIC_PREFIX}slot_crash_restarts_total`,
      help: 'Times the supervisor restarted a slot after its program ended or crashed, seen by this agent process.',
      registers,
    });

    const { ops } = deps;
    this.unsubscribe.push(
      ops.on('gateway.exchange', (e) => {
        const model = this.modelLabel(e.model);
        requests.inc({ status: statusLabel(e.status), model, outcome: e.outcome });
        duration.observe({ outcome: e.outcome, stream: e.stream ? 'true' : 'false' }, e.durationMs / 1000);
        if (e.overheadMs !== null) overhead.observe(e.overheadMs / 1000);
      }),
      ops.on('gateway.refused', (e) => refusals.inc({ reason: REFUSAL_REASONS.includes(e.reason) ? e.reason : OTHER })),
      ops.on('upstream.answer', (e) =>
        upstream.inc({ class: e.status === null ? 'failed' : `${Math.floor(e.status / 100)}xx` }),
      ),
      ops.on('usage.recorded', (e) => {
        const model = this.modelLabel(e.model);
        tokens.inc({ model, kind: 'input' }, e.inputTokens);
        tokens.inc({ model, kind: 'output' }, e.outputTokens);
        tokens.inc({ model, kind: 'cache_read' }, e.cacheReadTokens);
        tokens.inc({ model, kind: 'cache_write' }, e.cacheWriteTokens);
        cost.inc({ model }, e.costMicroUsd / 1e6);
      }),
      ops.on('terminal.output', (e) =>
        terminalBytes.inc({ slot: this.slotLabel(e.slotId, this.nameOf.get(e.slotId) ?? e.slotId) }, e.bytes),
      ),
      ops.on('db.commit', (e) => dbCommit.observe(e.ms / 1000)),
      ops.on('backup', (e) => backups.inc({ result: e.ok ? 'ok' : 'failed' })),
      ops.on('slot.restarted', () => slotRestartEvents.inc()),
      ops.on('slot.state', (e) => this.nameOf.set(e.slotId, e.name)),
    );
  }

  /** The Prometheus text exposition. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.registry.clear();
  }

  /** The price table's entry (longest matching prefix, e.g. "claude-sonnet-4-6") of a model, or "other". */
  modelLabel(model: string | null): string {
    if (model === null) return 'none';
    return this.models.find((prefix) => model.startsWith(prefix)) ?? OTHER;
  }

  private slotLabel(id: string, name: string): string {
    this.nameOf.set(id, name);
    return this.slotNames.label(name);
  }

  /** One slot list shared by a scrape's slot metrics; null when PM2 did not answer in time. */
  private slotList(): Promise<Slot[] | null> {
    const now = Date.now();
    if (!this.snapshot || now - this.snapshot.at > SLOT_SNAPSHOT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const slots = Promise.race([
        this.deps.slots.list(),
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), SLOT_LIST_TIMEOUT_MS);
        }),
      ])
        .catch(() => null)
        .finally(() => clearTimeout(timer));
      this.snapshot = { at: now, slots };
    }
    return this.snapshot.slots;
  }
}

function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : OTHER;
}
