import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

/**
 * The client side of dtach's master socket (dtach 0.9, dtach.h). The client sends fixed 10-byte packets
 * `{type u8, len u8, payload[8]}`; the master sends the PTY's output as a plain byte stream. The master reads one
 * packet per read(2) without reassembly, so writes must stay whole packets: we never split one across writes.
 */
const enum Message {
  PUSH = 0,
  ATTACH = 1,
  DETACH = 2,
  WINCH = 3,
  REDRAW = 4,
}

export const enum RedrawMethod {
  NONE = 1,
  CTRL_L = 2,
  WINCH = 3,
}

export const PACKET_SIZE = 10;
const PAYLOAD_SIZE = 8;
/** Input is written in slices of whole packets small enough to land in the socket buffer in one piece. */
const MAX_WRITE_PACKETS = 400;

function packet(type: Message, len: number, payload?: Buffer): Buffer {
  const buf = Buffer.alloc(PACKET_SIZE);
  buf[0] = type;
  buf[1] = len;
  payload?.copy(buf, 2, 0, PAYLOAD_SIZE);
  return buf;
}

/** struct winsize {ws_row, ws_col, ws_xpixel, ws_ypixel} as native unsigned shorts (little-endian on our targets). */
function winsize(cols: number, rows: number): Buffer {
  const ws = Buffer.alloc(PAYLOAD_SIZE);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  return ws;
}

export function encodeInput(data: Buffer): Buffer {
  const count = Math.ceil(data.length / PAYLOAD_SIZE);
  const out = Buffer.alloc(count * PACKET_SIZE);
  for (let i = 0; i < count; i++) {
    const chunk = data.subarray(i * PAYLOAD_SIZE, (i + 1) * PAYLOAD_SIZE);
    out[i * PACKET_SIZE] = Message.PUSH;
    out[i * PACKET_SIZE + 1] = chunk.length;
    chunk.copy(out, i * PACKET_SIZE + 2);
  }
  return out;
}

export const encodeAttach = (): Buffer => packet(Message.ATTACH, 0);
export const encodeDetach = (): Buffer => packet(Message.DETACH, 0);
export const encodeResize = (cols: number, rows: number): Buffer => packet(Message.WINCH, 0, winsize(cols, rows));
/** Sets the size and asks the program to repaint (WINCH sends SIGWINCH to the terminal's foreground group). */
export const encodeRedraw = (method: RedrawMethod, cols: number, rows: number): Buffer =>
  packet(Message.REDRAW, method, winsize(cols, rows));

export interface DtachConnectionEvents {
  data: [Buffer];
  close: [];
}

/** One attached connection to a dtach master. Emits the PTY's output; `close` once when the master goes away. */
export class DtachConnection extends EventEmitter<DtachConnectionEvents> {
  private readonly pending: Buffer[] = [];
  private writing = false;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    super();
    socket.on('data', (chunk: Buffer) => this.emit('data', chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.emit('close');
    });
    socket.on('drain', () => this.flush());
  }

  /** Connects and attaches, so the master starts sending output. Rejects when nothing listens on `path`. */
  static connect(path: string, timeoutMs = 2000): Promise<DtachConnection> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`dtach socket ${path} did not accept within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay?.(true);
        const connection = new DtachConnection(socket);
        connection.send(encodeAttach());
        resolve(connection);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues bytes for the program's input, keeping packets whole and in order. */
  write(data: Buffer): void {
    if (data.length === 0) return;
    this.send(encodeInput(data));
  }

  resize(cols: number, rows: number): void {
    this.send(encodeResize(cols, rows));
  }

  redraw(method: RedrawMethod, cols: number, rows: number): void {
    this.send(encodeRedraw(method, cols, rows));
  }

  private send(packets: Buffer): void {
    if (this.closed) return;
    const sliceBytes = MAX_WRITE_PACKETS * PACKET_SIZE;
    for (let offset = 0; offset < packets.length; offset += sliceBytes) {
      this.pending.push(packets.subarray(offset, offset + sliceBytes));
    }
    this.flush();
  }

  private flush(): void {
    if (this.writing || this.closed) return;
    while (this.pending.length > 0) {
      const next = this.pending.shift()!;
      if (!this.socket.write(next)) {
        // Wait for the socket buffer to drain so the next slice lands whole.
        this.writing = true;
        this.socket.once('drain', () => {
          this.writing = false;
          this.flush();
        });
        return;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }
}
