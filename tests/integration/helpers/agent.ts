import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Slot, SlotEvent, TerminalMode, TerminalTicket } from '../../../remote-agent/src/contract/index.js';
import { killAll, processesOf } from './processes.js';
import { TerminalTestClient } from './terminal-client.js';

export const AGENT_DIR = resolve(import.meta.dirname, '../../../remote-agent');
export const AGENT_CLI = join(AGENT_DIR, 'dist/cli.js');

export interface AgentProcessOptions {
  dataDir?: string;
  env?: Record<string, string>;
  /** Run the agent as this account (through setpriv, with a clean environment), as an isolated host does. */
  runAs?: string;
  /** The agent's CLI (dist/cli.js) to run, where the checkout is not readable by `runAs`. */
  cli?: string;
}

/** A real agent process on a temp data dir with its own PM2 home, as a host would run it. */
export class AgentProcess {
  private child: ChildProcess | null = null;
  readonly logs: string[] = [];
  url = '';
  /** The public gateway listener (set once the agent is ready). */
  gatewayUrl = '';

  private constructor(
    readonly dataDir: string,
    private readonly env: Record<string, string>,
    private readonly runAs: string | null = null,
    private readonly cli: string = AGENT_CLI,
  ) {}

  static async start(options: AgentProcessOptions = {}): Promise<AgentProcess> {
    if (!existsSync(AGENT_CLI)) throw new Error('remote-agent is not built: run npm run build:agent first');
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sd-agent-'));
    const agent = new AgentProcess(
      dataDir,
      {
        SLOTDECK_AGENT_ADMIN_PORT: '0',
        SLOTDECK_AGENT_GATEWAY_HOST: '127.0.0.1',
        SLOTDECK_AGENT_GATEWAY_PORT: '0',
        SLOTDECK_AGENT_RECONCILE_INTERVAL_MS: '500',
        SLOTDECK_AGENT_LOG_LEVEL: 'info',
        ...options.env,
      },
      options.runAs ?? null,
      options.cli ?? AGENT_CLI,
    );
    await agent.launch();
    return agent;
  }

  get token(): string {
    return readFileSync(join(this.dataDir, 'secrets', 'admin-token'), 'utf8').trim();
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get pm2Home(): string {
    return join(this.dataDir, 'pm2');
  }

  /** Starts (again) on the same data dir and waits until it supervises slots. */
  async launch(): Promise<void> {
    const env = { SLOTDECK_AGENT_DATA_DIR: this.dataDir, ...this.env };
    const child = this.runAs
      ? spawn(
          'setpriv',
          [
            `--reuid=${this.runAs}`,
            `--regid=${this.runAs}`,
            '--init-groups',
            'env',
            '-i',
            `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
            ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
            process.execPath,
            this.cli,
            'serve',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' },
        )
      : spawn(process.execPath, [this.cli, 'serve'], {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
    this.child = child;
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        this.logs.push(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // Ready when the agent has published its address (agent-state.json) and /health says PM2 is in hand.
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited !== undefined)
        throw new Error(`agent exited with ${exited} before it was ready:\n${this.logs.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`agent not ready in 30 s:\n${this.logs.join('\n')}`);
      const state = this.readState();
      if (state && state.pid === child.pid) {
        this.url = state.adminUrl;
        this.gatewayUrl = state.gatewayUrl ?? '';
        const health = await fetch(`${this.url}/health`)
          .then((r) => r.json() as Promise<{ supervisor: { ok: boolean } }>)
          .catch(() => null);
        if (health?.supervisor.ok) return;
      }
      await sleep(50);
    }
  }

  private readState(): { pid: number; adminUrl: string; gatewayUrl?: string | null } | null {
    try {
      return JSON.parse(readFileSync(join(this.dataDir, 'agent-state.json'), 'utf8')) as {
        pid: number;
        adminUrl: string;
        gatewayUrl?: string | null;
      };
    } catch {
      return null;
    }
  }

  /** SIGTERM and wait: the graceful path (slots keep running). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** kill -9: no chance to clean up. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** Creates a slot; anything but 201 fails the test with the agent's answer. */
  async createSlot(body: Record<string, unknown>): Promise<Slot> {
    const response = await this.request<Slot>('POST', '/api/v1/slots', body);
    if (response.status !== 201)
      throw new Error(`creating ${JSON.stringify(body)}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  }

  async slot(id: string): Promise<Slot> {
    return (await this.request<Slot>('GET', `/api/v1/slots/${id}`)).body;
  }

  async events(id: string): Promise<SlotEvent[]> {
    return (await this.request<{ events: SlotEvent[] }>('GET', `/api/v1/slots/${id}/events`)).body.events;
  }

  /** A terminal ticket; `origin` binds it to a web page's origin, as the panel does. */
  async ticket(slotId: string, mode: TerminalMode = 'writable', origin?: string): Promise<TerminalTicket> {
    const response = await this.request<TerminalTicket>('POST', `/api/v1/slots/${slotId}/tickets`, {
      mode,
      ...(origin ? { origin } : {}),
    });
    if (response.status !== 201)
      throw new Error(`ticket for ${slotId}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  }

  /** Opens the slot's terminal as a client would, with a fresh ticket. */
  async attach(
    slotId: string,
    mode: TerminalMode = 'writable',
    size = { columns: 100, rows: 30 },
  ): Promise<TerminalTestClient> {
    const { path } = await this.ticket(slotId, mode);
    return TerminalTestClient.open(`${this.url.replace('http', 'ws')}${path}`, { AuthToken: '', ...size });
  }

  /** Stops the agent, every slot process and the PM2 daemon, and removes the data dir. */
  async destroy(): Promise<void> {
    await this.stop();
    const down = spawn(process.execPath, [AGENT_CLI, 'down'], {
      env: { ...process.env, SLOTDECK_AGENT_DATA_DIR: this.dataDir },
      stdio: 'ignore',
    });
    await new Promise((r) => down.once('exit', r));
    // Whatever `down` could not end (say the CLI itself failed) is ended here: nothing a test starts outlives it.
    killAll(processesOf(this.dataDir));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const PM2_CLI = join(AGENT_DIR, 'node_modules/pm2/bin/pm2');

/** Runs PM2's own CLI against the agent's PM2 home (the daemon must be running, or PM2 starts one). */
export async function pm2(agent: AgentProcess, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [PM2_CLI, ...args], {
    env: { ...process.env, PM2_HOME: agent.pm2Home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`pm2 ${args.join(' ')} exited with ${code}: ${out}`);
  return out;
}

/** PM2's process list as it really is: name, pid, status. */
export async function pm2Processes(agent: AgentProcess): Promise<Array<{ name: string; pid: number; status: string }>> {
  // On a fresh PM2 home the CLI prints a banner first; the list is the line that holds the JSON.
  const line = (await pm2(agent, ['jlist'])).split('\n').find((l) => l.startsWith('['));
  const list = JSON.parse(line ?? '[]') as Array<{ name: string; pid: number; pm2_env: { status: string } }>;
  return list.map((p) => ({ name: p.name, pid: p.pid, status: p.pm2_env.status }));
}

/** Runs `slotdeck-agent <args>` on a data dir to its end: its exit code and everything it printed. */
export async function runAgentCommand(dataDir: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [AGENT_CLI, ...args], {
    env: { ...process.env, SLOTDECK_AGENT_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out };
}
