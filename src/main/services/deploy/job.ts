import { randomBytes } from 'node:crypto';
import type { DeployAction, DeployJob, DeployStep } from '../../../shared/ipc/contract-cloud';

/** A step's output kept for the panel: the end of it, where a failure says why. */
export const STEP_OUTPUT_BYTES = 8 * 1024;
/** Output and progress come in bursts: the panel hears of them at most this often (state changes at once). */
const COALESCE_MS = 150;
/** The most of one unfinished line held back before it is shown anyway. */
const HELD_MAX_BYTES = 64 * 1024;

export interface StepPlan {
  id: string;
  label: string;
}

export interface JobSink {
  /** Every change, for the `deploy:progress` event. */
  emit(job: DeployJob): void;
  /** State changes, for the store (the step list after a restart). */
  save(job: DeployJob): void;
}

/** Strips what must never be shown or stored: bearer tokens and private keys, should a command ever print one. */
export function redact(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[private key removed]')
    .replace(/(bearer\s+)\S+/gi, '$1[removed]')
    .replace(/((?:admin[-_ ]?)?token["'\s:=]+)[A-Za-z0-9_.~+/-]{20,}/gi, '$1[removed]');
}

/**
 * One deploy job as the panel shows it: its steps (planned up front, some added while the host's release command
 * reports its own), their times, details and output. Every change is announced; state changes are saved.
 */
export class JobRecorder {
  readonly job: DeployJob;
  private timer: NodeJS.Timeout | null = null;
  /**
   * Output not shown yet, per step: the unfinished last line, or an open private key block. A secret can arrive in
   * two SSH chunks ("admin tok" + "en: abc..."); redacting whole lines (and whole key blocks) catches it.
   */
  private readonly held = new Map<string, string>();

  constructor(
    hostId: string,
    action: DeployAction,
    plan: StepPlan[],
    private readonly sink: JobSink,
    fromVersion: string | null,
  ) {
    this.job = {
      id: `dj-${randomBytes(6).toString('hex')}`,
      hostId,
      action,
      state: 'running',
      steps: plan.map((step) => blankStep(step)),
      message: null,
      error: null,
      fromVersion,
      toVersion: null,
      startedAt: new Date().toISOString(),
      endedAt: null,
    };
    this.changed(true);
  }

  step(id: string): DeployStep {
    const step = this.job.steps.find((candidate) => candidate.id === id);
    if (!step) throw new Error(`no step ${id} in this job`);
    return step;
  }

  has(id: string): boolean {
    return this.job.steps.some((step) => step.id === id);
  }

  /** Adds a step after another (a sub-step the host's release command reported). */
  insertAfter(afterId: string, plan: StepPlan): DeployStep {
    const existing = this.job.steps.find((step) => step.id === plan.id);
    if (existing) return existing;
    const index = this.job.steps.findIndex((step) => step.id === afterId);
    let at = index + 1;
    // After the parent's earlier sub-steps, in the order they came.
    while (at < this.job.steps.length && this.job.steps[at]!.id.startsWith(`${afterId}.`)) at += 1;
    const step = blankStep(plan);
    this.job.steps.splice(at, 0, step);
    return step;
  }

  start(id: string, detail?: string): void {
    const step = this.step(id);
    step.state = 'running';
    step.startedAt ??= new Date().toISOString();
    step.endedAt = null;
    if (detail !== undefined) step.detail = redact(detail);
    this.changed(true);
  }

  detail(id: string, detail: string): void {
    this.step(id).detail = redact(detail);
    this.changed(false);
  }

  output(id: string, text: string): void {
    const pending = (this.held.get(id) ?? '') + text;
    let cut = pending.lastIndexOf('\n') + 1;
    // A key block still open holds back everything from its BEGIN line (its body lines alone match nothing).
    const begin = pending.search(/-----BEGIN [A-Z ]*PRIVATE KEY-----(?![\s\S]*-----END [A-Z ]*PRIVATE KEY-----)/);
    if (begin >= 0 && begin < cut) cut = begin;
    // A runaway line (no newline for a long while) is shown anyway: redact() still sees it whole up to here.
    if (pending.length - cut > HELD_MAX_BYTES) cut = pending.length;
    this.held.set(id, pending.slice(cut));
    if (cut > 0) this.append(id, pending.slice(0, cut));
  }

  /** Shows what a step still holds back (its last line without a newline), redacted as a whole. */
  private flush(id: string): void {
    const pending = this.held.get(id);
    this.held.delete(id);
    if (pending) this.append(id, pending);
  }

  private append(id: string, text: string): void {
    const step = this.step(id);
    const all = (step.output ?? '') + redact(text);
    step.output = all.length > STEP_OUTPUT_BYTES ? all.slice(all.length - STEP_OUTPUT_BYTES) : all;
    this.changed(false);
  }

  progress(id: string, done: number, total: number): void {
    this.step(id).progress = { done, total };
    this.changed(false);
  }

  end(id: string, state: 'done' | 'failed' | 'skipped' | 'cancelled', detail?: string): void {
    this.flush(id);
    const step = this.step(id);
    step.state = state;
    const now = new Date().toISOString();
    if (state !== 'skipped') step.startedAt ??= now;
    step.endedAt = now;
    if (detail !== undefined) step.detail = redact(detail);
    this.changed(true);
  }

  /** The step running now, if any. */
  running(): DeployStep | undefined {
    return this.job.steps.find((step) => step.state === 'running');
  }

  setVersions(versions: { fromVersion?: string | null; toVersion?: string | null }): void {
    if (versions.fromVersion !== undefined) this.job.fromVersion = versions.fromVersion;
    if (versions.toVersion !== undefined) this.job.toVersion = versions.toVersion;
    this.changed(false);
  }

  finish(
    state: DeployJob['state'],
    message: string | null,
    error: { code: string; message: string; details?: Record<string, string> } | null = null,
  ): DeployJob {
    for (const id of [...this.held.keys()]) this.flush(id);
    this.job.state = state;
    this.job.message = message === null ? null : redact(message);
    this.job.error = error ? { ...error, message: redact(error.message) } : null;
    this.job.endedAt = new Date().toISOString();
    // Steps never started stay pending: the list shows how far the job got.
    this.changed(true);
    return this.snapshot();
  }

  snapshot(): DeployJob {
    return structuredClone(this.job);
  }

  private changed(important: boolean): void {
    if (important) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      const job = this.snapshot();
      this.sink.save(job);
      this.sink.emit(job);
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.sink.emit(this.snapshot());
    }, COALESCE_MS);
  }
}

function blankStep(plan: StepPlan): DeployStep {
  return {
    id: plan.id,
    label: plan.label,
    state: 'pending',
    startedAt: null,
    endedAt: null,
    detail: null,
    output: null,
    progress: null,
  };
}
