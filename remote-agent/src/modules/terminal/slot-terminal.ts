import type { Logger } from 'pino';
import { TerminalCloseCode } from '../../contract/index.js';
import type { TerminalClient, OutputPiece, TerminalSession } from './client.js';
import { DtachConnection, RedrawMethod } from './dtach.js';
import { typedInput } from '../idle/activity.js';
import { containsQuery, splitReports } from './reports.js';
import type { ScreenSize, ScreenSnapshot, ScreenStore } from './screen-store.js';

/** How long after a query in the output only the lead client's reports reach the program. */
const QUERY_FRESH_MS = 2000;
const RETRY_DELAYS_MS = [10, 20, 40, 80, 160, 320, 640, 1000];

/**
 * Written into the screen when a new session of the slot's program starts: undo modes a crashed full-screen
 * program may have left on (alternate screen, hidden cursor, mouse reporting, bracketed paste), keep the history.
 * It leaves the alternate screen with 1047, not 1049, which would also restore a stale saved cursor position.
 */
const NEW_SESSION_MARK = Buffer.from(
  '\x1b[!p\x1b[?1047l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[0m\r\n\x1b[2m[slotdeck] new session started\x1b[0m\r\n',
);

export interface SlotTerminalOptions {
  slotId: string;
  title: string;
  socketPath: string;
  /** Runs before each attempt to connect; throws when the socket must not be used. */
  beforeConnect?: () => void;
  store: ScreenStore;
  logger: Logger;
  /** The program may have run while no agent was attached: ask it to repaint after attaching. */
  resumeExisting: boolean;
  onSizeChange: (size: ScreenSize) => void;
  /** Told when a client's input reaches the program. */
  onInput?: () => void;
}

/**
 * The agent's side of one running slot: stays attached to the slot's dtach session, records everything into the
 * screen store and fans output out to the attached clients.
 */
export class SlotTerminal implements TerminalSession {
  private connection: DtachConnection | null = null;
  private connecting = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryIndex = 0;
  private sessions = 0;
  private readonly clients = new Set<TerminalClient>();
  private pending: OutputPiece[] = [];
  private flushScheduled = false;
  private lead: TerminalClient | null = null;
  private queryFreshUntil = 0;
  private disposed = false;
  lastActivityAt: number | null = null;

  constructor(private readonly options: SlotTerminalOptions) {
    // The journal started afresh after output went unrecorded (a full disk): have the program repaint its screen.
    options.store.onJournalRestarted = () => {
      const { cols, rows } = options.store.currentSize;
      this.connection?.redraw(RedrawMethod.WINCH, cols, rows);
    };
  }

  get title(): string {
    return this.options.title;
  }

  get attached(): boolean {
    return this.connection !== null;
  }

  get store(): ScreenStore {
    return this.options.store;
  }

  /** Begins (or keeps) trying to attach to the slot's session. */
  start(): void {
    void this.connect();
  }

  /** The session's socket may have appeared: try now instead of waiting for the next retry. */
  poke(): void {
    if (this.connection || this.connecting || this.disposed) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.connection || this.connecting || this.disposed) return;
    this.connecting = true;
    try {
      this.options.beforeConnect?.();
      const connection = await DtachConnection.connect(this.options.socketPath);
      if (this.disposed) {
        connection.close();
        return;
      }
      this.onAttached(connection);
    } catch {
      this.scheduleRetry();
    } finally {
      this.connecting = false;
    }
  }

  private scheduleRetry(): void {
    if (this.disposed || this.retryTimer) return;
    const delay = RETRY_DELAYS_MS[Math.min(this.retryIndex, RETRY_DELAYS_MS.length - 1)]!;
    this.retryIndex += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  private onAttached(connection: DtachConnection): void {
    this.connection = connection;
    this.retryIndex = 0;
    this.sessions += 1;
    const { cols, rows } = this.options.store.currentSize;
    connection.on('data', (chunk) => this.onOutput(chunk));
    connection.on('close', () => this.onSessionEnded());
    if (this.sessions === 1 && this.options.resumeExisting) {
      // Output the program wrote while no agent listened is not in the journal: have it repaint.
      connection.redraw(RedrawMethod.WINCH, cols, rows);
      this.options.logger.info({ slotId: this.options.slotId }, 'reattached to running slot session');
    } else {
      // A screen with history gets the mark too: a new agent starting a session after a power cut (or a start after
      // a stop) shows the old screen from the journal above the new session.
      if (this.sessions > 1 || this.options.store.openedWithHistory) this.onOutput(NEW_SESSION_MARK);
      // Setting the size also releases the slot launcher, which waits for it before starting the program.
      connection.resize(cols, rows);
    }
  }

  private onSessionEnded(): void {
    this.connection = null;
    if (this.disposed) return;
    // PM2 starts the program again; attach to the new session when its socket appears.
    this.scheduleRetry();
  }

  private onOutput(chunk: Buffer): void {
    this.lastActivityAt = Date.now();
    if (this.clients.size === 0) {
      this.options.store.appendOutput(chunk);
      return;
    }
    if (this.writableClients() >= 2 && containsQuery(chunk)) this.queryFreshUntil = Date.now() + QUERY_FRESH_MS;
    this.pending.push({ seq: this.options.store.nextOutputSeq(chunk.length), data: chunk });
    if (!this.flushScheduled) {
      // The first output after a quiet spell goes out at once (a keystroke's echo should not wait); what follows in
      // the same turn of the event loop is batched into one frame per client.
      this.flush();
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    // Journaled right after it is handed to the sockets, so the disk write overlaps the network send. Both happen
    // in this same turn of the event loop, so a client syncing a screen never sees the two disagree.
    this.options.store.appendOutput(chunk);
  }

  private flush(): void {
    const pieces = this.pending;
    this.pending = [];
    if (pieces.length === 0) return;
    for (const client of this.clients) client.deliver(pieces);
  }

  private writableClients(): number {
    let count = 0;
    for (const client of this.clients) if (client.mode === 'writable') count += 1;
    return count;
  }

  addClient(client: TerminalClient): void {
    this.clients.add(client);
    if (client.mode === 'writable' && !this.lead) this.lead = client;
  }

  detach(client: TerminalClient): void {
    this.clients.delete(client);
    if (this.lead === client) this.lead = [...this.clients].find((other) => other.mode === 'writable') ?? null;
  }

  input(client: TerminalClient, data: Buffer): void {
    if (client.mode !== 'writable' || this.disposed) return;
    let bytes = data;
    if (this.writableClients() >= 2) {
      const { typed, reportCount } = splitReports(data);
      // Only the client at the keyboard answers a fresh query; the others' answers would reach the program twice.
      if (reportCount > 0 && client !== this.lead && Date.now() < this.queryFreshUntil) bytes = typed;
      if (typed.length > 0) this.lead = client;
    } else {
      this.lead = client;
    }
    if (bytes.length === 0) return;
    this.lastActivityAt = Date.now();
    // Reports a terminal sends by itself are no sign of a person: only typed bytes keep the host awake.
    if (typedInput(bytes)) this.options.onInput?.();
    this.connection?.write(bytes);
  }

  resize(client: TerminalClient, size: ScreenSize): void {
    if (client.mode !== 'writable' || this.disposed) return;
    const current = this.options.store.currentSize;
    if (current.cols === size.cols && current.rows === size.rows) return;
    // Recorded in line with the output, so a replay reflows exactly as the program saw it.
    this.options.store.appendResize(size);
    this.connection?.resize(size.cols, size.rows);
    this.options.onSizeChange(size);
  }

  snapshot(): Promise<ScreenSnapshot> {
    return this.options.store.snapshot();
  }

  viewers(): { writable: number; readOnly: number } {
    const writable = this.writableClients();
    return { writable, readOnly: this.clients.size - writable };
  }

  forEachClient(visit: (client: TerminalClient) => void): void {
    for (const client of this.clients) visit(client);
  }

  /** Closes every client with `code`, detaches from the session (which keeps running) and closes the store. */
  async dispose(
    code: number = TerminalCloseCode.SLOT_GONE,
    reason = 'slot stopped',
    options: { compact?: boolean } = {},
  ): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const client of [...this.clients]) client.close(code, reason);
    this.clients.clear();
    this.connection?.close();
    this.connection = null;
    if (options.compact) await this.options.store.closeGracefully();
    else this.options.store.close();
  }
}
