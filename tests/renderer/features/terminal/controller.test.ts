import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConsoleStatus } from '../../../../src/renderer/src/features/terminal/controller';

/**
 * The console's controller over real xterm.js (its headless build: the unit project has no DOM) and a fake WebSocket
 * that plays the agent's side of ttyd's protocol. What it checks is what a user notices: output that outruns the
 * screen pauses the agent and resumes it, a dropped connection comes back with a fresh ticket and one copy of the
 * screen, and mouse reports past column 95 reach the program as the bytes xterm made.
 */

// The addons' bundles are built for browsers, where `self` is the window.
vi.hoisted(() => {
  (globalThis as { self?: unknown }).self ??= globalThis;
});

/** What happened, in order: frames the console sent (`sent:<command>`), chunks xterm finished (`rendered:<n>`). */
const events: string[] = [];

vi.mock('@xterm/xterm', async () => {
  const { default: headless } = await import('@xterm/headless');
  let written = 0;
  /** xterm's browser Terminal minus the DOM: the same parser, buffer, input events and write callbacks. */
  class Terminal extends headless.Terminal {
    element: HTMLElement | undefined = undefined;
    open(): void {}
    focus(): void {}
    attachCustomKeyEventHandler(): void {}
    override write(data: string | Uint8Array, callback?: () => void): void {
      const chunk = ++written;
      super.write(data, () => {
        events.push(`rendered:${chunk}`);
        callback?.();
      });
    }
  }
  return { Terminal };
});
// Fit, search and links need a rendered screen; none of them takes part in the protocol.
vi.mock('@xterm/addon-fit', () => ({
  FitAddon: class {
    activate(): void {}
    dispose(): void {}
    fit(): void {}
  },
}));
vi.mock('@xterm/addon-search', () => ({
  SearchAddon: class {
    activate(): void {}
    dispose(): void {}
  },
}));
vi.mock('@xterm/addon-web-links', () => ({
  WebLinksAddon: class {
    activate(): void {}
    dispose(): void {}
  },
}));

const { TerminalController } = await import('../../../../src/renderer/src/features/terminal/controller');

/** A WebSocket the test drives as the agent would. */
class FakeSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static all: FakeSocket[] = [];
  readyState = FakeSocket.CONNECTING;
  binaryType = 'blob';
  readonly sent: Uint8Array[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.all.push(this);
  }

  send(data: Uint8Array): void {
    this.sent.push(new Uint8Array(data));
    events.push(`sent:${String.fromCharCode(data[0]!)}`);
  }

  close(): void {
    this.readyState = FakeSocket.CLOSED;
  }

  /** The agent accepted the connection. */
  accept(): void {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }

  /** The agent sends program output (ttyd's OUTPUT command, '0'). */
  output(bytes: Uint8Array | string): void {
    const payload = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
    const frame = new Uint8Array(payload.length + 1);
    frame[0] = 0x30;
    frame.set(payload, 1);
    this.onmessage?.({ data: frame.buffer });
  }

  drop(code = 1006): void {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code, reason: '' });
  }

  /** The frames the console sent with this command, without the command byte. */
  frames(command: string): number[][] {
    return this.sent.filter((frame) => frame[0] === command.charCodeAt(0)).map((frame) => [...frame.subarray(1)]);
  }
}

const container = { isConnected: false, clientWidth: 0 } as unknown as HTMLElement;
const controllers: Array<InstanceType<typeof TerminalController>> = [];

function console_(mode: 'writable' | 'read-only' = 'writable') {
  const statuses: ConsoleStatus[] = [];
  let tickets = 0;
  const openUrl = vi.fn(() => Promise.resolve(`ws://agent.test/api/v1/slots/s1/terminal?ticket=t${++tickets}`));
  const controller = new TerminalController(container, {
    mode,
    openUrl,
    onStatus: (status) => statuses.push(status),
    theme: {},
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
  });
  controllers.push(controller);
  return { controller, statuses, openUrl };
}

/** The socket the console opened once its URL came (openUrl is async). */
async function nextSocket(count: number): Promise<FakeSocket> {
  await vi.waitFor(() => expect(FakeSocket.all).toHaveLength(count));
  return FakeSocket.all[count - 1]!;
}

/** Every line xterm holds, scrollback included. */
function screenText(controller: InstanceType<typeof TerminalController>): string {
  const buffer = controller.term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y)!.translateToString(true));
  return lines.join('\n');
}

const rendered = (controller: InstanceType<typeof TerminalController>): Promise<void> =>
  new Promise((resolve) => controller.term.write('', resolve));

beforeEach(() => {
  events.length = 0;
  FakeSocket.all = [];
  // The controller checks readyState against the page's WebSocket constants.
  vi.stubGlobal('WebSocket', FakeSocket);
});

afterEach(() => {
  for (const controller of controllers.splice(0)) controller.dispose();
  vi.unstubAllGlobals();
});

describe('TerminalController flow control', () => {
  it('pauses the agent once more than 512 KiB wait to be drawn, and resumes it below 128 KiB', async () => {
    console_();
    const socket = await nextSocket(1);
    socket.accept();
    const chunk = new Uint8Array(64 * 1024).fill(0x61); // 64 KiB of 'a'
    // Nine chunks arrive before xterm draws any: 8 × 64 KiB is exactly the high mark, the ninth is past it.
    for (let i = 1; i <= 9; i++) {
      socket.output(chunk);
      events.push(`received:${i}`);
    }
    await vi.waitFor(() => expect(events).toContain('rendered:9'));
    await vi.waitFor(() => expect(events).toContain('sent:3'));
    const flow = events.filter((event) => !event.startsWith('sent:{'));
    // The pause goes out with the ninth chunk, not before.
    expect(flow.indexOf('sent:2')).toBe(flow.indexOf('received:9') - 1);
    expect(flow.indexOf('received:8')).toBe(flow.indexOf('sent:2') - 1);
    expect(flow.slice(0, flow.indexOf('sent:2'))).not.toContain('sent:3');
    // 576 KiB waiting: after the seventh chunk is drawn 128 KiB still wait (not below the low mark); after the
    // eighth, 64 KiB: the resume goes out right then.
    expect(flow.indexOf('sent:3')).toBe(flow.indexOf('rendered:8') + 1);
    expect(flow.filter((event) => event === 'sent:2')).toHaveLength(1);
    expect(flow.filter((event) => event === 'sent:3')).toHaveLength(1);
    expect(socket.frames('2')).toEqual([[]]);
    expect(socket.frames('3')).toEqual([[]]);
  });

  it('never pauses output that xterm keeps up with', async () => {
    const { controller } = console_();
    const socket = await nextSocket(1);
    socket.accept();
    for (let i = 0; i < 20; i++) {
      socket.output(new Uint8Array(100 * 1024).fill(0x62));
      await rendered(controller);
    }
    expect(socket.frames('2')).toEqual([]);
    expect(socket.frames('3')).toEqual([]);
  });
});

describe('TerminalController reconnection', () => {
  it('reconnects with a new ticket and shows the replayed screen once', async () => {
    const { controller, statuses, openUrl } = console_();
    const first = await nextSocket(1);
    expect(first.protocols).toEqual(['tty']);
    first.accept();
    // The handshake: ttyd's JSON with the terminal's size.
    expect(JSON.parse(new TextDecoder().decode(first.sent[0]))).toEqual({
      AuthToken: '',
      columns: controller.term.cols,
      rows: controller.term.rows,
    });
    // The agent starts every connection with the whole screen (as its screen store serializes it, no clearing).
    const screen = '$ echo first-session\r\nfirst-session\r\n$ ';
    first.output(screen);
    await rendered(controller);
    expect(statuses.at(-1)).toEqual({ state: 'open' });

    first.drop(1006);
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1 });
    expect(statuses.at(-1)?.message).toMatch(/dropped/);
    const second = await nextSocket(2);
    expect(openUrl).toHaveBeenCalledTimes(2);
    // Tickets are single use: the second connection asked for its own.
    expect(new URL(first.url).searchParams.get('ticket')).toBe('t1');
    expect(new URL(second.url).searchParams.get('ticket')).toBe('t2');
    second.accept();
    second.output(`${screen}echo again\r\nagain\r\n$ `);
    await rendered(controller);

    const text = screenText(controller);
    expect(text.match(/echo first-session/g)).toHaveLength(1);
    expect(text).toContain('again');
    expect(statuses.at(-1)).toEqual({ state: 'open' });
    // Typing goes to the new connection only.
    controller.term.input('ls\r');
    expect(second.frames('0').map((bytes) => String.fromCharCode(...bytes))).toEqual(['ls\r']);
    expect(first.frames('0')).toEqual([]);
  });

  it('waits while the slot is stopped, then attaches with another ticket when it runs again', async () => {
    const { controller, statuses, openUrl } = console_();
    const first = await nextSocket(1);
    first.accept();
    first.output('before stop\r\n');
    await rendered(controller);
    first.drop(4404);
    expect(statuses.at(-1)).toEqual({ state: 'stopped', message: 'The slot is not running.' });
    // No retry of its own while stopped.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(openUrl).toHaveBeenCalledTimes(1);

    controller.reattach();
    const second = await nextSocket(2);
    expect(new URL(second.url).searchParams.get('ticket')).toBe('t2');
    second.accept();
    second.output('after start\r\n');
    await rendered(controller);
    // A new session's screen replaces the old one.
    const text = screenText(controller);
    expect(text).toContain('after start');
    expect(text).not.toContain('before stop');
    expect(statuses.at(-1)).toEqual({ state: 'open' });
  });
});

describe('TerminalController input', () => {
  // A mouse press at column 201, row 33 in X10 encoding: each coordinate is one byte, 32 + position.
  const mouseReport = `\x1b[M\x20${String.fromCharCode(32 + 201)}${String.fromCharCode(32 + 33)}`;

  it('sends binary input (mouse reports past column 95) as the bytes xterm made, one per character', async () => {
    const { controller } = console_();
    const socket = await nextSocket(1);
    socket.accept();
    // xterm fires onBinary for these reports; its core is where the mouse service hands them over.
    (
      controller.term as unknown as { _core: { coreService: { triggerBinaryEvent(data: string): void } } }
    )._core.coreService.triggerBinaryEvent(mouseReport);
    expect(socket.frames('0')).toEqual([[0x1b, 0x5b, 0x4d, 0x20, 233, 65]]);
  });

  it('sends typed text as UTF-8', async () => {
    const { controller } = console_();
    const socket = await nextSocket(1);
    socket.accept();
    controller.term.input('é✓');
    expect(socket.frames('0')).toEqual([[0xc3, 0xa9, 0xe2, 0x9c, 0x93]]);
  });

  it('sends no input of either kind from a read-only console', async () => {
    const { controller } = console_('read-only');
    const socket = await nextSocket(1);
    socket.accept();
    controller.term.input('rm -rf /\r');
    (
      controller.term as unknown as { _core: { coreService: { triggerBinaryEvent(data: string): void } } }
    )._core.coreService.triggerBinaryEvent(mouseReport);
    expect(socket.frames('0')).toEqual([]);
    // It still says hello with its size, so the agent knows it is there.
    expect(socket.sent).toHaveLength(1);
  });
});
