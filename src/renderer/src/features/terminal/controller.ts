import { ClipboardAddon, type IClipboardProvider } from '@xterm/addon-clipboard';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal, type ITheme } from '@xterm/xterm';

/**
 * `stopped`: the slot is not running (the agent closed the socket with 4404, or would not issue a ticket); the
 * console waits for `reattach()`, which its view calls when the slot runs again.
 */
export type ConsoleState = 'connecting' | 'open' | 'reconnecting' | 'stopped';

export interface ConsoleStatus {
  state: ConsoleState;
  /** Why it is reconnecting or stopped, for the banner over the console. */
  message?: string;
  attempt?: number;
}

export interface TerminalControllerOptions {
  mode: 'writable' | 'read-only';
  /** A fresh terminal URL (with a single-use ticket) for each connection. */
  openUrl: () => Promise<string>;
  onStatus: (status: ConsoleStatus) => void;
  onTitle?: (title: string) => void;
  theme: ITheme;
  /** The slot's size, for read-only consoles (they show the terminal at the size the writer chose). */
  fixedSize?: { cols: number; rows: number } | undefined;
  /**
   * Keys the app handles (tab switching, new slot...): the terminal leaves them alone, so they reach the window's
   * listeners instead of being typed into the program (Ctrl+PageDown used to arrive in the shell as `6~`).
   */
  isAppKey?: (event: KeyboardEvent) => boolean;
  /**
   * The clipboard programs reach with OSC 52 (see ConsentClipboardProvider). Without one, they reach none: reads are
   * answered empty and writes dropped.
   */
  clipboard?: IClipboardProvider;
  WebSocketImpl?: typeof WebSocket;
}

const NO_CLIPBOARD: IClipboardProvider = { readText: () => '', writeText: () => undefined };

/** ttyd-style flow control: pause the agent above this many bytes written but not yet rendered, resume below LOW. */
const HIGH_WATER = 512 * 1024;
const LOW_WATER = 128 * 1024;
const encoder = new TextEncoder();

/**
 * One console: xterm.js, its addons, the terminal WebSocket (ttyd's protocol) and its reconnection. The React view
 * only mounts and unmounts it.
 */
export class TerminalController {
  readonly term: Terminal;
  private readonly fitAddon = new FitAddon();
  private readonly searchAddon = new SearchAddon();
  private socket: WebSocket | null = null;
  private disposed = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connecting = false;
  private unrendered = 0;
  private paused = false;
  private freshScreen = false;
  private status: ConsoleStatus = { state: 'connecting' };
  /** Times in a row the slot was found not running since the last open connection: paces `reattach()`. */
  private stopsInARow = 0;
  private fixedSize: { cols: number; rows: number } | undefined;
  private readonly resizeObserver: ResizeObserver | null;

  constructor(
    private readonly container: HTMLElement,
    private readonly options: TerminalControllerOptions,
  ) {
    this.term = new Terminal({
      cursorBlink: options.mode === 'writable',
      disableStdin: options.mode === 'read-only',
      fontFamily: 'ui-monospace, "JetBrains Mono", "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize: 13,
      lineHeight: 1.15,
      scrollback: 10_000,
      allowProposedApi: true,
      theme: options.theme,
      ...(options.fixedSize ? { cols: options.fixedSize.cols, rows: options.fixedSize.rows } : {}),
    });
    this.term.loadAddon(this.fitAddon);
    this.term.loadAddon(this.searchAddon);
    this.term.loadAddon(new WebLinksAddon((_event, uri) => window.open(uri, '_blank', 'noopener,noreferrer')));
    // OSC 52: programs in the slot (tmux, vim, Claude Code) can put text on this computer's clipboard, once the admin
    // allowed it; they never read it.
    this.term.loadAddon(new ClipboardAddon(undefined, options.clipboard ?? NO_CLIPBOARD));
    this.fixedSize = options.fixedSize;
    const isAppKey = options.isAppKey;
    if (isAppKey) this.term.attachCustomKeyEventHandler((event) => !isAppKey(event));
    this.term.open(container);
    this.fit();
    this.term.onData((data) => this.send(`0${data}`));
    // onBinary strings are bytes, one char each (mouse reports past column 95): sent as they are, since TextEncoder
    // would turn every byte above 127 into two.
    this.term.onBinary((data) => this.sendInputBytes(data));
    this.term.onResize(({ cols, rows }) => {
      if (this.options.mode === 'writable') this.send(`1${JSON.stringify({ columns: cols, rows })}`);
      // The screen element takes its new size when the renderer next draws: scale it then.
      else requestAnimationFrame(() => this.fit());
    });
    this.resizeObserver = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => this.fit());
    this.resizeObserver?.observe(container);
    void this.connect();
  }

  get currentStatus(): ConsoleStatus {
    return this.status;
  }

  private setStatus(status: ConsoleStatus): void {
    this.status = status;
    this.options.onStatus(status);
  }

  fit(): void {
    if (this.disposed || !this.container.isConnected || this.container.clientWidth === 0) return;
    if (this.fixedSize) {
      this.scaleToFit();
      return;
    }
    try {
      this.fitAddon.fit();
    } catch {
      // not laid out yet
    }
  }

  /**
   * A read-only console keeps the writer's size (the program draws for it). Where that is larger than the box, the
   * terminal is scaled down to fit, so it neither spills over the status bar nor hides its right or bottom edge.
   */
  private scaleToFit(): void {
    const element = this.term.element;
    const screen = element?.querySelector<HTMLElement>('.xterm-screen');
    if (!element || !screen || screen.offsetWidth === 0) return;
    const style = getComputedStyle(this.container);
    const room = {
      width: this.container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
      height: this.container.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom),
    };
    const scale = Math.min(1, room.width / screen.offsetWidth, room.height / screen.offsetHeight);
    element.style.width = `${screen.offsetWidth}px`;
    element.style.height = `${screen.offsetHeight}px`;
    element.style.transformOrigin = '0 0';
    element.style.transform = scale < 1 ? `scale(${scale})` : '';
  }

  /** The writer changed the slot's size: a read-only console follows it. */
  setFixedSize(size: { cols: number; rows: number }): void {
    if (!this.fixedSize || this.disposed) return;
    if (size.cols === this.fixedSize.cols && size.rows === this.fixedSize.rows) return;
    this.fixedSize = size;
    this.term.resize(size.cols, size.rows);
    this.fit();
  }

  focus(): void {
    this.term.focus();
  }

  setTheme(theme: ITheme): void {
    this.term.options.theme = theme;
  }

  find(text: string, direction: 'next' | 'previous' = 'next'): boolean {
    return direction === 'next' ? this.searchAddon.findNext(text) : this.searchAddon.findPrevious(text);
  }

  clearFind(): void {
    this.searchAddon.clearDecorations();
  }

  /**
   * The slot runs again (started, restarted): attach to its new session. Does nothing unless the console is stopped.
   * Called again while the slot is still found stopped (a stale slot list), it waits longer each time.
   */
  reattach(): void {
    if (this.disposed || this.status.state !== 'stopped' || this.retryTimer) return;
    const delay = this.stopsInARow <= 1 ? 0 : Math.min(5000, 300 * 2 ** Math.min(this.stopsInARow - 2, 5));
    this.attempt = 0;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  /** Tries again now (a host came back) instead of waiting out the backoff; does nothing unless a retry is pending. */
  retryNow(): void {
    if (this.disposed || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.connect();
  }

  private async connect(): Promise<void> {
    // One connection at a time: a second socket would write every byte of output twice.
    if (this.disposed || this.connecting || this.socket) return;
    this.connecting = true;
    try {
      await this.openSocket();
    } finally {
      this.connecting = false;
    }
  }

  private async openSocket(): Promise<void> {
    this.setStatus({
      state: this.attempt === 0 ? 'connecting' : 'reconnecting',
      ...(this.attempt ? { attempt: this.attempt } : {}),
      ...(this.status.message ? { message: this.status.message } : {}),
    });
    let url: string;
    try {
      url = await this.options.openUrl();
    } catch (error) {
      if ((error as { code?: unknown }).code === 'SLOT_NOT_RUNNING') this.stopped();
      else this.scheduleRetry((error as Error).message);
      return;
    }
    if (this.disposed) return;
    const WebSocketImpl = this.options.WebSocketImpl ?? WebSocket;
    const socket = new WebSocketImpl(url, ['tty']);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => {
      const { cols, rows } = this.term;
      socket.send(encoder.encode(JSON.stringify({ AuthToken: '', columns: cols, rows })));
      this.freshScreen = true;
      this.unrendered = 0;
      this.paused = false;
    };
    socket.onmessage = (event: MessageEvent<ArrayBuffer>) => this.receive(new Uint8Array(event.data));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.disposed) return;
      if (event.code === 4404) {
        this.stopped();
        return;
      }
      const why =
        event.code === 4503
          ? 'The agent is restarting; reconnecting.'
          : this.status.state === 'open'
            ? 'The connection to the slot dropped; reconnecting.'
            : event.reason || 'Could not reach the slot; retrying.';
      this.scheduleRetry(why);
    };
  }

  private receive(data: Uint8Array): void {
    const command = data[0];
    const payload = data.subarray(1);
    if (command === 0x30) {
      if (this.freshScreen) {
        // Each connection starts with the whole screen replayed: drop what the previous connection showed.
        this.freshScreen = false;
        this.term.reset();
        this.attempt = 0;
        this.stopsInARow = 0;
        this.setStatus({ state: 'open' });
      }
      this.unrendered += payload.length;
      this.term.write(payload, () => {
        this.unrendered -= payload.length;
        if (this.paused && this.unrendered < LOW_WATER) {
          this.paused = false;
          this.send('3');
        }
      });
      if (!this.paused && this.unrendered > HIGH_WATER) {
        this.paused = true;
        this.send('2');
      }
    } else if (command === 0x31) {
      this.options.onTitle?.(new TextDecoder().decode(payload));
    }
  }

  private sendInputBytes(data: string): void {
    const frame = new Uint8Array(data.length + 1);
    frame[0] = 0x30; // ttyd's INPUT command, '0'
    for (let i = 0; i < data.length; i++) frame[i + 1] = data.charCodeAt(i) & 0xff;
    this.sendFrame(frame);
  }

  private send(message: string): void {
    this.sendFrame(encoder.encode(message));
  }

  private sendFrame(frame: Uint8Array): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    if (frame[0] === 0x30 && this.options.mode !== 'writable') return;
    this.socket.send(frame);
  }

  private stopped(): void {
    this.stopsInARow += 1;
    this.setStatus({ state: 'stopped', message: 'The slot is not running.' });
  }

  private scheduleRetry(message: string): void {
    if (this.disposed) return;
    this.attempt += 1;
    const delay = Math.min(5000, 300 * 2 ** Math.min(this.attempt - 1, 5));
    this.setStatus({ state: 'reconnecting', attempt: this.attempt, message });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  dispose(): void {
    this.disposed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.resizeObserver?.disconnect();
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'closed');
    this.term.dispose();
  }
}
