import { createStore } from 'zustand/vanilla';
import type {
  ApiKey,
  CreatedKey,
  CreateKeyBody,
  CreateUserBody,
  IpcInput,
  Quota,
  QuotaOwner,
  QuotaStatus,
  UpdateUserBody,
  User,
} from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';
import { errorShape, type ErrorShape } from './errors';

export const USERS_PAGE_SIZE = 50;

export interface HostUsers {
  users: User[];
  total: number;
  search: string;
  offset: number;
  includeDeleted: boolean;
  loading: boolean;
  error: ErrorShape | null;
  loadedAt: number | null;
}

export interface Loaded<T> {
  items: T[];
  error: ErrorShape | null;
}

export const keysKey = (hostId: string, userId: string): string => `${hostId}/${userId}`;
export const quotaKey = (owner: QuotaOwner): string =>
  `${owner.hostId}/${owner.subject === 'user' ? owner.userId : owner.keyId}`;

export interface UsersState {
  byHost: Record<string, HostUsers>;
  /** By keysKey(hostId, userId). */
  keys: Record<string, Loaded<ApiKey>>;
  /** By quotaKey(owner). */
  quotas: Record<string, Loaded<QuotaStatus>>;
  load(hostId: string, query?: Partial<Pick<HostUsers, 'search' | 'offset' | 'includeDeleted'>>): Promise<void>;
  create(hostId: string, user: CreateUserBody): Promise<User>;
  update(hostId: string, userId: string, changes: UpdateUserBody): Promise<User>;
  remove(hostId: string, userId: string): Promise<User>;
  loadKeys(hostId: string, userId: string): Promise<void>;
  /** The answer holds the key in clear: show it once, keep it nowhere. */
  createKey(hostId: string, userId: string, key: CreateKeyBody): Promise<CreatedKey>;
  updateKey(
    hostId: string,
    userId: string,
    keyId: string,
    changes: IpcInput<'keys:update'>['changes'],
  ): Promise<ApiKey>;
  revokeKey(hostId: string, userId: string, keyId: string): Promise<ApiKey>;
  rotateKey(hostId: string, userId: string, keyId: string, graceSeconds: number): Promise<CreatedKey>;
  loadQuotas(owner: QuotaOwner): Promise<void>;
  setQuotas(owner: QuotaOwner, quotas: Quota[]): Promise<QuotaStatus[]>;
}

const EMPTY: HostUsers = {
  users: [],
  total: 0,
  search: '',
  offset: 0,
  includeDeleted: false,
  loading: false,
  error: null,
  loadedAt: null,
};

/** Users of each host with their keys and quotas, as the agent has them (reloaded after each change). */
export function createUsersStore(ipc: IpcClient) {
  // Only the latest search of a host may land: an answer to an older one (slower, typed earlier) is dropped.
  const latest = new Map<string, number>();
  let counter = 0;

  return createStore<UsersState>()((set, get) => {
    const put = (hostId: string, patch: Partial<HostUsers>): void => {
      set({ byHost: { ...get().byHost, [hostId]: { ...(get().byHost[hostId] ?? EMPTY), ...patch } } });
    };
    const replaceUser = (hostId: string, user: User): User => {
      const list = get().byHost[hostId]?.users ?? [];
      if (list.some((u) => u.id === user.id)) put(hostId, { users: list.map((u) => (u.id === user.id ? user : u)) });
      return user;
    };
    const putKeys = (hostId: string, userId: string, patch: Partial<Loaded<ApiKey>>): void => {
      const key = keysKey(hostId, userId);
      set({ keys: { ...get().keys, [key]: { items: [], error: null, ...get().keys[key], ...patch } } });
    };
    const afterKeyChange = async (hostId: string, userId: string): Promise<void> => {
      // A key's change moves the user's active key count too.
      await Promise.all([get().loadKeys(hostId, userId), get().load(hostId)]);
    };
    return {
      byHost: {},
      keys: {},
      quotas: {},
      async load(hostId, query = {}) {
        const current = get().byHost[hostId] ?? EMPTY;
        const next = {
          search: query.search ?? current.search,
          offset: query.offset ?? (query.search !== undefined && query.search !== current.search ? 0 : current.offset),
          includeDeleted: query.includeDeleted ?? current.includeDeleted,
        };
        const ticket = (counter += 1);
        latest.set(hostId, ticket);
        put(hostId, { ...next, loading: true });
        try {
          const page = await ipc.invoke('users:list', {
            hostId,
            ...(next.search.trim() ? { search: next.search.trim() } : {}),
            includeDeleted: next.includeDeleted,
            limit: USERS_PAGE_SIZE,
            offset: next.offset,
          });
          if (latest.get(hostId) !== ticket) return;
          put(hostId, { users: page.users, total: page.total, loading: false, error: null, loadedAt: Date.now() });
        } catch (error) {
          if (latest.get(hostId) !== ticket) return;
          put(hostId, { loading: false, error: errorShape(error) });
        }
      },
      async create(hostId, user) {
        const created = await ipc.invoke('users:create', { hostId, user });
        await get().load(hostId);
        return created;
      },
      async update(hostId, userId, changes) {
        return replaceUser(hostId, await ipc.invoke('users:update', { hostId, userId, changes }));
      },
      async remove(hostId, userId) {
        const removed = await ipc.invoke('users:delete', { hostId, userId });
        await get().load(hostId);
        return removed;
      },
      async loadKeys(hostId, userId) {
        try {
          const { keys } = await ipc.invoke('keys:list', { hostId, userId });
          putKeys(hostId, userId, { items: keys, error: null });
        } catch (error) {
          putKeys(hostId, userId, { error: errorShape(error) });
        }
      },
      async createKey(hostId, userId, key) {
        const created = await ipc.invoke('keys:create', { hostId, userId, key });
        await afterKeyChange(hostId, userId);
        return created;
      },
      async updateKey(hostId, userId, keyId, changes) {
        const key = await ipc.invoke('keys:update', { hostId, keyId, changes });
        putKeys(hostId, userId, {
          items: (get().keys[keysKey(hostId, userId)]?.items ?? []).map((k) => (k.id === key.id ? key : k)),
        });
        return key;
      },
      async revokeKey(hostId, userId, keyId) {
        const key = await ipc.invoke('keys:revoke', { hostId, keyId });
        await afterKeyChange(hostId, userId);
        return key;
      },
      async rotateKey(hostId, userId, keyId, graceSeconds) {
        const created = await ipc.invoke('keys:rotate', { hostId, keyId, graceSeconds });
        await afterKeyChange(hostId, userId);
        return created;
      },
      async loadQuotas(owner) {
        const key = quotaKey(owner);
        try {
          const { quotas } = await ipc.invoke('quotas:get', owner);
          set({ quotas: { ...get().quotas, [key]: { items: quotas, error: null } } });
        } catch (error) {
          set({
            quotas: { ...get().quotas, [key]: { items: get().quotas[key]?.items ?? [], error: errorShape(error) } },
          });
        }
      },
      async setQuotas(owner, quotas) {
        const result = await ipc.invoke('quotas:set', { ...owner, quotas });
        set({ quotas: { ...get().quotas, [quotaKey(owner)]: { items: result.quotas, error: null } } });
        return result.quotas;
      },
    };
  });
}
