import type { Logger } from 'pino';
import type { IdlePolicy, IdleStatus } from '../../contract/index.js';
import { displayCommand, explainStopFailure, runStopCommand, type StopOutcome } from './stop-command.js';
import type { IdleStore } from './store.js';

export type IdleActivityKind = IdleStatus['lastActivity'];

export interface IdleServiceOptions {
  store: IdleStore;
  /** The program and its arguments that stop the machine (config idle.stopCommand or the host's default). */
  stopCommand: readonly string[];
  logger: Logger;
  now?: () => number;
  /** Runs the stop command; tests may give a stand-in, the agent runs the real one. */
  run?: (argv: readonly string[]) => Promise<StopOutcome>;
}

/**
 * `armed`: counting down (or off); `running`: the stop command runs; `stopped`: it succeeded, so the machine is going
 * down and nothing runs again until the admin re-arms (policy change or keep-awake) or the agent restarts;
 * `failed`: it failed, the clock restarted from the failure.
 */
type Phase = 'armed' | 'running' | 'stopped' | 'failed';

const MINUTE_MS = 60_000;

/**
 * Idle auto-stop: the activity clock (in memory: it starts when the agent starts), the policy (in the database),
 * keep-awake, and the stop itself. `tick` is called on a timer; it runs the stop command at most once per idle
 * period, never concurrently.
 */
export class IdleService {
  private readonly now: () => number;
  private readonly run: (argv: readonly string[]) => Promise<StopOutcome>;
  private policyValue: IdlePolicy;
  private lastActivityAt: number;
  private lastActivity: IdleActivityKind = 'start';
  /** Where the countdown starts: the last activity, or the last failed stop, whichever is later. */
  private clockStart: number;
  private keepAwakeUntil: number | null = null;
  private phase: Phase = 'armed';
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: IdleServiceOptions) {
    this.now = options.now ?? Date.now;
    this.run = options.run ?? ((argv) => runStopCommand(argv));
    this.policyValue = options.store.policy();
    this.lastActivityAt = this.now();
    this.clockStart = this.lastActivityAt;
  }

  get policy(): IdlePolicy {
    return { ...this.policyValue };
  }

  /** Something a person did: the countdown starts over. Cheap: the gateway calls it on every request. */
  noteActivity(kind: IdleActivityKind): void {
    const now = this.now();
    this.lastActivityAt = now;
    this.lastActivity = kind;
    this.clockStart = now;
    // After a failed stop, new activity makes it an ordinary countdown again; a successful stop stays final.
    if (this.phase === 'failed') this.phase = 'armed';
  }

  setPolicy(policy: IdlePolicy): IdleStatus {
    this.options.store.setPolicy(policy, new Date(this.now()).toISOString());
    this.policyValue = { ...policy };
    this.rearm();
    this.noteActivity('admin');
    this.options.logger.info({ idle: policy }, 'idle auto-stop policy changed');
    return this.status();
  }

  /** The host counts as busy until `minutes` from now (the newest request wins, so it can also shorten it). */
  keepAwake(minutes: number): IdleStatus {
    this.keepAwakeUntil = this.now() + minutes * MINUTE_MS;
    this.rearm();
    this.noteActivity('keep-awake');
    return this.status();
  }

  /** An explicit admin action after a stop (that did not take the machine down) starts a fresh countdown. */
  private rearm(): void {
    if (this.phase === 'stopped' || this.phase === 'failed') this.phase = 'armed';
  }

  private stopAt(): number {
    const idleEnd = this.clockStart + this.policyValue.minutes * MINUTE_MS;
    return this.keepAwakeUntil !== null && this.keepAwakeUntil > idleEnd ? this.keepAwakeUntil : idleEnd;
  }

  status(): IdleStatus {
    const now = this.now();
    const stored = this.options.store.lastStop();
    const lastStop = stored ? { at: stored.at, exitCode: stored.exitCode, output: stored.output } : null;
    const keepAwakeUntil =
      this.keepAwakeUntil !== null && this.keepAwakeUntil > now ? new Date(this.keepAwakeUntil).toISOString() : null;
    const base = {
      policy: this.policy,
      stopCommand: displayCommand(this.options.stopCommand),
      lastActivityAt: new Date(this.lastActivityAt).toISOString(),
      lastActivity: this.lastActivity,
      keepAwakeUntil,
      lastStop,
    };
    if (this.phase === 'running' || this.phase === 'stopped') {
      return { ...base, state: 'stopping', stopAt: stored?.at ?? new Date(now).toISOString(), secondsLeft: 0 };
    }
    if (!this.policyValue.enabled) return { ...base, state: 'off', stopAt: null, secondsLeft: null };
    const stopAt = this.stopAt();
    return {
      ...base,
      state: this.phase === 'failed' ? 'failed' : 'counting',
      stopAt: new Date(stopAt).toISOString(),
      secondsLeft: Math.max(0, Math.ceil((stopAt - now) / 1000)),
    };
  }

  /**
   * Runs the stop command when the policy is on and the host has been idle long enough (and past keep-awake).
   * Resolves once that run ends, so tests can wait on it; the timer ignores the promise.
   */
  tick(): Promise<void> {
    if (this.running) return this.running;
    if (!this.policyValue.enabled || (this.phase !== 'armed' && this.phase !== 'failed')) return Promise.resolve();
    if (this.now() < this.stopAt()) return Promise.resolve();
    this.running = this.stop().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async stop(): Promise<void> {
    const { logger, store, stopCommand } = this.options;
    this.phase = 'running';
    const command = displayCommand(stopCommand);
    const idleMinutes = Math.round((this.now() - this.lastActivityAt) / MINUTE_MS);
    logger.warn({ command, idleMinutes }, 'idle auto-stop: no activity for the policy time, stopping the machine');
    const id = store.startStop(new Date(this.now()).toISOString(), command);
    let outcome: StopOutcome;
    try {
      outcome = await this.run(stopCommand);
    } catch (error) {
      outcome = { exitCode: null, output: `Could not run the stop command: ${(error as Error).message}` };
    }
    // A failure says what to do next (lastStop is where the panel reads why the host did not stop).
    outcome = explainStopFailure(outcome, command);
    store.finishStopRun(id, new Date(this.now()).toISOString(), outcome.exitCode, outcome.output);
    if (outcome.exitCode === 0) {
      this.phase = 'stopped';
      logger.warn({ command }, 'idle auto-stop: the stop command succeeded');
      return;
    }
    // Not retried at once: the countdown restarts from the failure, so the next attempt is a whole period away.
    this.phase = 'failed';
    this.clockStart = this.now();
    logger.error(
      { command, exitCode: outcome.exitCode, output: outcome.output },
      'idle auto-stop: the stop command failed; the idle clock restarted (see GET /api/v1/idle for its output)',
    );
  }

  /** Checks every `tickMs` (the timer does not keep the process alive). */
  start(tickMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
  }

  /** Stops checking. A stop command already running is left to finish: the machine may be going down. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
