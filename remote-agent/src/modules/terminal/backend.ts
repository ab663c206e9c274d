import type { WebSocket } from 'ws';
import type { TerminalBackend as TerminalBackendKind } from '../../contract/index.js';
import type { ProcessSpec } from '../../supervisor/supervisor.js';
import type { UpgradeAuth } from './opening.js';

/** A slot as its terminal backend needs to know it (the slots module's rows have these fields and more). */
export interface TerminalSlot {
  id: string;
  name: string;
  argv: string[];
  workDir: string;
  cols: number;
  rows: number;
  ownerId: string | null;
  memoryLimitMb: number | null;
}

/** Why a backend cannot serve slots on this host: the status to answer and what the admin can do. */
export interface BackendProblem {
  status: 400 | 503;
  message: string;
}

/**
 * What holds a slot's terminal and serves its clients: the built-in host (dtach, mirrored screens) or a real ttyd
 * (with tmux). The slots module talks to every backend through this, so it has no branch per backend.
 */
export interface TerminalBackend {
  readonly kind: TerminalBackendKind;
  /** Whether the slot's program may run as an account of its own (hosts set up with setup-host). */
  readonly supportsSlotAccounts: boolean;
  /** Why slots cannot use this backend here (a program missing), or null. */
  problem(): BackendProblem | null;
  /** What PM2 runs for the slot; the PM2 name is the slots module's to give. */
  processSpec(slot: TerminalSlot): Omit<ProcessSpec, 'name'>;
  /** Before PM2 starts a new session: clear what an earlier one may have left (a stale socket). */
  prepareStart(slot: TerminalSlot): Promise<void>;
  /**
   * Takes the slot's terminal in hand (idempotent). `resume`: the session has been running without this agent (it
   * restarted), so its screen is asked to repaint instead of starting afresh.
   */
  open(slot: TerminalSlot, resume: boolean): void;
  isOpen(slotId: string): boolean;
  /** The slot stopped: its clients are closed; what it keeps for a next start stays. */
  release(slotId: string, reason?: string): Promise<void>;
  /** The slot is deleted: release it and remove what the backend kept for it. */
  forget(slotId: string): Promise<void>;
  /** Ends a session that outlives the supervised process (tmux outlives ttyd); nothing to do where none does. */
  endSession(slot: TerminalSlot): Promise<void>;
  viewers(slotId: string): { writable: number; readOnly: number };
  /**
   * Closes every client opened with a ticket of this lease (`share:<id>`, `session:<id>`), on every slot, with
   * close code ACCESS_ENDED and `reason`; returns how many were closed.
   */
  disconnectLease(lease: string, reason: string): number;
  /** Clients connected now under this lease, on every slot. */
  leaseViewers(lease: string): number;
  /** Epoch ms of the last input or output, or null. */
  lastActivity(slotId: string): number | null;
  /** Recent output as text, for messages about why a program ended; empty where the backend keeps none. */
  recentText(slotId: string): string;
  /** Takes a client's WebSocket for the slot's terminal (ttyd's protocol). */
  accept(socket: WebSocket, slotId: string, auth: UpgradeAuth): void;
}
