import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { adminApi } from '../../../../remote-agent/src/contract/index';
import type { Host, HostStatus, IpcParsedInput } from '../../../shared/ipc/contract';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import { AgentClient, type AgentEndpoint } from '../agent/agent-client';
import type { LocalAgent } from '../agent/local-agent';
import { HostNameTakenError, type HostRow, type Store } from '../db/store';
import type { SecretVault } from '../secrets/vault';
import { checkPrivateKey, Tunnel, type TunnelAuth } from '../ssh/tunnel';

export const LOCAL_HOST_ID = 'local';
const ADMIN_TOKEN = /^\S{20,256}$/;

const secretKey = (hostId: string, what: 'private-key' | 'passphrase' | 'admin-token'): string =>
  `host/${hostId}/${what}`;

type SshHostInput = IpcParsedInput<'hosts:create'>;

export interface HostServiceDeps {
  store: Store;
  vault: SecretVault;
  events: EventBus;
  localAgent: LocalAgent;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Tunnels' reconnect backoff (tests shorten it). */
  backoff?: { initialMs: number; maxMs: number };
}

interface Connection {
  tunnel: Tunnel | null;
  token: string;
  /** Still checking the agent: the tunnel's own "connected" is not the host's yet. */
  establishing: boolean;
}

/** Hosts: their settings (SQLite), their secrets (the vault), their connections and status. */
export class HostService {
  private readonly statuses = new Map<string, HostStatus>();
  private readonly connections = new Map<string, Connection>();

  constructor(private readonly deps: HostServiceDeps) {}

  /** A fresh install starts with "This computer". */
  ensureLocalHost(): void {
    if (this.deps.store.getHost(LOCAL_HOST_ID)) return;
    this.deps.store.insertHost({
      id: LOCAL_HOST_ID,
      name: 'This computer',
      kind: 'local',
      address: null,
      port: null,
      user: null,
      authMethod: null,
      keyPath: null,
      agentPort: null,
      agentCommand: null,
      hasPrivateKey: false,
      hasPassphrase: false,
      hasAdminToken: false,
    });
  }

  list(): Host[] {
    return this.deps.store.listHosts().map((row) => this.view(row));
  }

  get(id: string): Host {
    return this.view(this.row(id));
  }

  private row(id: string): HostRow {
    const row = this.deps.store.getHost(id);
    if (!row)
      throw new IpcError(IpcErrorCode.HOST_NOT_FOUND, 'That host no longer exists. Pick another one from the list.');
    return row;
  }

  status(id: string): HostStatus {
    return this.statuses.get(id) ?? { state: 'disconnected', since: new Date().toISOString() };
  }

  private view(row: HostRow): Host {
    const pinned = this.deps.store.pinnedKey(row.id);
    return {
      id: row.id,
      name: row.name,
      kind: row.kind,
      address: row.address,
      port: row.port,
      user: row.user,
      auth: row.authMethod
        ? {
            method: row.authMethod,
            keyPath: row.keyPath,
            storedKey: row.hasPrivateKey,
            storedPassphrase: row.hasPassphrase,
          }
        : null,
      agentPort: row.agentPort,
      agentCommand: row.agentCommand,
      storedAdminToken: row.hasAdminToken,
      pinnedKey: pinned,
      status: this.status(row.id),
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }

  private setStatus(id: string, status: Omit<HostStatus, 'since'> & { since?: string }): void {
    const full: HostStatus = { ...status, since: status.since ?? new Date().toISOString() };
    this.statuses.set(id, full);
    this.deps.events.emit('hosts:status', { hostId: id, status: full });
  }

  // ------------------------------------------------------------------ settings

  async create(input: SshHostInput): Promise<Host> {
    this.checkAuth(input.auth);
    const id = `h-${randomBytes(5).toString('hex')}`;
    let row: HostRow;
    try {
      row = this.deps.store.insertHost({
        id,
        name: input.name,
        kind: 'ssh',
        address: input.address,
        port: input.port,
        user: input.user,
        authMethod: input.auth.method,
        keyPath: input.auth.method === 'key' ? (input.auth.keyPath ?? null) : null,
        agentPort: input.agentPort,
        agentCommand: input.agentCommand,
        hasPrivateKey: false,
        hasPassphrase: false,
        hasAdminToken: false,
      });
    } catch (error) {
      if (error instanceof HostNameTakenError)
        throw new IpcError(
          IpcErrorCode.HOST_NAME_TAKEN,
          `A host named "${input.name}" already exists. Choose another name.`,
        );
      throw error;
    }
    try {
      await this.storeSecrets(row.id, input);
    } catch (error) {
      // Nothing half-made stays behind: a host whose secrets could not be kept is not kept either.
      this.deps.store.deleteHost(row.id);
      await this.forgetSecrets(row.id);
      throw error;
    }
    this.deps.events.emit('hosts:changed', {});
    return this.get(id);
  }

  async update(id: string, changes: Partial<SshHostInput>): Promise<Host> {
    const row = this.row(id);
    if (row.kind === 'local')
      throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" has no settings to change.');
    if (changes.auth) this.checkAuth(changes.auth);
    try {
      this.deps.store.updateHost(id, {
        name: changes.name,
        address: changes.address,
        port: changes.port,
        user: changes.user,
        agentPort: changes.agentPort,
        agentCommand: changes.agentCommand,
        ...(changes.auth
          ? {
              authMethod: changes.auth.method,
              keyPath: changes.auth.method === 'key' ? (changes.auth.keyPath ?? null) : null,
            }
          : {}),
      });
    } catch (error) {
      if (error instanceof HostNameTakenError)
        throw new IpcError(
          IpcErrorCode.HOST_NAME_TAKEN,
          `A host named "${changes.name}" already exists. Choose another name.`,
        );
      throw error;
    }
    if (changes.auth) {
      // New credentials replace the old ones entirely.
      await this.deps.vault.delete(secretKey(id, 'private-key'));
      await this.deps.vault.delete(secretKey(id, 'passphrase'));
      this.deps.store.updateHost(id, { hasPrivateKey: false, hasPassphrase: false });
    }
    await this.storeSecrets(id, changes);
    // Settings that a live connection depends on apply at the next connection.
    if (changes.address || changes.port || changes.user || changes.auth || changes.agentPort) this.disconnect(id);
    this.deps.events.emit('hosts:changed', {});
    return this.get(id);
  }

  private checkAuth(auth: SshHostInput['auth']): void {
    if (auth.method !== 'key') return;
    if (auth.privateKey?.trim()) {
      checkPrivateKey(auth.privateKey, auth.passphrase);
      return;
    }
    if (auth.keyPath) checkPrivateKey(this.readKeyFile(auth.keyPath), auth.passphrase);
  }

  private readKeyFile(path: string): string {
    const full = path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
    try {
      return readFileSync(full, 'utf8');
    } catch (error) {
      throw new IpcError(
        IpcErrorCode.SSH_KEY_FILE_UNREADABLE,
        `The key file ${full} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Check the path.`,
      );
    }
  }

  private async storeSecrets(id: string, input: Partial<SshHostInput>): Promise<void> {
    if (input.auth?.method === 'key' && input.auth.privateKey?.trim()) {
      await this.deps.vault.set(secretKey(id, 'private-key'), input.auth.privateKey.trim() + '\n');
      this.deps.store.updateHost(id, { hasPrivateKey: true });
    }
    if (input.auth?.method === 'key' && input.auth.passphrase) {
      await this.deps.vault.set(secretKey(id, 'passphrase'), input.auth.passphrase);
      this.deps.store.updateHost(id, { hasPassphrase: true });
    }
    if (input.adminToken) {
      await this.deps.vault.set(secretKey(id, 'admin-token'), input.adminToken);
      this.deps.store.updateHost(id, { hasAdminToken: true });
    }
  }

  private async forgetSecrets(id: string): Promise<void> {
    for (const what of ['private-key', 'passphrase', 'admin-token'] as const)
      await this.deps.vault.delete(secretKey(id, what)).catch(() => undefined);
  }

  async remove(id: string): Promise<void> {
    const row = this.row(id);
    if (row.kind === 'local') throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" cannot be removed.');
    this.disconnect(id);
    this.deps.store.deleteHost(id);
    await this.forgetSecrets(id);
    this.statuses.delete(id);
    this.deps.events.emit('hosts:changed', {});
  }

  // ------------------------------------------------------------------ connections

  async connect(id: string, signal?: AbortSignal): Promise<Host> {
    const row = this.row(id);
    const current = this.connections.get(id);
    if (current && !current.establishing && (current.tunnel === null || current.tunnel.isConnected))
      return this.get(id);
    this.disconnect(id, { silent: true });
    this.setStatus(id, { state: 'connecting' });
    try {
      if (row.kind === 'local') await this.connectLocal(id);
      else await this.connectSsh(row, signal);
    } catch (error) {
      this.disconnect(id, { silent: true });
      this.setStatus(id, { state: 'failed', error: shape(error) });
      throw error;
    }
    return this.get(id);
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
    const connection: Connection = { tunnel: null, token: '', establishing: true };
    const tunnel = new Tunnel({
      label: row.name,
      address: row.address!,
      port: row.port!,
      user: row.user!,
      auth: () => this.sshAuth(row),
      pinnedFingerprint: () => this.deps.store.pinnedKey(row.id)?.fingerprint ?? null,
      remotePort: row.agentPort!,
      log: this.deps.log,
      ...(this.deps.backoff ? { backoff: this.deps.backoff } : {}),
      onStatus: (status) => {
        // Before the agent is checked, the tunnel being up does not make the host usable yet.
        if (connection.establishing && (status.state === 'connected' || status.state === 'connecting')) return;
        if (connection.establishing && status.state === 'failed') return;
        this.setStatus(row.id, status);
      },
    });
    connection.tunnel = tunnel;
    this.connections.set(row.id, connection);
    await tunnel.start();
    if (signal?.aborted) throw new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
    const base: Omit<AgentEndpoint, 'token'> = { baseUrl: `http://127.0.0.1:${tunnel.localPort}`, label: row.name };
    const health = new AgentClient(() => ({ ...base, token: '' }));
    try {
      await health.call(adminApi.health, {}, signal);
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
      await this.deps.vault.delete(secretKey(row.id, 'admin-token'));
      this.deps.store.updateHost(row.id, { hasAdminToken: false });
      connection.token = await this.adminToken({ ...row, hasAdminToken: false }, tunnel, signal);
      await client.call(adminApi.listSlots, {}, signal);
    }
    connection.establishing = false;
    this.setStatus(row.id, { state: 'connected' });
  }

  private async sshAuth(row: HostRow): Promise<TunnelAuth> {
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
    const passphrase = row.hasPassphrase
      ? ((await this.deps.vault.get(secretKey(row.id, 'passphrase'))) ?? undefined)
      : undefined;
    if (row.keyPath) return { privateKey: this.readKeyFile(row.keyPath), passphrase };
    const key = await this.deps.vault.get(secretKey(row.id, 'private-key'));
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
      const kept = await this.deps.vault.get(secretKey(row.id, 'admin-token'));
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
    await this.deps.vault.set(secretKey(row.id, 'admin-token'), token);
    this.deps.store.updateHost(row.id, { hasAdminToken: true });
    return token;
  }

  disconnect(id: string, options: { silent?: boolean } = {}): void {
    const connection = this.connections.get(id);
    this.connections.delete(id);
    connection?.tunnel?.stop({ silent: true });
    if (!options.silent && (connection || this.status(id).state !== 'disconnected'))
      this.setStatus(id, { state: 'disconnected' });
  }

  /** Pins the fingerprint the admin confirmed, then connects (refused if the host then shows another key). */
  async trustKey(id: string, fingerprint: string, replace: boolean, signal?: AbortSignal): Promise<Host> {
    const row = this.row(id);
    if (row.kind === 'local') throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" has no host key.');
    const pinned = this.deps.store.pinnedKey(id);
    if (pinned && pinned.fingerprint !== fingerprint && !replace) {
      throw new IpcError(
        IpcErrorCode.HOST_KEY_MISMATCH,
        `${row.name} already has a pinned key (${pinned.fingerprint}). Replacing it needs an explicit "replace pinned key".`,
        {
          pinnedFingerprint: pinned.fingerprint,
          fingerprint,
        },
      );
    }
    const previous = this.status(id).error?.details;
    this.deps.store.pinKey(id, { algorithm: previous?.algorithm ?? pinned?.algorithm ?? 'unknown', fingerprint });
    this.deps.log.info(
      `pinned host key of ${row.name}: ${fingerprint}${pinned ? ` (replacing ${pinned.fingerprint})` : ''}`,
    );
    try {
      return await this.connect(id, signal);
    } catch (error) {
      if (error instanceof IpcError && error.code === IpcErrorCode.HOST_KEY_MISMATCH) {
        // The key changed between the admin seeing it and confirming it: take nothing on trust.
        if (pinned) this.deps.store.pinKey(id, pinned);
        else this.deps.store.unpinKey(id);
        throw new IpcError(
          IpcErrorCode.HOST_KEY_CHANGED_SINCE_SHOWN,
          `${row.name} now presents another key than the one you confirmed. Nothing was pinned; connect again and check the new fingerprint.`,
          error.details,
        );
      }
      throw error;
    }
  }

  /** The agent client of a connected host. */
  client(id: string): AgentClient {
    const row = this.row(id);
    const connection = this.connections.get(id);
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
  socketBase(id: string): string {
    const row = this.row(id);
    const connection = this.connections.get(id);
    if (!connection)
      throw new IpcError(IpcErrorCode.HOST_NOT_CONNECTED, `${row.name} is not connected. Connect it first.`);
    return this.endpoint(row, connection).baseUrl.replace(/^http/, 'ws');
  }

  dispose(): void {
    for (const id of [...this.connections.keys()]) this.disconnect(id, { silent: true });
  }
}

function shape(error: unknown): { code: string; message: string; details?: Record<string, string> } {
  if (error instanceof IpcError)
    return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  return { code: IpcErrorCode.IPC_INTERNAL, message: (error as Error).message };
}
