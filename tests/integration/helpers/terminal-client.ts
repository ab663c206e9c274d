import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

/** A text waited for, matched piece by piece as output arrives. */
interface TextWatcher {
  text: string;
  /** The end of what came before, so that a text split across two pieces is found. */
  carry: string;
  found: boolean;
}

/** A ttyd-protocol client, as ttyd's web client speaks it: opening JSON, then command-prefixed frames. */
export class TerminalTestClient {
  output = '';
  titles: string[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly watchers = new Set<TextWatcher>();
  private constructor(readonly socket: WebSocket) {}

  private received(text: string): void {
    this.output += text;
    for (const watcher of this.watchers) {
      if (watcher.found) continue;
      const window = watcher.carry + text;
      watcher.found = window.includes(watcher.text);
      watcher.carry = watcher.text.length > 1 ? window.slice(1 - watcher.text.length) : '';
    }
  }

  static async open(
    url: string,
    opening: Record<string, unknown> = { AuthToken: '', columns: 100, rows: 30 },
    options: { binaryOpening?: boolean; origin?: string; sendOpening?: boolean } = {},
  ): Promise<TerminalTestClient> {
    const socket = new WebSocket(url, ['tty'], options.origin ? { origin: options.origin } : {});
    const client = new TerminalTestClient(socket);
    socket.on('message', (data: Buffer) => {
      const command = String.fromCharCode(data[0]!);
      if (command === '0') client.received(data.subarray(1).toString('utf8'));
      if (command === '1') client.titles.push(data.subarray(1).toString('utf8'));
    });
    socket.on('close', (code, reason) => {
      client.closed = { code, reason: reason.toString() };
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    if (options.sendOpening === false) return client;
    const text = JSON.stringify(opening);
    socket.send(options.binaryOpening === false ? text : Buffer.from(text));
    return client;
  }

  type(text: string): void {
    this.socket.send(Buffer.from(`0${text}`));
  }

  resize(columns: number, rows: number): void {
    this.socket.send(Buffer.from(`1${JSON.stringify({ columns, rows })}`));
  }

  /** The output as a person reads it: escape sequences removed. */
  get text(): string {
    return stripAnsi(this.output);
  }

  /** Waits until the output ends at a shell prompt (`$ ` or `# `), whatever modes the shell set after it. */
  async waitForPrompt(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!/[#$] $/.test(this.text)) {
      if (Date.now() > deadline) throw new Error(`no prompt; got:\n${JSON.stringify(this.text.slice(-500))}`);
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for a prompt`);
      await sleep(20);
    }
  }

  async waitFor(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    // A text is looked for once in what came so far, then in each piece as it arrives (with the end of the one before):
    // scanning tens of MB of output every 20 ms took the CPU the agent under test needed on a loaded machine.
    let watcher: TextWatcher | null = null;
    if (typeof pattern === 'string' && !this.output.includes(pattern)) {
      watcher = { text: pattern, carry: '', found: false };
      this.watchers.add(watcher);
    }
    const matches = (): boolean =>
      typeof pattern !== 'string' ? pattern.test(this.output) : watcher === null || watcher.found;
    try {
      return await this.poll(pattern, deadline, matches);
    } finally {
      if (watcher) this.watchers.delete(watcher);
    }
  }

  private async poll(pattern: RegExp | string, deadline: number, matches: () => boolean): Promise<string> {
    while (!matches()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${String(pattern)}; got:\n${JSON.stringify(this.output.slice(-2000))}`);
      if (this.closed)
        throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for ${String(pattern)}`);
      await sleep(20);
    }
    return this.output;
  }

  async waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await sleep(20);
    }
    return this.closed;
  }

  close(): void {
    this.socket.close();
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
export const stripAnsi = (text: string): string => text.replace(ANSI, '');

/** Status of a WebSocket upgrade that the server refused (or 101). */
export async function upgradeStatus(url: string, origin?: string): Promise<{ status: number; body: string }> {
  const socket = new WebSocket(url, ['tty'], origin ? { origin } : {});
  return new Promise((resolve) => {
    socket.once('open', () => {
      socket.close();
      resolve({ status: 101, body: '' });
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    socket.once('error', () => undefined);
  });
}
