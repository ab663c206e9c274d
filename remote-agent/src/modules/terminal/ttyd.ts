import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { ClientCommand, TerminalCloseCode, TTYD_SUBPROTOCOL } from '../../contract/index.js';
import type { ProcessSpec } from '../../supervisor/supervisor.js';
import type { BackendProblem, TerminalBackend, TerminalSlot } from './backend.js';
import { toBuffer } from './client.js';
import { awaitOpening, type OpeningPolicy, type UpgradeAuth } from './opening.js';
import type { TicketGrant, TicketStore } from './tickets.js';
import { typedInput } from '../idle/activity.js';

const run = promisify(execFile);
/** How long a client waits for a ttyd that is (re)starting. */
const UPSTREAM_WAIT_MS = 5000;
const TTYD_USER = 'slotdeck';

/** Where a ttyd slot's files are (the slots module's SlotPaths has these). */
export interface TtydPaths {
  ttydSocket(id: string): string;
  tmuxSocket(id: string): string;
  tmuxConfig(id: string): string;
  ttydSecretFile(id: string): string;
  envFile(id: string): string;
  exitFile(id: string): string;
  outLog(id: string): string;
  errorLog(id: string): string;
}

export interface TtydCommandInput {
  ttyd: string;
  tmux: string;
  row: Pick<TerminalSlot, 'id' | 'argv' | 'workDir'>;
  paths: TtydPaths;
  /** The slot launcher script, which tmux runs as the built-in backend's dtach does. */
  launcher: string;
  secret: string;
}

/**
 * The ttyd backend's command: ttyd on a unix socket in the agent's private run dir (nothing on the network),
 * writable, guarded by a per-slot credential, running the slot's program inside tmux so that the program
 * outlives ttyd and every client attaches to the same session.
 */
export function buildTtydCommand({ ttyd, tmux, row, paths, launcher, secret }: TtydCommandInput): {
  script: string;
  args: string[];
} {
  return {
    script: ttyd,
    args: [
      '--interface',
      paths.ttydSocket(row.id),
      '--writable',
      '--credential',
      `${TTYD_USER}:${secret}`,
      '--ping-interval',
      '30',
      '--terminal-type',
      'xterm-256color',
      '--',
      tmux,
      '-S',
      paths.tmuxSocket(row.id),
      '-f',
      paths.tmuxConfig(row.id),
      'new-session',
      '-A',
      '-s',
      'main',
      '-c',
      row.workDir,
      '/bin/sh',
      launcher,
      paths.envFile(row.id),
      paths.exitFile(row.id),
    ],
  };
}

export function tmuxConfig(scrollbackLines: number): string {
  return [
    'set -g status off',
    `set -g history-limit ${scrollbackLines}`,
    'set -g default-terminal xterm-256color',
    'set -s escape-time 0',
    'set -g mouse on',
    '',
  ].join('\n');
}

export interface TtydBridgeOptions {
  paths: TtydPaths;
  launcher: string;
  tools: { ttyd: string | null; tmux: string | null };
  tickets: TicketStore;
  opening: OpeningPolicy;
  logger: Logger;
  scrollbackLines: number;
  /** Told when a client types into a slot (the idle auto-stop's activity clock). */
  onInput?: () => void;
}

interface BridgedClient {
  mode: TicketGrant['mode'];
  lease: string | null;
  close: (code?: number, reason?: string) => void;
}

interface SlotEntry {
  connections: Set<BridgedClient>;
  lastActivityAt: number | null;
}

/** Slots whose terminal is a real ttyd: the agent proxies clients to it, holding the credential itself. */
export class TtydBridge implements TerminalBackend {
  readonly kind = 'ttyd' as const;
  readonly supportsSlotAccounts = false;
  private readonly slots = new Map<string, SlotEntry>();

  constructor(private readonly options: TtydBridgeOptions) {}

  private secret(id: string): string {
    const file = this.options.paths.ttydSecretFile(id);
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const secret = randomBytes(24).toString('base64url');
    writeFileSync(file, secret, { mode: 0o600 });
    return secret;
  }

  problem(): BackendProblem | null {
    const { ttyd, tmux } = this.options.tools;
    if (ttyd && tmux) return null;
    return {
      status: 400,
      message: `The ttyd terminal needs ${[!ttyd && 'ttyd', !tmux && 'tmux'].filter(Boolean).join(' and ')} on this host, which ${!ttyd && !tmux ? 'are' : 'is'} not installed. Install it, or use terminal "builtin".`,
    };
  }

  processSpec(row: TerminalSlot): Omit<ProcessSpec, 'name'> {
    const { paths, tools, launcher } = this.options;
    if (!tools.ttyd || !tools.tmux) throw new Error('ttyd and tmux are required for the ttyd backend');
    writeFileSync(paths.tmuxConfig(row.id), tmuxConfig(this.options.scrollbackLines), { mode: 0o600 });
    const secret = this.secret(row.id);
    const command = buildTtydCommand({ ttyd: tools.ttyd, tmux: tools.tmux, row, paths, launcher, secret });
    return {
      script: command.script,
      args: command.args,
      cwd: row.workDir,
      env: {},
      outFile: paths.outLog(row.id),
      errorFile: paths.errorLog(row.id),
      restartDelayMs: 200,
    };
  }

  /** ttyd binds its socket itself, and tmux keeps one session per slot: nothing to clear. */
  prepareStart(): Promise<void> {
    return Promise.resolve();
  }

  /** Clients wait for a ttyd still starting, so the slot is open from the start, resumed or not. */
  open(row: Pick<TerminalSlot, 'id'>): void {
    if (!this.slots.has(row.id)) this.slots.set(row.id, { connections: new Set(), lastActivityAt: null });
  }

  isOpen(id: string): boolean {
    return this.slots.has(id);
  }

  release(id: string): Promise<void> {
    const entry = this.slots.get(id);
    this.slots.delete(id);
    for (const connection of entry?.connections ?? []) connection.close();
    return Promise.resolve();
  }

  /** tmux keeps the screen: nothing of the agent's to remove. */
  forget(id: string): Promise<void> {
    return this.release(id);
  }

  /** The screen is tmux's: the agent keeps no copy to read. */
  recentText(): string {
    return '';
  }

  viewers(id: string): { writable: number; readOnly: number } {
    let writable = 0;
    let readOnly = 0;
    for (const connection of this.slots.get(id)?.connections ?? []) {
      if (connection.mode === 'writable') writable += 1;
      else readOnly += 1;
    }
    return { writable, readOnly };
  }

  lastActivity(id: string): number | null {
    return this.slots.get(id)?.lastActivityAt ?? null;
  }

  disconnectLease(lease: string, reason: string): number {
    const ending: BridgedClient[] = [];
    for (const entry of this.slots.values())
      for (const connection of entry.connections) if (connection.lease === lease) ending.push(connection);
    for (const connection of ending) connection.close(TerminalCloseCode.ACCESS_ENDED, reason);
    return ending.length;
  }

  leaseViewers(lease: string): number {
    let count = 0;
    for (const entry of this.slots.values())
      for (const connection of entry.connections) if (connection.lease === lease) count += 1;
    return count;
  }

  /** tmux keeps the program alive when ttyd stops; stopping the slot ends the tmux server too. */
  async endSession(row: Pick<TerminalSlot, 'id'>): Promise<void> {
    if (!this.options.tools.tmux || !existsSync(this.options.paths.tmuxSocket(row.id))) return;
    await run(this.options.tools.tmux, ['-S', this.options.paths.tmuxSocket(row.id), 'kill-server']).catch(
      () => undefined,
    );
  }

  accept(client: WebSocket, slotId: string, auth: UpgradeAuth): void {
    awaitOpening(client, slotId, auth, this.options.tickets, this.options.opening, (opening, effective) => {
      const entry = this.slots.get(slotId);
      if (!entry) {
        client.close(TerminalCloseCode.SLOT_GONE, 'the slot is not running');
        return;
      }
      if (effective.lease && effective.leaseLimit && this.leaseViewers(effective.lease) >= effective.leaseLimit) {
        client.close(TerminalCloseCode.VIEWER_LIMIT, 'this link has as many viewers as it allows; try again later');
        return;
      }
      this.proxy(client, slotId, effective.mode, effective.lease ?? null, opening, entry);
    });
  }

  /** Opens the upstream connection, waiting a few seconds for a ttyd that is still starting (or restarting). */
  private async connectUpstream(slotId: string, credential: string): Promise<WebSocket | null> {
    const deadline = Date.now() + UPSTREAM_WAIT_MS;
    while (Date.now() < deadline && this.slots.has(slotId)) {
      const upstream = new WebSocket(`ws+unix://${this.options.paths.ttydSocket(slotId)}:/ws`, [TTYD_SUBPROTOCOL], {
        headers: { Authorization: `Basic ${credential}` },
      });
      const opened = await new Promise<boolean>((resolve) => {
        upstream.once('open', () => resolve(true));
        upstream.once('error', () => resolve(false));
      });
      if (opened) return upstream;
      upstream.terminate();
      await sleep(100);
    }
    return null;
  }

  private proxy(
    client: WebSocket,
    slotId: string,
    mode: TicketGrant['mode'],
    lease: string | null,
    opening: Record<string, unknown>,
    entry: SlotEntry,
  ): void {
    const credential = Buffer.from(`${TTYD_USER}:${this.secret(slotId)}`).toString('base64');
    const connection: BridgedClient = {
      mode,
      lease,
      close: (code = TerminalCloseCode.SLOT_GONE, reason = 'slot stopped') => {
        // Gone from the counts at once (a viewer limit or a second revoke must not see it).
        entry.connections.delete(connection);
        client.close(code, reason);
      },
    };
    entry.connections.add(connection);
    // What the client sends before ttyd answers is kept and passed on in order.
    const early: Array<{ data: Buffer; isBinary: boolean }> = [];
    let upstream: WebSocket | null = null;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      entry.connections.delete(connection);
      if (client.readyState === WebSocket.OPEN) client.close();
      upstream?.terminate();
    };
    const forward = (message: Buffer, isBinary: boolean): void => {
      const command = String.fromCharCode(message[0] ?? 0);
      if (mode !== 'writable' && (command === ClientCommand.INPUT || command === ClientCommand.RESIZE)) return;
      if (command === ClientCommand.INPUT) {
        entry.lastActivityAt = Date.now();
        // Only typed bytes keep the host awake, not the terminal's own reports.
        if (typedInput(message.subarray(1))) this.options.onInput?.();
      }
      if (upstream?.readyState === WebSocket.OPEN) upstream.send(message, { binary: isBinary });
    };
    client.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary) => {
      const message = toBuffer(data);
      if (upstream) forward(message, isBinary);
      else early.push({ data: message, isBinary });
    });
    client.on('close', finish);
    client.on('error', finish);

    void this.connectUpstream(slotId, credential).then((connected) => {
      if (finished) {
        connected?.terminate();
        return;
      }
      if (!connected) {
        client.close(1011, "the slot's ttyd is not answering; check the slot's log");
        finish();
        return;
      }
      upstream = connected;
      // Read-only viewers must not size the shared terminal either.
      const forwarded = mode === 'writable' ? { ...opening, AuthToken: credential } : { AuthToken: credential };
      upstream.send(Buffer.from(JSON.stringify(forwarded)));
      for (const { data, isBinary } of early.splice(0)) forward(data, isBinary);
      upstream.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary) => {
        entry.lastActivityAt = Date.now();
        if (client.readyState === WebSocket.OPEN) client.send(toBuffer(data), { binary: isBinary });
      });
      upstream.on('error', (error) => {
        this.options.logger.warn({ err: error, slotId }, 'ttyd connection failed');
        finish();
      });
      upstream.on('close', finish);
    });
  }
}
