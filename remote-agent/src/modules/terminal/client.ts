import type { WebSocket } from 'ws';
import { ClientCommand, ServerCommand, TerminalSize, type TerminalMode } from '../../contract/index.js';
import type { ScreenSnapshot, ScreenSize } from './screen-store.js';

/** Output as recorded: `seq` is the screen journal's sequence number at the end of `data`. */
export interface OutputPiece {
  seq: number;
  data: Buffer;
}

/** What a client needs from the slot it watches. */
export interface TerminalSession {
  readonly title: string;
  snapshot(): Promise<ScreenSnapshot>;
  input(client: TerminalClient, data: Buffer): void;
  resize(client: TerminalClient, size: ScreenSize): void;
  detach(client: TerminalClient): void;
}

export interface FlowLimits {
  /** Stop sending once this much is handed to the socket but not yet written out. */
  highWaterBytes: number;
  /** Resume sending (or resync) below this. */
  lowWaterBytes: number;
  /** Output held for a stalled or paused client before it is dropped in favour of a fresh screen later. */
  maxQueuedBytes: number;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = {
  highWaterBytes: 1 << 20,
  lowWaterBytes: 256 << 10,
  maxQueuedBytes: 4 << 20,
};

const OUTPUT = Buffer.from(ServerCommand.OUTPUT);
/** Clears screen and scrollback before a fresh copy of the screen replaces what a lagging client had. */
const RESET_SCREEN = Buffer.from('\x1bc\x1b[3J');

/**
 * One WebSocket watching a slot, speaking ttyd's protocol. Output reaches it through `deliver`; a client that
 * cannot keep up (or says PAUSE) gets its output queued up to a bound, beyond which the queue is dropped and the
 * client later receives a fresh copy of the screen instead. So a slow client costs bounded memory and never
 * holds back the program or the other clients.
 */
export class TerminalClient {
  private queue: OutputPiece[] = [];
  private queuedBytes = 0;
  private inFlightBytes = 0;
  private paused = false;
  private syncing = false;
  private needsResync = false;
  private closed = false;
  alive = true;
  /** The leases of the ticket it opened with (`share:<id>`, `session:<id>`), for disconnectLease. */
  leases: string[] = [];
  /** Which route it came in on: public viewers get fewer of a slot's places (the admin and owner keep some). */
  audience: 'admin' | 'public' = 'admin';
  /** Told the size of each frame once the socket has written it (terminal bytes out, for metrics). */
  onSent: ((bytes: number) => void) | null = null;

  constructor(
    private readonly socket: WebSocket,
    readonly mode: TerminalMode,
    private readonly session: TerminalSession,
    private readonly limits: FlowLimits = DEFAULT_FLOW_LIMITS,
  ) {
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.onMessage(toBuffer(data)));
    socket.on('close', () => this.onClosed());
    socket.on('error', () => this.onClosed());
    socket.on('pong', () => {
      this.alive = true;
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Starts the conversation after the opening message: size, title, preferences, then the screen. */
  start(opening: { columns?: unknown; rows?: unknown }): void {
    if (this.mode === 'writable') {
      const size = TerminalSize.safeParse({ cols: opening.columns, rows: opening.rows });
      if (size.success) this.session.resize(this, size.data);
    }
    this.sendFrame(Buffer.concat([Buffer.from(ServerCommand.SET_WINDOW_TITLE), Buffer.from(this.session.title)]));
    this.sendFrame(Buffer.concat([Buffer.from(ServerCommand.SET_PREFERENCES), Buffer.from('{}')]));
    void this.sync(false);
  }

  deliver(pieces: OutputPiece[]): void {
    if (this.closed || this.needsResync) return;
    for (const piece of pieces) {
      this.queue.push(piece);
      this.queuedBytes += piece.data.length;
    }
    if (this.queuedBytes > this.limits.maxQueuedBytes) {
      this.queue = [];
      this.queuedBytes = 0;
      this.needsResync = true;
    }
    this.pump();
  }

  private pump(): void {
    if (this.closed || this.syncing || this.paused) return;
    if (this.needsResync) {
      if (this.inFlightBytes <= this.limits.lowWaterBytes) void this.sync(true);
      return;
    }
    if (this.queue.length === 0 || this.inFlightBytes >= this.limits.highWaterBytes) return;
    const pieces = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.sendFrame(Buffer.concat([OUTPUT, ...pieces.map((piece) => piece.data)]));
  }

  /** Sends the screen as it is now, then only what comes after it. */
  private async sync(reset: boolean): Promise<void> {
    this.syncing = true;
    this.needsResync = false;
    let snapshot: ScreenSnapshot;
    try {
      snapshot = await this.session.snapshot();
    } catch {
      this.close(1011, 'could not read the screen');
      return;
    }
    if (this.closed) return;
    this.sendFrame(
      Buffer.concat(reset ? [OUTPUT, RESET_SCREEN, Buffer.from(snapshot.data)] : [OUTPUT, Buffer.from(snapshot.data)]),
    );
    // Output that arrived while the snapshot was taken is either inside it or after it.
    this.queue = this.queue.filter((piece) => piece.seq > snapshot.seq);
    this.queuedBytes = this.queue.reduce((sum, piece) => sum + piece.data.length, 0);
    this.syncing = false;
    this.pump();
  }

  private sendFrame(frame: Buffer): void {
    if (this.closed) return;
    this.inFlightBytes += frame.length;
    this.socket.send(frame, { binary: true }, () => {
      this.inFlightBytes -= frame.length;
      this.onSent?.(frame.length);
      this.pump();
    });
  }

  private onMessage(message: Buffer): void {
    if (this.closed || message.length === 0) return;
    const command = String.fromCharCode(message[0]!);
    const payload = message.subarray(1);
    switch (command) {
      case ClientCommand.INPUT:
        if (this.mode === 'writable') this.session.input(this, payload);
        return;
      case ClientCommand.RESIZE: {
        if (this.mode !== 'writable') return;
        const parsed = parseJson(payload);
        const size = TerminalSize.safeParse({ cols: parsed?.columns, rows: parsed?.rows });
        if (size.success) this.session.resize(this, size.data);
        return;
      }
      case ClientCommand.PAUSE:
        this.paused = true;
        return;
      case ClientCommand.RESUME:
        this.paused = false;
        this.pump();
        return;
      default:
      // Like ttyd, ignore commands we do not know.
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.onClosed();
    this.socket.close(code, reason);
  }

  terminate(): void {
    this.onClosed();
    this.socket.terminate();
  }

  ping(): void {
    if (this.closed) return;
    this.alive = false;
    this.socket.ping();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.session.detach(this);
  }
}

export function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export function parseJson(payload: Buffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
