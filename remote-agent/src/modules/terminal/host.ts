import { existsSync, rmSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { TerminalCloseCode } from '../../contract/index.js';
import type { ProcessSpec } from '../../supervisor/supervisor.js';
import { slotProcessOf } from '../../supervisor/sessions.js';
import { commandLineOf, readProcessTable } from '../../util/procfs.js';
import type { BackendProblem, TerminalBackend, TerminalSlot } from './backend.js';
import { DEFAULT_FLOW_LIMITS, TerminalClient, type FlowLimits } from './client.js';
import { awaitOpening, type OpeningPolicy, type UpgradeAuth } from './opening.js';
import { ScreenStore, type JournalStorage, type ScreenSize } from './screen-store.js';
import { SlotTerminal } from './slot-terminal.js';
import { leasesOf, type TicketStore } from './tickets.js';

const HEARTBEAT_MS = 30_000;
/** Places of a slot kept for the admin and the owner: public viewers (share links) never take these. */
export const PLACES_KEPT_FROM_PUBLIC = 8;
export const DEFAULT_MAX_CLIENTS_PER_SLOT = 64;

export interface TerminalHostOptions {
  runDir: string;
  /** Folder holding a slot's screen files. */
  screenDir: (slotId: string) => string;
  socketPath: (slotId: string) => string;
  /** Runs before each attempt to connect to a slot's socket; throws when the socket must not be used. */
  beforeConnect?: (slotId: string) => void;
  scrollbackLines: number;
  journalCompactBytes: number;
  /** The storage monitor: a journal that hits a full disk pauses and resumes once there is room. */
  storage?: JournalStorage;
  tickets: TicketStore;
  opening: OpeningPolicy;
  logger: Logger;
  onSizeChange: (slotId: string, size: ScreenSize) => void;
  /** Told when a client types into a slot (the idle auto-stop's activity clock). */
  onInput?: () => void;
  /** Told the bytes each viewer's socket wrote (metrics: terminal bytes out). */
  onOutputSent?: (slotId: string, bytes: number) => void;
  flowLimits?: FlowLimits;
  maxClientsPerSlot?: number;
  /** dtach, which holds the slots' terminals; null where it is not installed. */
  dtach: string | null;
  /** What PM2 runs to hold a slot's terminal in dtach (the holder scripts are the slots module's). */
  processSpec: (slot: TerminalSlot, dtach: string) => Omit<ProcessSpec, 'name'>;
}

/** How many of a slot's `max` places public viewers may take. */
export const publicPlaces = (max: number): number => Math.max(1, max - PLACES_KEPT_FROM_PUBLIC);

/**
 * The built-in terminal backend, all slot terminals of the agent: one attached SlotTerminal per running slot, and
 * the clients' WebSockets.
 */
export class TerminalHost implements TerminalBackend {
  readonly kind = 'builtin' as const;
  readonly supportsSlotAccounts = true;
  private readonly terminals = new Map<string, SlotTerminal>();
  private readonly watcher: FSWatcher | null;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: TerminalHostOptions) {
    // A slot's socket appears when PM2 (re)starts its session: attach at once rather than on the next retry.
    let watcher: FSWatcher | null = null;
    try {
      watcher = watch(options.runDir, (_event, file) => {
        const match = file ? /^([a-z0-9]+)\.sock$/.exec(file.toString()) : null;
        if (match) this.terminals.get(match[1]!)?.poke();
      });
      watcher.on('error', () => undefined);
    } catch (error) {
      options.logger.warn({ err: error }, 'cannot watch the run directory; attaching to slots by polling');
    }
    this.watcher = watcher;
    this.heartbeat = setInterval(() => this.checkHeartbeats(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  problem(): BackendProblem | null {
    if (this.options.dtach) return null;
    return {
      status: 503,
      message:
        'dtach is not installed on this host, and slots need it to hold their terminals. Install it (Debian/Ubuntu: apt-get install dtach) and restart the agent.',
    };
  }

  processSpec(slot: TerminalSlot): Omit<ProcessSpec, 'name'> {
    if (!this.options.dtach) throw new Error('dtach is required for the built-in terminal');
    return this.options.processSpec(slot, this.options.dtach);
  }

  /**
   * A socket left by a holder PM2 no longer knows (its daemon was killed) would block the new session: end that
   * holder, or remove the dead socket.
   */
  async prepareStart(slot: TerminalSlot): Promise<void> {
    const socket = this.options.socketPath(slot.id);
    if (!existsSync(socket)) return;
    const alive = await new Promise<boolean>((resolve) => {
      const probe = createConnection({ path: socket });
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (alive) {
      // Only this slot's holder or dtach, by the whole shape of its command line: anything else merely naming the
      // socket (someone's `ls`, a planted look-alike) is not ours to end.
      const holders = [...readProcessTable().keys()].filter((pid) => {
        const args = commandLineOf(pid);
        const shape = args && slotProcessOf(args);
        return shape !== null && shape.role !== 'launcher' && shape.names === socket;
      });
      for (const pid of holders) {
        this.options.logger.warn({ slotId: slot.id, pid }, 'ending a session holder PM2 no longer supervises');
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      await sleep(200);
    }
    try {
      unlinkSync(socket);
    } catch {
      // gone already
    }
  }

  /** Attaches to the slot's session (idempotent); a new session's socket is awaited. */
  open(slot: TerminalSlot, resume: boolean): SlotTerminal {
    const existing = this.terminals.get(slot.id);
    if (existing) return existing;
    const store = ScreenStore.open({
      dir: this.options.screenDir(slot.id),
      scrollbackLines: this.options.scrollbackLines,
      compactBytes: this.options.journalCompactBytes,
      maxReplayBytes: Math.max(8 << 20, this.options.journalCompactBytes * 2),
      initialSize: { cols: slot.cols, rows: slot.rows },
      label: slot.id,
      logger: this.options.logger,
      ...(this.options.storage ? { storage: this.options.storage } : {}),
    });
    const terminal = new SlotTerminal({
      slotId: slot.id,
      title: slot.name,
      socketPath: this.options.socketPath(slot.id),
      ...(this.options.beforeConnect ? { beforeConnect: () => this.options.beforeConnect!(slot.id) } : {}),
      store,
      logger: this.options.logger,
      resumeExisting: resume,
      onSizeChange: (size) => this.options.onSizeChange(slot.id, size),
      ...(this.options.onInput ? { onInput: this.options.onInput } : {}),
    });
    this.terminals.set(slot.id, terminal);
    terminal.start();
    return terminal;
  }

  /** The session is dtach, which PM2 supervises: it ends with the process. */
  endSession(): Promise<void> {
    return Promise.resolve();
  }

  get(id: string): SlotTerminal | undefined {
    return this.terminals.get(id);
  }

  isOpen(id: string): boolean {
    return this.terminals.has(id);
  }

  /** The slot stopped: close its clients and detach; its screen files stay for when it runs again. */
  async release(id: string, reason = 'slot stopped'): Promise<void> {
    const terminal = this.terminals.get(id);
    this.options.tickets.revokeSlot(id);
    if (!terminal) return;
    this.terminals.delete(id);
    await terminal.dispose(TerminalCloseCode.SLOT_GONE, reason);
  }

  /** The slot is deleted: release it and remove its screen files. */
  async forget(id: string): Promise<void> {
    await this.release(id, 'slot deleted');
    rmSync(this.options.screenDir(id), { recursive: true, force: true });
  }

  viewers(id: string): { writable: number; readOnly: number } {
    return this.terminals.get(id)?.viewers() ?? { writable: 0, readOnly: 0 };
  }

  lastActivity(id: string): number | null {
    return this.terminals.get(id)?.lastActivityAt ?? null;
  }

  disconnectLease(lease: string, reason: string): number {
    const ending: TerminalClient[] = [];
    for (const terminal of this.terminals.values())
      terminal.forEachClient((client) => {
        if (client.leases.includes(lease)) ending.push(client);
      });
    for (const client of ending) client.close(TerminalCloseCode.ACCESS_ENDED, reason);
    return ending.length;
  }

  leaseViewers(lease: string): number {
    let count = 0;
    for (const terminal of this.terminals.values())
      terminal.forEachClient((client) => {
        if (client.leases.includes(lease) && !client.isClosed) count += 1;
      });
    return count;
  }

  /** Recent output of a slot as text, for messages about why it ended. */
  recentText(id: string): string {
    return this.terminals.get(id)?.store.recentText() ?? '';
  }

  /**
   * Takes a client WebSocket. `auth.grant` comes from a ticket checked at the upgrade; without one, the opening
   * message's AuthToken must be a valid ticket for this slot (as ttyd's own client sends it) and for `auth.origin`.
   */
  accept(socket: WebSocket, slotId: string, auth: UpgradeAuth): void {
    if (this.closed) {
      socket.close(TerminalCloseCode.AGENT_RESTARTING, 'agent is shutting down');
      return;
    }
    awaitOpening(socket, slotId, auth, this.options.tickets, this.options.opening, (opening, effective) => {
      const terminal = this.terminals.get(slotId);
      if (!terminal) {
        socket.close(TerminalCloseCode.SLOT_GONE, 'the slot is not running');
        return;
      }
      const max = this.options.maxClientsPerSlot ?? DEFAULT_MAX_CLIENTS_PER_SLOT;
      let all = 0;
      let publicOnes = 0;
      terminal.forEachClient((client) => {
        if (client.isClosed) return;
        all += 1;
        if (client.audience === 'public') publicOnes += 1;
      });
      if (all >= max || (effective.audience === 'public' && publicOnes >= publicPlaces(max))) {
        socket.close(1013, 'too many clients on this slot; close one and try again');
        return;
      }
      if (effective.lease && effective.leaseLimit && this.leaseViewers(effective.lease) >= effective.leaseLimit) {
        socket.close(TerminalCloseCode.VIEWER_LIMIT, 'this link has as many viewers as it allows; try again later');
        return;
      }
      const client = new TerminalClient(
        socket,
        effective.mode,
        terminal,
        this.options.flowLimits ?? DEFAULT_FLOW_LIMITS,
      );
      client.leases = leasesOf(effective);
      client.audience = effective.audience;
      const onOutputSent = this.options.onOutputSent;
      if (onOutputSent) client.onSent = (bytes) => onOutputSent(slotId, bytes);
      terminal.addClient(client);
      client.start(opening);
    });
  }

  private checkHeartbeats(): void {
    for (const terminal of this.terminals.values()) {
      terminal.forEachClient((client) => {
        if (!client.alive) client.terminate();
        else client.ping();
      });
    }
  }

  /** Agent shutdown: clients are told the agent restarts, screens are folded into snapshots, slots keep running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.watcher?.close();
    const terminals = [...this.terminals.values()];
    this.terminals.clear();
    await Promise.all(
      terminals.map((terminal) =>
        terminal.dispose(TerminalCloseCode.AGENT_RESTARTING, 'agent restarting', { compact: true }),
      ),
    );
  }
}
