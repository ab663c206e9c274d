import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withoutSecrets } from '../../../../remote-agent/src/contract/secret-env';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { Logger } from '../../log';

export interface LocalAgentOptions {
  /** The agent package (remote-agent/): bin/slotdeck-agent.js and its dist/. */
  agentDir: string;
  /** The agent's data dir, under the app's data dir. */
  dataDir: string;
  logFile: string;
  /** The Node.js that runs the agent (its native modules are built for Node, not for Electron). */
  nodePath: string;
  log: Logger;
  /** Told when the agent stops unexpectedly and when it is back. */
  onStateChange: (state: 'running' | 'restarting', detail?: string) => void;
  env?: NodeJS.ProcessEnv;
  /**
   * The port of the agent's gateway (the listener end users' API keys call); 0 picks a free one (tests). Default:
   * SLOTDECK_AGENT_GATEWAY_PORT when the panel has it, else 7421. It always listens on loopback only.
   */
  gatewayPort?: number;
}

export const LOCAL_GATEWAY_PORT = 7421;

interface AgentState {
  pid: number;
  adminUrl: string;
}

/**
 * "This computer": the agent runs here as a child of the panel, with its data under the app's data dir. An agent
 * already running on that data dir (the panel restarted, its agent did not) is adopted rather than doubled. A
 * crashed agent is started again with backoff; its slots never stopped (they run under PM2).
 */
export class LocalAgent {
  private child: ChildProcess | null = null;
  private starting: Promise<{ baseUrl: string; token: string }> | null = null;
  private endpointValue: { baseUrl: string; token: string } | null = null;
  private stopped = false;
  private restarts = 0;

  constructor(private readonly options: LocalAgentOptions) {}

  /**
   * The agent's address and its current admin token. The token is read again when its file changed, so that a
   * `slotdeck-agent token --rotate` on this computer takes effect at the next call instead of locking the panel out.
   */
  get endpoint(): { baseUrl: string; token: string } | null {
    if (this.endpointValue) {
      const changed = this.tokenChanged();
      if (changed !== null) this.endpointValue = { ...this.endpointValue, token: changed };
    }
    return this.endpointValue;
  }

  /** The running agent's address and admin token, starting it when needed. */
  ensureRunning(): Promise<{ baseUrl: string; token: string }> {
    this.stopped = false;
    this.starting ??= this.start().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private gatewayPort(): number {
    if (this.options.gatewayPort !== undefined) return this.options.gatewayPort;
    const fromEnv = (this.options.env ?? process.env).SLOTDECK_AGENT_GATEWAY_PORT;
    return fromEnv && /^\d{1,5}$/.test(fromEnv) ? Number(fromEnv) : LOCAL_GATEWAY_PORT;
  }

  private readState(): AgentState | null {
    try {
      const state = JSON.parse(readFileSync(join(this.options.dataDir, 'agent-state.json'), 'utf8')) as AgentState;
      process.kill(state.pid, 0);
      return state;
    } catch {
      return null;
    }
  }

  private async healthy(baseUrl: string): Promise<boolean> {
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await response.json()) as { supervisor?: { ok?: boolean } };
      return response.ok && body.supervisor?.ok === true;
    } catch {
      return false;
    }
  }

  private tokenFile(): string {
    return join(this.options.dataDir, 'secrets', 'admin-token');
  }

  /** When the token file was last read: its change time and size, cheaper to compare than its content. */
  private tokenStamp = '';

  private token(): string {
    const stat = statSync(this.tokenFile());
    this.tokenStamp = `${stat.ctimeMs}:${stat.size}`;
    return readFileSync(this.tokenFile(), 'utf8').trim();
  }

  /** The token when its file changed since it was last read, else null (also when it cannot be read now). */
  private tokenChanged(): string | null {
    try {
      const stat = statSync(this.tokenFile());
      return `${stat.ctimeMs}:${stat.size}` === this.tokenStamp ? null : this.token();
    } catch {
      return null;
    }
  }

  private async start(): Promise<{ baseUrl: string; token: string }> {
    const existing = this.readState();
    if (existing && (await this.healthy(existing.adminUrl))) {
      this.options.log.info(`adopting the local agent already running (pid ${existing.pid})`);
      this.endpointValue = { baseUrl: existing.adminUrl, token: this.token() };
      return this.endpointValue;
    }
    const cli = join(this.options.agentDir, 'bin', 'slotdeck-agent.js');
    if (!existsSync(join(this.options.agentDir, 'dist', 'cli.js'))) {
      throw new IpcError(
        IpcErrorCode.LOCAL_AGENT_FAILED,
        `The agent is not built (${this.options.agentDir}/dist is missing). Run npm run build:agent.`,
      );
    }
    mkdirSync(this.options.dataDir, { recursive: true, mode: 0o700 });
    this.handOverUpstreamKey();
    const log = createWriteStream(this.options.logFile, { flags: 'a', mode: 0o600 });
    const child = spawn(this.options.nodePath, [cli, 'serve'], {
      // Nothing secret goes to the agent: the panel's vault key (SLOTDECK_MASTER_KEY) and the like would sit in
      // the environment of the agent and of PM2, where a program in a slot of this user could read them.
      env: {
        ...withoutSecrets({ ...process.env, ...this.options.env }),
        SLOTDECK_AGENT_DATA_DIR: this.options.dataDir,
        SLOTDECK_AGENT_ADMIN_PORT: '0',
        // "This computer" serves its own user: the gateway is not reachable from other machines.
        SLOTDECK_AGENT_GATEWAY_HOST: '127.0.0.1',
        SLOTDECK_AGENT_GATEWAY_PORT: String(this.gatewayPort()),
        // The agent keeps its own log, rotated, under its data dir (logs/agent.log, the Logs view reads it); the file
        // here, which nothing rotates, gets only what it prints on stderr (a crash).
        SLOTDECK_AGENT_LOG_STDOUT: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    let exited: number | null | undefined;
    child.once('exit', (code) => {
      exited = code;
      log.end();
      if (this.child === child) this.onExit(code);
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited !== undefined) {
        throw new IpcError(
          IpcErrorCode.LOCAL_AGENT_FAILED,
          `The local agent stopped as it started (exit ${exited}). Its log is at ${this.options.logFile}.`,
        );
      }
      if (Date.now() > deadline) {
        throw new IpcError(
          IpcErrorCode.LOCAL_AGENT_FAILED,
          `The local agent did not become ready within 30 s. Its log is at ${this.options.logFile}.`,
        );
      }
      const state = this.readState();
      if (state && state.pid === child.pid && (await this.healthy(state.adminUrl))) {
        this.endpointValue = { baseUrl: state.adminUrl, token: this.token() };
        this.options.log.info(`local agent running (pid ${child.pid}) on ${state.adminUrl}`);
        return this.endpointValue;
      }
      await sleep(50);
    }
  }

  /**
   * An upstream key given to the panel as SLOTDECK_AGENT_UPSTREAM_KEY reaches the agent as its key file (0600, where
   * a key set in the Gateway view lives too, and which wins), never through the agent's environment.
   */
  private handOverUpstreamKey(): void {
    const key = (this.options.env ?? process.env).SLOTDECK_AGENT_UPSTREAM_KEY?.trim();
    if (!key) return;
    const secrets = join(this.options.dataDir, 'secrets');
    mkdirSync(secrets, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(join(secrets, 'upstream-key'), key, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }

  private onExit(code: number | null): void {
    this.child = null;
    this.endpointValue = null;
    if (this.stopped) return;
    this.restarts += 1;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts - 1, 6));
    this.options.log.warn(`local agent exited (${code}); starting it again in ${delay} ms`);
    this.options.onStateChange('restarting', `The local agent stopped (exit ${code}); starting it again.`);
    setTimeout(() => {
      if (this.stopped) return;
      this.ensureRunning().then(
        () => this.options.onStateChange('running'),
        (error: unknown) => this.options.log.error('could not restart the local agent', error),
      );
    }, delay).unref();
  }

  /** Stops the agent (gracefully: its slots keep running and are back at the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    this.child = null;
    this.endpointValue = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
