import type { Host } from '../../../shared/ipc/contract';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import type { AgentClient } from '../agent/agent-client';
import type { LocalAgent } from '../agent/local-agent';
import type { HostRow, Store } from '../db/store';
import type { SecretVault } from '../secrets/vault';
import { HostConnections } from './connections';
import { HostRegistry, LOCAL_HOST_ID, type SshHostInput } from './registry';

export { LOCAL_HOST_ID };

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

/**
 * Hosts as the IPC handlers see them: the registry (settings in SQLite, secrets in the vault; registry.ts) and the
 * connections (tunnels, admin tokens, statuses; connections.ts), kept in step: a change that a live connection depends
 * on disconnects it, a removed host is disconnected first.
 */
export class HostService {
  private readonly registry: HostRegistry;
  private readonly connections: HostConnections;

  constructor(private readonly deps: HostServiceDeps) {
    this.registry = new HostRegistry(deps.store, deps.vault);
    this.connections = new HostConnections({
      registry: this.registry,
      events: deps.events,
      localAgent: deps.localAgent,
      log: deps.log,
      ...(deps.env ? { env: deps.env } : {}),
      ...(deps.backoff ? { backoff: deps.backoff } : {}),
    });
  }

  /** A fresh install starts with "This computer". */
  ensureLocalHost(): void {
    this.registry.ensureLocalHost();
  }

  list(): Host[] {
    return this.registry.rows().map((row) => this.view(row));
  }

  get(id: string): Host {
    return this.view(this.registry.row(id));
  }

  status(id: string): Host['status'] {
    return this.connections.status(id);
  }

  private view(row: HostRow): Host {
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
      pinnedKey: this.registry.pinnedKey(row.id),
      instance:
        row.instanceAccountId && row.instanceRegion && row.instanceId
          ? { accountId: row.instanceAccountId, region: row.instanceRegion, instanceId: row.instanceId }
          : null,
      idleStoppedAt: row.idleStoppedAt,
      status: this.connections.status(row.id),
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }

  // ------------------------------------------------------------------ settings

  async create(input: SshHostInput): Promise<Host> {
    const row = await this.registry.create(input);
    this.deps.events.emit('hosts:changed', {});
    return this.get(row.id);
  }

  async update(id: string, changes: Partial<SshHostInput>): Promise<Host> {
    // Settings that a live connection depends on apply at the next connection.
    if (await this.registry.update(id, changes)) this.disconnect(id);
    this.deps.events.emit('hosts:changed', {});
    return this.get(id);
  }

  async remove(id: string): Promise<void> {
    const row = this.registry.row(id);
    if (row.kind === 'local') throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" cannot be removed.');
    this.disconnect(id);
    await this.registry.remove(id);
    this.connections.forgetStatus(id);
    this.deps.events.emit('hosts:changed', {});
  }

  // ------------------------------------------------------------------ connections

  async connect(id: string, signal?: AbortSignal): Promise<Host> {
    await this.connections.connect(this.registry.row(id), signal);
    return this.get(id);
  }

  /** The local agent restarted by itself: reflect it in This computer's status. */
  localAgentState(state: 'running' | 'restarting', detail?: string): void {
    this.connections.localAgentState(state, detail);
  }

  disconnect(id: string, options: { silent?: boolean } = {}): void {
    this.connections.disconnect(id, options);
  }

  /** Pins the fingerprint the admin confirmed, then connects (refused if the host then shows another key). */
  async trustKey(id: string, fingerprint: string, replace: boolean, signal?: AbortSignal): Promise<Host> {
    const row = this.registry.row(id);
    if (row.kind === 'local') throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" has no host key.');
    const pinned = this.registry.pinnedKey(id);
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
    const previous = this.connections.status(id).error?.details;
    this.registry.pinKey(id, { algorithm: previous?.algorithm ?? pinned?.algorithm ?? 'unknown', fingerprint });
    this.deps.log.info(
      `pinned host key of ${row.name}: ${fingerprint}${pinned ? ` (replacing ${pinned.fingerprint})` : ''}`,
    );
    try {
      return await this.connect(id, signal);
    } catch (error) {
      if (error instanceof IpcError && error.code === IpcErrorCode.HOST_KEY_MISMATCH) {
        // The key changed between the admin seeing it and confirming it: take nothing on trust.
        if (pinned) this.registry.pinKey(id, pinned);
        else this.registry.unpinKey(id);
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
    return this.connections.client(this.registry.row(id));
  }

  /** The WebSocket base the renderer opens terminals on: the agent itself, or the tunnel's local end. */
  socketBase(id: string): string {
    return this.connections.socketBase(this.registry.row(id));
  }

  dispose(): void {
    this.connections.dispose();
  }
}
