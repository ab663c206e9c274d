import { createStore } from 'zustand/vanilla';
import type {
  AuthSettings,
  IpcInput,
  IpcOutput,
  SetGithubBody,
  SignInStatus,
  UpdateAuthSettingsBody,
  User,
  UserSession,
} from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';
import { errorShape, type ErrorShape } from './errors';

export interface HostSignIn {
  settings: AuthSettings | null;
  pending: User[];
  error: ErrorShape | null;
}

export interface UserSignIn {
  status: SignInStatus | null;
  sessions: UserSession[];
  error: ErrorShape | null;
}

export const userKey = (hostId: string, userId: string): string => `${hostId}/${userId}`;

export interface SignInState {
  byHost: Record<string, HostSignIn>;
  /** By userKey(hostId, userId). */
  byUser: Record<string, UserSignIn>;
  load(hostId: string): Promise<void>;
  update(hostId: string, changes: UpdateAuthSettingsBody): Promise<AuthSettings>;
  /** The secret goes to the agent once; the answer says only whether one is stored. */
  setGithub(hostId: string, body: SetGithubBody): Promise<AuthSettings>;
  approve(hostId: string, userId: string): Promise<User>;
  loadUser(hostId: string, userId: string): Promise<void>;
  /** The answer holds the link: show it once, keep it nowhere. */
  invite(hostId: string, userId: string, expiresInHours: number): Promise<IpcOutput<'users:invite'>>;
  revokeSession(hostId: string, userId: string, sessionId: string): Promise<number>;
  revokeAllSessions(hostId: string, userId: string): Promise<number>;
  linkGithub(hostId: string, userId: string, githubId: number): Promise<SignInStatus>;
  unlinkGithub(hostId: string, userId: string): Promise<SignInStatus>;
  unlock(hostId: string, userId: string): Promise<SignInStatus>;
  audit(hostId: string, query: Omit<IpcInput<'audit:list'>, 'hostId'>): Promise<IpcOutput<'audit:list'>>;
  exportAudit(hostId: string, query: Omit<IpcInput<'audit:export'>, 'hostId'>): Promise<IpcOutput<'audit:export'>>;
}

/** Each host's end-user sign-in: its settings, users waiting for approval, and each user's sign-in and sessions. */
export function createSignInStore(ipc: IpcClient) {
  return createStore<SignInState>()((set, get) => {
    const putHost = (hostId: string, patch: Partial<HostSignIn>): void => {
      const current = get().byHost[hostId] ?? { settings: null, pending: [], error: null };
      set({ byHost: { ...get().byHost, [hostId]: { ...current, ...patch } } });
    };
    const putUser = (key: string, patch: Partial<UserSignIn>): void => {
      const current = get().byUser[key] ?? { status: null, sessions: [], error: null };
      set({ byUser: { ...get().byUser, [key]: { ...current, ...patch } } });
    };
    const keep = (hostId: string, settings: AuthSettings): AuthSettings => {
      putHost(hostId, { settings, error: null });
      return settings;
    };
    const keepStatus = (hostId: string, userId: string, status: SignInStatus): SignInStatus => {
      putUser(userKey(hostId, userId), { status });
      return status;
    };
    const loadUser = async (hostId: string, userId: string): Promise<void> => {
      const key = userKey(hostId, userId);
      try {
        const [status, { sessions }] = await Promise.all([
          ipc.invoke('users:sign-in', { hostId, userId }),
          ipc.invoke('users:sessions', { hostId, userId }),
        ]);
        putUser(key, { status, sessions, error: null });
      } catch (error) {
        putUser(key, { error: errorShape(error) });
      }
    };
    return {
      byHost: {},
      byUser: {},
      async load(hostId) {
        try {
          const [settings, { users }] = await Promise.all([
            ipc.invoke('signin:settings', { hostId }),
            ipc.invoke('signin:pending', { hostId }),
          ]);
          putHost(hostId, { settings, pending: users, error: null });
        } catch (error) {
          putHost(hostId, { error: errorShape(error) });
        }
      },
      update: async (hostId, changes) => keep(hostId, await ipc.invoke('signin:update', { hostId, changes })),
      setGithub: async (hostId, body) => keep(hostId, await ipc.invoke('signin:set-github', { hostId, ...body })),
      async approve(hostId, userId) {
        const user = await ipc.invoke('users:approve', { hostId, userId });
        putHost(hostId, { pending: (get().byHost[hostId]?.pending ?? []).filter((u) => u.id !== userId) });
        void loadUser(hostId, userId);
        return user;
      },
      loadUser,
      invite: async (hostId, userId, expiresInHours) => {
        const created = await ipc.invoke('users:invite', { hostId, userId, expiresInHours });
        void loadUser(hostId, userId);
        return created;
      },
      async revokeSession(hostId, userId, sessionId) {
        const { ended } = await ipc.invoke('users:revoke-session', { hostId, userId, sessionId });
        await loadUser(hostId, userId);
        return ended;
      },
      async revokeAllSessions(hostId, userId) {
        const { ended } = await ipc.invoke('users:revoke-sessions', { hostId, userId });
        await loadUser(hostId, userId);
        return ended;
      },
      linkGithub: async (hostId, userId, githubId) =>
        keepStatus(hostId, userId, await ipc.invoke('users:link-github', { hostId, userId, githubId })),
      unlinkGithub: async (hostId, userId) =>
        keepStatus(hostId, userId, await ipc.invoke('users:unlink-github', { hostId, userId })),
      unlock: async (hostId, userId) =>
        keepStatus(hostId, userId, await ipc.invoke('users:unlock', { hostId, userId })),
      audit: (hostId, query) => ipc.invoke('audit:list', { hostId, ...query }),
      exportAudit: (hostId, query) => ipc.invoke('audit:export', { hostId, ...query }),
    };
  });
}
