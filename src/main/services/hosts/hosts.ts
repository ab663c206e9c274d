import type { Host } from '../../../shared/ipc/contract';
import type { InstanceRef } from '../../../shared/ipc/contract-cloud';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import type { AgentClient } from '../agent/agent-client';
import type { LocalAgent } from '../agent/local-agent';
import type { HostRow, Store } from '../db/store';
import type { SecretVault } from '../secrets/vault';
import type { SshTarget } from '../ssh/tunnel';
import { HostConnections } from './connections';
import { HostRegistry, LOCAL_HOST_ID, type LinkedHostInput, type SshHostInput } from './registry';

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
  /** The agent version this panel bundles, compared with each host's at connect. */
  bundledAgentVersion?: () => string | null;
  /** The current address of a linked EC2 instance (the AWS service); asked at every connect of a linked host. */
  instanceAddress?: (instance: InstanceRef, signal?: AbortSignal) => Promise<string>;
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
      ...(deps.bundledAgentVersion ? { bundledAgentVersion: deps.bundledAgentVersion } : {}),
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
    if (this.connections.status(id).state !== 'connected') await this.refreshInstanceAddress(id, signal);
    await this.connections.connect(this.registry.row(id), signal);
    return this.get(id);
  }

  // ------------------------------------------------------------------ EC2 links

  /**
   * A linked host's address is the instance's, looked up now (a stopped and started instance has a new public IP)
   * and kept as the last known one. When AWS cannot be reached, the last known address is tried.
   */
  async refreshInstanceAddress(id: string, signal?: AbortSignal): Promise<void> {
    const row = this.registry.row(id);
    if (!row.instanceAccountId || !row.instanceRegion || !row.instanceId || !this.deps.instanceAddress) return;
    const ref = { accountId: row.instanceAccountId, region: row.instanceRegion, instanceId: row.instanceId };
    try {
      const address = await this.deps.instanceAddress(ref, signal);
      if (address !== row.address) {
        this.deps.log.info(
          `${row.name}: instance ${row.instanceId} is at ${address} (was ${row.address ?? 'unknown'})`,
        );
        this.registry.setAddress(id, address);
        this.deps.events.emit('hosts:changed', {});
      }
    } catch (error) {
      const transient =
        error instanceof IpcError &&
        (error.code === IpcErrorCode.AWS_UNREACHABLE || error.code === IpcErrorCode.AWS_THROTTLED);
      if (!transient || !row.address) throw error;
      this.deps.log.warn(`${row.name}: AWS did not answer; trying the last known address ${row.address}`);
    }
  }

  /** A profile made for a launched instance, linked to it from the start. */
  async createLinked(input: LinkedHostInput, instance: InstanceRef): Promise<Host> {
    const row = await this.registry.create(input, instance);
    this.deps.events.emit('hosts:changed', {});
    return this.get(row.id);
  }

  linkInstance(id: string, instance: InstanceRef | null, address?: string): void {
    this.registry.link(id, instance, address);
    this.deps.events.emit('hosts:changed', {});
  }

  /** The instance was started again: "stopped by the idle policy" no longer holds. */
  clearIdleStop(id: string): void {
    if (!this.registry.row(id).idleStoppedAt) return;
    this.registry.clearIdleStop(id);
    this.deps.events.emit('hosts:changed', {});
  }

  readKeyFile(path: string): string {
    return this.registry.readKeyFile(path);
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

  // ------------------------------------------------------------------ for the deploy service

  /** The host's stored settings. */
  row(id: string): HostRow {
    return this.registry.row(id);
  }

  /** How the deploy logs in: the same user, key and pinned host key as the tunnel. */
  sshTarget(id: string): SshTarget {
    return this.connections.sshTarget(this.registry.row(id));
  }

  /** After an upgrade or rollback: the agent's version again, keeping the tunnel (consoles reconnect by themselves). */
  async refreshAgent(id: string, signal?: AbortSignal): Promise<Host> {
    await this.connections.refreshAgent(this.registry.row(id), signal);
    return this.get(id);
  }

  /** A command over the host's tunnel; null when the host is not connected. */
  exec(id: string, command: string, signal?: AbortSignal): ReturnType<HostConnections['exec']> {
    return this.connections.exec(this.registry.row(id), command, signal);
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
