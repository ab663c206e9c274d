/** What the slot runtime needs from a process supervisor. PM2 is the one we ship (./pm2.ts). */

export type SupervisedStatus = 'online' | 'launching' | 'stopping' | 'stopped' | 'errored' | 'unknown';

export interface SupervisedProcess {
  name: string;
  pid: number | null;
  status: SupervisedStatus;
  /** Epoch ms when the current run started. */
  startedAt: number | null;
  /** Automatic and manual restarts the supervisor has counted since the process was registered. */
  restartCount: number;
  /**
   * Times the process ended since it was registered: its restarts, plus one while a restart is pending. PM2 counts a
   * restart only when it starts the process again, after a back-off that grows to 15 s; the exit itself is news now.
   */
  exits: number;
}

export interface ProcessSpec {
  name: string;
  /** Absolute path of the executable (no interpreter is involved). */
  script: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  outFile: string;
  errorFile: string;
  /** Delay before the first automatic restart; it grows on each quick crash. */
  restartDelayMs: number;
  /**
   * Whether stopping it signals its whole process tree and waits for all of it (default: the process only; the
   * slots module ends the rest of a slot's sessions itself).
   */
  treeKill?: boolean;
}

export interface ProcessEvent {
  name: string;
  event: string;
}

export type Disposer = () => void;

/** The supervisor's daemon went away, or a new one took its place (the slots module then adopts what still runs). */
export type DaemonChange =
  | { kind: 'lost'; pid: number | null; message: string }
  | { kind: 'restored'; previousPid: number | null; pid: number | null; downMs: number };

export interface ProcessSupervisor {
  connect(): Promise<void>;
  list(): Promise<SupervisedProcess[]>;
  describe(name: string): Promise<SupervisedProcess | null>;
  start(spec: ProcessSpec): Promise<void>;
  /** Ends the process and forgets it. */
  remove(name: string): Promise<void>;
  onProcessEvent(listener: (event: ProcessEvent) => void): Disposer;
  daemonPid(): number | null;
  /**
   * Why calls cannot be made now (the daemon died and a new one is being started), or null. Optional: supervisors
   * without a daemon of their own have nothing to report.
   */
  unavailable?(): string | null;
  /** Told when the daemon is lost and when a new one is connected. */
  onDaemonChange?(listener: (change: DaemonChange) => void): Disposer;
  /** Leaves every process running. */
  disconnect(): Promise<void>;
  /** Ends every supervised process and the supervisor daemon itself. */
  shutdownDaemon(): Promise<void>;
}

export class SupervisorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SupervisorError';
  }
}

/** The daemon is gone and a new one is being started: calls fail at once instead of waiting for a timeout. */
export class SupervisorUnavailableError extends SupervisorError {
  constructor(message: string) {
    super(message);
    this.name = 'SupervisorUnavailableError';
  }
}
