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
import { parseJson, toBuffer } from './client.js';
import { DEFAULT_MAX_CLIENTS_PER_SLOT, publicPlaces } from './host.js';
import { awaitOpening, type OpeningPolicy, type UpgradeAuth } from './opening.js';
import { leasesOf, type TicketGrant, type TicketStore } from './tickets.js';
import { typedInput } from '../idle/activity.js';

const run = promisify(execFile);
/** How long a client waits for a ttyd that is (re)starting. */
const UPSTREAM_WAIT_MS = 5000;
const TTYD_USER = 'slotdeck';
/** What a client may send before ttyd answers; more closes it (1009), as a flood that never ends would. */
export const EARLY_BUFFER_BYTES = 64 * 1024;
const HEARTBEAT_MS = 30_000;
/** A client closed by the agent that does not answer the close frame is cut off after this. */
const CLOSE_GRACE_MS = 1000;

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
  maxClientsPerSlot?: number;
  /** Pings bridged clients this often; one that has not answered the previous ping is cut off. */
  heartbeatMs?: number;
}

interface BridgedClient {
  mode: TicketGrant['mode'];
  leases: string[];
  audience: TicketGrant['audience'];
  close: (code?: number, reason?: string) => void;
}

interface SlotEntry {
  connections: Set<BridgedClient>;
  lastActivityAt: number | null;
  /** The terminal's size as the last writable client set it (read-only viewers' tmux clients are given this). */
  size: { columns: number; rows: number } | null;
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
  open(row: Pick<TerminalSlot, 'id'> & Partial<Pick<TerminalSlot, 'cols' | 'rows'>>): void {
    if (!this.slots.has(row.id))
      this.slots.set(row.id, {
        connections: new Set(),
        lastActivityAt: null,
        size: row.cols && row.rows ? { columns: row.cols, rows: row.rows } : null,
      });
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
      for (const connection of entry.connections) if (connection.leases.includes(lease)) ending.push(connection);
    for (const connection of ending) connection.close(TerminalCloseCode.ACCESS_ENDED, reason);
    return ending.length;
  }

  leaseViewers(lease: string): number {
    let count = 0;
    for (const entry of this.slots.values())
      for (const connection of entry.connections) if (connection.leases.includes(lease)) count += 1;
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
      // The same places as the built-in host: every bridged client is one more tmux client on the host.
      const max = this.options.maxClientsPerSlot ?? DEFAULT_MAX_CLIENTS_PER_SLOT;
      const publicOnes = [...entry.connections].filter((connection) => connection.audience === 'public').length;
      if (entry.connections.size >= max || (effective.audience === 'public' && publicOnes >= publicPlaces(max))) {
        client.close(1013, 'too many clients on this slot; close one and try again');
        return;
      }
      if (effective.lease && effective.leaseLimit && this.leaseViewers(effective.lease) >= effective.leaseLimit) {
        client.close(TerminalCloseCode.VIEWER_LIMIT, 'this link has as many viewers as it allows; try again later');
        return;
      }
      this.proxy(client, slotId, effective, opening, entry);
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
    grant: TicketGrant,
    opening: Record<string, unknown>,
    entry: SlotEntry,
  ): void {
    const { mode } = grant;
    const credential = Buffer.from(`${TTYD_USER}:${this.secret(slotId)}`).toString('base64');
    // What the client sends before ttyd answers is kept and passed on in order, up to a bound.
    const early: Array<{ data: Buffer; isBinary: boolean }> = [];
    let earlyBytes = 0;
    let upstream: WebSocket | null = null;
    let finished = false;
    let alive = true;
    /**
     * Ends the bridge at once: out of the counts, upstream gone, nothing the client still sends is passed on (ws
     * keeps emitting messages until the client answers the close frame, which a hostile one never does).
     */
    const finish = (code?: number, reason?: string): void => {
      if (finished) return;
      finished = true;
      clearInterval(heartbeat);
      entry.connections.delete(connection);
      upstream?.terminate();
      early.length = 0;
      if (client.readyState === WebSocket.OPEN || client.readyState === WebSocket.CONNECTING) {
        client.close(code, reason);
        setTimeout(() => client.terminate(), CLOSE_GRACE_MS).unref();
      }
    };
    const connection: BridgedClient = {
      mode,
      leases: leasesOf(grant),
      audience: grant.audience,
      close: (code = TerminalCloseCode.SLOT_GONE, reason = 'slot stopped') => finish(code, reason),
    };
    entry.connections.add(connection);
    // A viewer whose network vanished without a FIN would hold its place (and a share's viewer limit) for good.
    const heartbeat = setInterval(() => {
      if (!alive) {
        finish();
        client.terminate();
        return;
      }
      alive = false;
      client.ping();
    }, this.options.heartbeatMs ?? HEARTBEAT_MS);
    heartbeat.unref();
    client.on('pong', () => {
      alive = true;
    });
    const writerSize = (payload: Buffer): void => {
      const size = parseJson(payload);
      if (size && Number.isInteger(size.columns) && Number.isInteger(size.rows))
        entry.size = { columns: size.columns as number, rows: size.rows as number };
    };
    if (mode === 'writable') writerSize(Buffer.from(JSON.stringify(opening)));
    const forward = (message: Buffer, isBinary: boolean): void => {
      if (finished) return;
      const command = String.fromCharCode(message[0] ?? 0);
      if (mode !== 'writable' && (command === ClientCommand.INPUT || command === ClientCommand.RESIZE)) return;
      if (command === ClientCommand.RESIZE) writerSize(message.subarray(1));
      if (command === ClientCommand.INPUT) {
        entry.lastActivityAt = Date.now();
        // Only typed bytes keep the host awake, not the terminal's own reports.
        if (typedInput(message.subarray(1))) this.options.onInput?.();
      }
      if (upstream?.readyState === WebSocket.OPEN) upstream.send(message, { binary: isBinary });
    };
    client.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary) => {
      if (finished) return;
      const message = toBuffer(data);
      if (upstream) {
        forward(message, isBinary);
        return;
      }
      const command = String.fromCharCode(message[0] ?? 0);
      if (mode !== 'writable' && (command === ClientCommand.INPUT || command === ClientCommand.RESIZE)) return;
      earlyBytes += message.length;
      if (earlyBytes > EARLY_BUFFER_BYTES) {
        finish(1009, 'too much sent before the terminal answered');
        return;
      }
      early.push({ data: message, isBinary });
    });
    client.on('close', () => finish());
    client.on('error', () => finish());

    void this.connectUpstream(slotId, credential).then((connected) => {
      if (finished) {
        connected?.terminate();
        return;
      }
      if (!connected) {
        finish(1011, "the slot's ttyd is not answering; check the slot's log");
        return;
      }
      upstream = connected;
      // Read-only viewers must not size the shared terminal: their opening's size is ignored. ttyd starts each
      // connection's tmux client at the size in the opening (0x0, which tmux takes as 80x24, without one), and
      // tmux's window follows the latest client: so a read-only viewer's client is given the size the writer set.
      const forwarded =
        mode === 'writable' ? { ...opening, AuthToken: credential } : { AuthToken: credential, ...(entry.size ?? {}) };
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
      upstream.on('close', () => finish());
    });
  }
}
