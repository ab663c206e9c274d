import { adminApi, idleApi, type Health, type IdleStatus } from '../../../../remote-agent/src/contract/index';
import {
  agentCompatibility,
  compareVersions,
  MAX_AGENT_CONTRACT,
  MIN_AGENT_CONTRACT,
} from '../../../shared/agent-compat';
import type { HostStatus } from '../../../shared/ipc/contract';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import { AgentClient, type AgentEndpoint } from '../agent/agent-client';
import type { LocalAgent } from '../agent/local-agent';
import type { HostRow } from '../db/store';
import { Tunnel, type SshTarget, type TunnelAuth } from '../ssh/tunnel';
import { LOCAL_HOST_ID, type HostRegistry } from './registry';

const ADMIN_TOKEN = /^\S{20,256}$/;

export interface HostConnectionsDeps {
  registry: HostRegistry;
  events: EventBus;
  localAgent: LocalAgent;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Tunnels' reconnect backoff (tests shorten it). */
  backoff?: { initialMs: number; maxMs: number };
  /** The agent version this panel bundles (deploys), which a host's agent is compared with ("Update agent"). */
  bundledAgentVersion?: () => string | null;
}

type AgentInfo = NonNullable<HostStatus['agent']>;

interface Connection {
  tunnel: Tunnel | null;
  token: string;
  /** Still checking the agent: the tunnel's own "connected" is not the host's yet. */
  establishing: boolean;
  /** What the agent said at the handshake. */
  agent?: AgentInfo;
}

/**
 * The live side of hosts: a tunnel (or the local agent) and the agent's admin token for each connected host, and
 * every host's status, announced as `hosts:status` events.
 */
export class HostConnections {
  private readonly statuses = new Map<string, HostStatus>();
  private readonly connections = new Map<string, Connection>();

  constructor(private readonly deps: HostConnectionsDeps) {}

  status(id: string): HostStatus {
    return this.statuses.get(id) ?? { state: 'disconnected', since: new Date().toISOString() };
  }

  /** A removed host has no status any more. */
  forgetStatus(id: string): void {
    this.statuses.delete(id);
  }

  private setStatus(id: string, status: Omit<HostStatus, 'since'> & { since?: string }): void {
    const full: HostStatus = { ...status, since: status.since ?? new Date().toISOString() };
    this.statuses.set(id, full);
    this.deps.events.emit('hosts:status', { hostId: id, status: full });
  }

  async connect(row: HostRow, signal?: AbortSignal): Promise<void> {
    const current = this.connections.get(row.id);
    if (current && !current.establishing && (current.tunnel === null || current.tunnel.isConnected)) return;
    this.disconnect(row.id, { silent: true });
    this.setStatus(row.id, { state: 'connecting' });
    try {
      if (row.kind === 'local') await this.connectLocal(row.id);
      else await this.connectSsh(row, signal);
    } catch (error) {
      this.disconnect(row.id, { silent: true });
      this.setStatus(row.id, { state: 'failed', error: shape(error) });
      throw error;
    }
  }

  private async connectLocal(id: string): Promise<void> {
    const { token } = await this.deps.localAgent.ensureRunning();
    this.connections.set(id, { tunnel: null, token, establishing: false });
    this.setStatus(id, { state: 'connected' });
  }

  /** The local agent restarted by itself: reflect it in This computer's status. */
  localAgentState(state: 'running' | 'restarting', detail?: string): void {
    if (!this.connections.has(LOCAL_HOST_ID)) return;
    if (state === 'restarting')
      this.setStatus(LOCAL_HOST_ID, {
        state: 'reconnecting',
        attempt: 1,
        ...(detail ? { error: { code: IpcErrorCode.LOCAL_AGENT_FAILED, message: detail } } : {}),
      });
    else {
      const endpoint = this.deps.localAgent.endpoint;
      if (endpoint) this.connections.set(LOCAL_HOST_ID, { tunnel: null, token: endpoint.token, establishing: false });
      this.setStatus(LOCAL_HOST_ID, { state: 'connected' });
    }
  }

  private async connectSsh(row: HostRow, signal?: AbortSignal): Promise<void> {
    const { registry } = this.deps;
    const connection: Connection = { tunnel: null, token: '', establishing: true };
    const tunnel = new Tunnel({
      ...this.sshTarget(row),
      remotePort: row.agentPort!,
      log: this.deps.log,
      ...(this.deps.backoff ? { backoff: this.deps.backoff } : {}),
      onStatus: (status) => {
        // Before the agent is checked, the tunnel being up does not make the host usable yet.
        if (connection.establishing && (status.state === 'connected' || status.state === 'connecting')) return;
        if (connection.establishing && status.state === 'failed') return;
        this.setStatus(row.id, connection.agent ? { ...status, agent: connection.agent } : status);
      },
    });
    connection.tunnel = tunnel;
    this.connections.set(row.id, connection);
    await tunnel.start();
    if (signal?.aborted) throw new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
    const base: Omit<AgentEndpoint, 'token'> = { baseUrl: `http://127.0.0.1:${tunnel.localPort}`, label: row.name };
    const health = new AgentClient(() => ({ ...base, token: '' }));
    try {
      connection.agent = this.handshake(row, await health.call(adminApi.health, {}, signal));
    } catch (error) {
      if (error instanceof IpcError && error.code === IpcErrorCode.AGENT_NOT_RUNNING) {
        throw new IpcError(
          IpcErrorCode.AGENT_NOT_RUNNING,
          `Connected to ${row.name} over SSH, but no agent answers on its port ${row.agentPort}. Start it there (${row.agentCommand ?? 'slotdeck-agent'} serve), or fix the agent port in the host's settings.`,
        );
      }
      throw error;
    }
    connection.token = await this.adminToken(row, tunnel, signal);
    const client = new AgentClient(() => ({ ...base, token: connection.token }));
    try {
      await client.call(adminApi.listSlots, {}, signal);
    } catch (error) {
      if (!(error instanceof IpcError && error.code === IpcErrorCode.AGENT_TOKEN_REJECTED && row.hasAdminToken))
        throw error;
      // The token we kept no longer works (rotated on the host): read it again once.
      await registry.dropAdminToken(row.id);
      connection.token = await this.adminToken({ ...row, hasAdminToken: false }, tunnel, signal);
      await client.call(adminApi.listSlots, {}, signal);
    }
    connection.establishing = false;
    this.setStatus(row.id, { state: 'connected', agent: connection.agent });
    await this.noteRunningAgain(row, client, signal);
  }

  /**
   * The agent answers, so the machine runs: "stopped by idle policy" no longer holds, unless the agent is in the
   * middle of a successful idle stop right now.
   */
  private async noteRunningAgain(row: HostRow, client: AgentClient, signal?: AbortSignal): Promise<void> {
    if (!row.idleStoppedAt) return;
    const idle = await client.call(idleApi.getIdle, {}, signal).catch(() => null);
    if (idle && idleStopOf(idle)) return;
    this.deps.registry.clearIdleStop(row.id);
    this.deps.events.emit('hosts:changed', {});
  }

  /**
   * The version handshake: an agent whose contract this panel does not speak is refused (it would half-work);
   * otherwise its version is compared with the one the panel bundles.
   */
  private handshake(row: HostRow, health: Health): AgentInfo {
    const contractVersion = health.contractVersion ?? 1;
    const fit = agentCompatibility(health.contractVersion);
    if (fit !== 'compatible') {
      const range = `${MIN_AGENT_CONTRACT}-${MAX_AGENT_CONTRACT}`;
      throw new IpcError(
        IpcErrorCode.AGENT_INCOMPATIBLE,
        fit === 'too-old'
          ? `The agent on ${row.name} (version ${health.version}, contract ${contractVersion}) is too old for this Slotdeck (contracts ${range}). Update the agent (Deploy → Upgrade).`
          : `The agent on ${row.name} (version ${health.version}, contract ${contractVersion}) is newer than this Slotdeck understands (contracts ${range}). Update Slotdeck.`,
        { agentVersion: health.version, contractVersion: String(contractVersion) },
      );
    }
    const bundled = this.deps.bundledAgentVersion?.() ?? null;
    const order = bundled ? compareVersions(health.version, bundled) : 0;
    return {
      version: health.version,
      contractVersion,
      update: order < 0 ? 'available' : order > 0 ? 'newer-than-panel' : 'current',
    };
  }

  /**
   * Reads the agent's version again on a connected host (after an upgrade or a rollback) without dropping the
   * tunnel, so consoles only reconnect to the new agent; a host that is not connected is connected.
   */
  async refreshAgent(row: HostRow, signal?: AbortSignal): Promise<void> {
    const connection = this.connections.get(row.id);
    if (!connection?.tunnel?.isConnected || connection.establishing) {
      await this.connect(row, signal);
      return;
    }
    const tunnel = connection.tunnel;
    const base = { baseUrl: `http://127.0.0.1:${tunnel.localPort}`, label: row.name };
    try {
      connection.agent = this.handshake(
        row,
        await new AgentClient(() => ({ ...base, token: '' })).call(adminApi.health, {}, signal),
      );
      // The upgrade kept the database, so the token still works; one that was rotated is read again.
      await new AgentClient(() => ({ ...base, token: connection.token }))
        .call(adminApi.listSlots, {}, signal)
        .catch(async (error: unknown) => {
          if (!(error instanceof IpcError && error.code === IpcErrorCode.AGENT_TOKEN_REJECTED)) throw error;
          await this.deps.registry.dropAdminToken(row.id);
          connection.token = await this.adminToken({ ...row, hasAdminToken: false }, tunnel, signal);
        });
    } catch (error) {
      this.disconnect(row.id, { silent: true });
      this.setStatus(row.id, { state: 'failed', error: shape(error) });
      throw error;
    }
    this.setStatus(row.id, { state: 'connected', agent: connection.agent });
  }

  /** Where and how to log in to an SSH host: the tunnel's settings, shared with the deploy's own connection. */
  sshTarget(row: HostRow): SshTarget {
    if (row.kind !== 'ssh' || !row.address || !row.port || !row.user) {
      throw new IpcError(IpcErrorCode.DEPLOY_LOCAL_HOST, `${row.name} is not reached over SSH.`);
    }
    return {
      label: row.name,
      address: row.address,
      port: row.port,
      user: row.user,
      auth: () => this.sshAuth(row),
      pinnedFingerprint: () => this.deps.registry.pinnedKey(row.id)?.fingerprint ?? null,
    };
  }

  /** Runs a command over a connected host's tunnel (null when it is not connected). */
  async exec(
    row: HostRow,
    command: string,
    signal?: AbortSignal,
  ): Promise<{ code: number | null; stdout: string; stderr: string } | null> {
    const tunnel = this.connections.get(row.id)?.tunnel;
    if (!tunnel?.isConnected) return null;
    return tunnel.exec(command, signal);
  }

  private async sshAuth(row: HostRow): Promise<TunnelAuth> {
    const { registry } = this.deps;
    if (row.authMethod === 'agent') {
      const socket = (this.deps.env ?? process.env).SSH_AUTH_SOCK;
      if (!socket) {
        throw new IpcError(
          IpcErrorCode.SSH_AGENT_UNAVAILABLE,
          'No SSH agent is running for Slotdeck (SSH_AUTH_SOCK is not set). Start one and add your key, or use a key file.',
        );
      }
      return { agentSocket: socket };
    }
    const passphrase = row.hasPassphrase ? ((await registry.secret(row.id, 'passphrase')) ?? undefined) : undefined;
    if (row.keyPath) return { privateKey: registry.readKeyFile(row.keyPath), passphrase };
    const key = await registry.secret(row.id, 'private-key');
    if (!key)
      throw new IpcError(
        IpcErrorCode.SSH_KEY_INVALID,
        `No private key is stored for ${row.name}. Edit the host and paste its key again.`,
      );
    return { privateKey: key, passphrase };
  }

  /** The agent's admin token: the one entered or kept, else read over SSH with the agent's CLI and kept. */
  private async adminToken(row: HostRow, tunnel: Tunnel, signal?: AbortSignal): Promise<string> {
    if (row.hasAdminToken) {
      const kept = await this.deps.registry.secret(row.id, 'admin-token');
      if (kept) return kept;
    }
    const command = `${row.agentCommand ?? 'slotdeck-agent'} token`;
    const result = await tunnel.exec(command, signal);
    const token = result.stdout.trim();
    if (result.code !== 0 || !ADMIN_TOKEN.test(token)) {
      const why =
        result.code === 127
          ? 'the command was not found'
          : `it answered ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 200)}`;
      throw new IpcError(
        IpcErrorCode.AGENT_TOKEN_UNREADABLE,
        `Could not read the agent's admin token on ${row.name} with "${command}" (${why}). Enter the token in the host's settings, or fix the agent command.`,
      );
    }
    await this.deps.registry.keepAdminToken(row.id, token);
    return token;
  }

  disconnect(id: string, options: { silent?: boolean } = {}): void {
    const connection = this.connections.get(id);
    this.connections.delete(id);
    connection?.tunnel?.stop({ silent: true });
    if (!options.silent && (connection || this.status(id).state !== 'disconnected'))
      this.setStatus(id, { state: 'disconnected' });
  }

  /** The agent client of a connected host. */
  client(row: HostRow): AgentClient {
    const connection = this.connections.get(row.id);
    if (!connection || connection.establishing) {
      throw new IpcError(IpcErrorCode.HOST_NOT_CONNECTED, `${row.name} is not connected. Connect it first.`);
    }
    return new AgentClient(() => this.endpoint(row, connection));
  }

  private endpoint(row: HostRow, connection: Connection): AgentEndpoint {
    if (row.kind === 'local') {
      const endpoint = this.deps.localAgent.endpoint;
      if (!endpoint)
        throw new IpcError(IpcErrorCode.HOST_NOT_CONNECTED, 'The local agent is restarting. Try again in a moment.');
      return { ...endpoint, label: row.name };
    }
    if (!connection.tunnel?.isConnected) {
      throw new IpcError(
        IpcErrorCode.HOST_NOT_CONNECTED,
        `The SSH connection to ${row.name} is down; Slotdeck is reconnecting.`,
      );
    }
    return { baseUrl: `http://127.0.0.1:${connection.tunnel.localPort}`, token: connection.token, label: row.name };
  }

  /** The WebSocket base the renderer opens terminals on: the agent itself, or the tunnel's local end. */
  socketBase(row: HostRow): string {
    const connection = this.connections.get(row.id);
    if (!connection)
      throw new IpcError(IpcErrorCode.HOST_NOT_CONNECTED, `${row.name} is not connected. Connect it first.`);
    return this.endpoint(row, connection).baseUrl.replace(/^http/, 'ws');
  }

  dispose(): void {
    for (const id of [...this.connections.keys()]) this.disconnect(id, { silent: true });
  }
}

/** When the agent's idle stop ran and succeeded (the machine is going down): that stop's time, else null. */
export function idleStopOf(status: IdleStatus): string | null {
  return status.state === 'stopping' && status.lastStop?.exitCode === 0 ? status.lastStop.at : null;
}

function shape(error: unknown): { code: string; message: string; details?: Record<string, string> } {
  if (error instanceof IpcError)
    return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  return { code: IpcErrorCode.IPC_INTERNAL, message: (error as Error).message };
}
