import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { IpcParsedInput } from '../../../shared/ipc/contract';
import type { InstanceRef } from '../../../shared/ipc/contract-cloud';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import { HostNameTakenError, type HostRow, type Store } from '../db/store';
import type { SecretVault } from '../secrets/vault';
import { checkPrivateKey } from '../ssh/tunnel';

export const LOCAL_HOST_ID = 'local';

export type SshHostInput = IpcParsedInput<'hosts:create'>;
/** A profile linked to an EC2 instance may have no address yet: it is looked up from the instance at connect. */
export type LinkedHostInput = Omit<SshHostInput, 'address'> & { address: string | null };
export type HostSecret = 'private-key' | 'passphrase' | 'admin-token';

const secretKey = (hostId: string, what: HostSecret): string => `host/${hostId}/${what}`;

/**
 * The hosts Slotdeck knows: their settings (SQLite) and their secrets (the vault), nothing about connections. A host
 * whose secrets could not be kept is not kept either.
 */
export class HostRegistry {
  constructor(
    private readonly store: Store,
    private readonly vault: SecretVault,
  ) {}

  /** A fresh install starts with "This computer". */
  ensureLocalHost(): void {
    if (this.store.getHost(LOCAL_HOST_ID)) return;
    this.store.insertHost({
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

  rows(): HostRow[] {
    return this.store.listHosts();
  }

  row(id: string): HostRow {
    const row = this.store.getHost(id);
    if (!row)
      throw new IpcError(IpcErrorCode.HOST_NOT_FOUND, 'That host no longer exists. Pick another one from the list.');
    return row;
  }

  pinnedKey(id: string): ReturnType<Store['pinnedKey']> {
    return this.store.pinnedKey(id);
  }

  pinKey(id: string, key: { algorithm: string; fingerprint: string }): void {
    this.store.pinKey(id, key);
  }

  unpinKey(id: string): void {
    this.store.unpinKey(id);
  }

  async create(input: SshHostInput | LinkedHostInput, instance?: InstanceRef): Promise<HostRow> {
    this.checkAuth(input.auth);
    const id = `h-${randomBytes(5).toString('hex')}`;
    let row: HostRow;
    try {
      row = this.store.insertHost({
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
        instanceAccountId: instance?.accountId ?? null,
        instanceRegion: instance?.region ?? null,
        instanceId: instance?.instanceId ?? null,
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
      this.store.deleteHost(row.id);
      await this.forgetSecrets(row.id);
      throw error;
    }
    return this.row(id);
  }

  /** Applies the changes; true when they touch what a live connection depends on (it must be made again). */
  async update(id: string, changes: Partial<SshHostInput>): Promise<boolean> {
    const row = this.row(id);
    if (row.kind === 'local')
      throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" has no settings to change.');
    if (changes.auth) this.checkAuth(changes.auth);
    try {
      this.store.updateHost(id, {
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
      await this.vault.delete(secretKey(id, 'private-key'));
      await this.vault.delete(secretKey(id, 'passphrase'));
      this.store.updateHost(id, { hasPrivateKey: false, hasPassphrase: false });
    }
    await this.storeSecrets(id, changes);
    return Boolean(changes.address || changes.port || changes.user || changes.auth || changes.agentPort);
  }

  /** Links the profile to an instance (null: unlinks it), keeping `address` as the last known one when given. */
  link(id: string, instance: InstanceRef | null, address?: string): void {
    const row = this.row(id);
    if (row.kind === 'local') throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" has no instance.');
    this.store.updateHost(id, {
      instanceAccountId: instance?.accountId ?? null,
      instanceRegion: instance?.region ?? null,
      instanceId: instance?.instanceId ?? null,
      ...(address ? { address } : {}),
    });
  }

  /** The address looked up from the linked instance at connect, kept as the last known one. */
  setAddress(id: string, address: string): void {
    this.store.updateHost(id, { address });
  }

  clearIdleStop(id: string): void {
    this.store.updateHost(id, { idleStoppedAt: null });
  }

  /** Forgets the host, its pinned key and its secrets. */
  async remove(id: string): Promise<void> {
    const row = this.row(id);
    if (row.kind === 'local') throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" cannot be removed.');
    this.store.deleteHost(id);
    await this.forgetSecrets(id);
  }

  /** A secret kept for the host; null when none is. */
  async secret(id: string, what: HostSecret): Promise<string | null> {
    return (await this.vault.get(secretKey(id, what))) ?? null;
  }

  /** Keeps the agent's admin token read from the host. */
  async keepAdminToken(id: string, token: string): Promise<void> {
    await this.vault.set(secretKey(id, 'admin-token'), token);
    this.store.updateHost(id, { hasAdminToken: true });
  }

  /** Drops a kept admin token the agent no longer takes. */
  async dropAdminToken(id: string): Promise<void> {
    await this.vault.delete(secretKey(id, 'admin-token'));
    this.store.updateHost(id, { hasAdminToken: false });
  }

  readKeyFile(path: string): string {
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

  private checkAuth(auth: SshHostInput['auth']): void {
    if (auth.method !== 'key') return;
    if (auth.privateKey?.trim()) {
      checkPrivateKey(auth.privateKey, auth.passphrase);
      return;
    }
    if (auth.keyPath) checkPrivateKey(this.readKeyFile(auth.keyPath), auth.passphrase);
  }

  private async storeSecrets(id: string, input: Partial<SshHostInput | LinkedHostInput>): Promise<void> {
    if (input.auth?.method === 'key' && input.auth.privateKey?.trim()) {
      await this.vault.set(secretKey(id, 'private-key'), input.auth.privateKey.trim() + '\n');
      this.store.updateHost(id, { hasPrivateKey: true });
    }
    if (input.auth?.method === 'key' && input.auth.passphrase) {
      await this.vault.set(secretKey(id, 'passphrase'), input.auth.passphrase);
      this.store.updateHost(id, { hasPassphrase: true });
    }
    if (input.adminToken) {
      await this.vault.set(secretKey(id, 'admin-token'), input.adminToken);
      this.store.updateHost(id, { hasAdminToken: true });
    }
  }

  private async forgetSecrets(id: string): Promise<void> {
    for (const what of ['private-key', 'passphrase', 'admin-token'] as const)
      await this.vault.delete(secretKey(id, what)).catch(() => undefined);
  }
}
