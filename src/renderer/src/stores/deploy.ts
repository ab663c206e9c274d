import { useStore } from 'zustand';
import { createStore, type StoreApi } from 'zustand/vanilla';
import type {
  DeployAction,
  DeployJob,
  DeployStatus,
  IdlePolicy,
  IdleStatus,
  IpcErrorShape,
} from '../../../shared/ipc/contract';
import { IpcClientError, type IpcClient } from '../lib/ipc';
import { useStores, type AppStores } from './index';

/** A failure as the views keep it (what `IpcClientError` carries). */
const shapeOf = (error: unknown): IpcErrorShape =>
  error instanceof IpcClientError
    ? { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }
    : { code: 'IPC_INTERNAL', message: error instanceof Error ? error.message : String(error) };

export interface HostDeploy {
  /** The last `deploy:status` answer (bundled agent, the host's releases, the last job). */
  status: DeployStatus | null;
  statusError: IpcErrorShape | null;
  loadingStatus: boolean;
  /** The running or last job, as `deploy:progress` and `deploy:run` told it. */
  job: DeployJob | null;
  /** `deploy:run` refused to start (another deploy runs, main unavailable...). */
  runError: IpcErrorShape | null;
  /** What was last asked here, so that Retry runs exactly that again (null after a reload). */
  lastRun: { action: DeployAction; deleteData: boolean } | null;
}

export interface HostIdle {
  status: IdleStatus | null;
  /** This computer's clock when the status arrived: the countdown runs from there (the host's clock may differ). */
  receivedAt: number;
  error: IpcErrorShape | null;
}

/** The deploy dialog: a host's job (or its agent's state), or the question asked before a rollback or uninstall. */
export interface DeployDialogState {
  hostId: string;
  confirm: 'rollback' | 'uninstall' | null;
}

export interface DeployState {
  byHost: Record<string, HostDeploy>;
  idle: Record<string, HostIdle>;
  dialog: DeployDialogState | null;
  loadStatus(hostId: string): Promise<void>;
  /** Starts a deploy job and resolves with how it ended (null when it could not start: see `runError`). */
  run(hostId: string, action: DeployAction, options?: { deleteData?: boolean }): Promise<DeployJob | null>;
  /**
   * Runs the host's last job's action again, as it was asked (an uninstall seen only after a reload asks again
   * whether to delete the data instead of guessing).
   */
  retry(hostId: string): Promise<DeployJob | null>;
  cancel(hostId: string): Promise<void>;
  openDialog(hostId: string, confirm?: DeployDialogState['confirm']): void;
  closeDialog(): void;
  refreshIdle(hostId: string): Promise<void>;
  setIdle(hostId: string, policy: IdlePolicy): Promise<IdleStatus>;
  keepAwake(hostId: string, minutes?: number): Promise<IdleStatus>;
  startAndConnect(hostId: string): Promise<void>;
}

const EMPTY: HostDeploy = {
  status: null,
  statusError: null,
  loadingStatus: false,
  job: null,
  runError: null,
  lastRun: null,
};

/** The open dialog's host survives a reload of the page: it comes back on that host's running (or last) job. */
const DIALOG_KEY = 'slotdeck.deployDialog';
function rememberDialog(hostId: string | null): void {
  try {
    if (hostId) globalThis.sessionStorage?.setItem(DIALOG_KEY, hostId);
    else globalThis.sessionStorage?.removeItem(DIALOG_KEY);
  } catch {
    // Storage refused: the dialog just does not come back after a reload.
  }
}
function rememberedDialog(): string | null {
  try {
    return globalThis.sessionStorage?.getItem(DIALOG_KEY) ?? null;
  } catch {
    return null;
  }
}

/** The newer of two views of a host's job: another job started later wins, the same job's later state wins. */
function newerJob(current: DeployJob | null, next: DeployJob): DeployJob {
  if (!current || current.id === next.id) return next;
  return next.startedAt >= current.startedAt ? next : current;
}

/**
 * Deploying, upgrading, rolling back and uninstalling the agent (jobs run in main; their steps arrive as
 * `deploy:progress` events, also after a reload of the page), and each host's idle auto-stop countdown.
 */
export function createDeployStore(ipc: IpcClient, options: { onHostsChanged?: () => void; now?: () => number } = {}) {
  const now = options.now ?? Date.now;
  const store = createStore<DeployState>()((set, get) => {
    const patch = (hostId: string, changes: Partial<HostDeploy>): void =>
      set({ byHost: { ...get().byHost, [hostId]: { ...(get().byHost[hostId] ?? EMPTY), ...changes } } });
    const applyJob = (hostId: string, job: DeployJob): void =>
      patch(hostId, { job: newerJob(get().byHost[hostId]?.job ?? null, job) });
    const applyIdle = (hostId: string, status: IdleStatus): IdleStatus => {
      const before = get().idle[hostId]?.status?.state;
      set({ idle: { ...get().idle, [hostId]: { status, receivedAt: now(), error: null } } });
      // Main records "stopped by idle policy" when it sees the agent stopping: the host list shows it.
      if (status.state === 'stopping' && before !== 'stopping') options.onHostsChanged?.();
      return status;
    };
    return {
      byHost: {},
      idle: {},
      dialog: null,
      async loadStatus(hostId) {
        patch(hostId, { loadingStatus: true });
        try {
          const status = await ipc.invoke('deploy:status', { hostId });
          patch(hostId, { status, statusError: null, loadingStatus: false });
          if (status.lastJob) applyJob(hostId, status.lastJob);
        } catch (error) {
          patch(hostId, { statusError: shapeOf(error), loadingStatus: false });
        }
      },
      async run(hostId, action, { deleteData = false } = {}) {
        patch(hostId, { runError: null, lastRun: { action, deleteData } });
        try {
          const job = await ipc.invoke('deploy:run', {
            hostId,
            action,
            ...(action === 'uninstall' ? { deleteData } : {}),
          });
          applyJob(hostId, job);
          return get().byHost[hostId]?.job ?? job;
        } catch (error) {
          patch(hostId, { runError: shapeOf(error) });
          return null;
        } finally {
          // The host's releases changed (or the refusal said why): what the dialog shows next comes from the host.
          options.onHostsChanged?.();
          if (get().dialog?.hostId === hostId) void get().loadStatus(hostId);
        }
      },
      async retry(hostId) {
        const entry = get().byHost[hostId];
        const action = entry?.job?.action ?? entry?.lastRun?.action;
        if (!action) return null;
        const last = entry?.lastRun?.action === action ? entry.lastRun : null;
        if (action === 'uninstall' && !last) {
          get().openDialog(hostId, 'uninstall');
          return null;
        }
        return get().run(hostId, action, { deleteData: last?.deleteData ?? false });
      },
      async cancel(hostId) {
        await ipc.invoke('deploy:cancel', { hostId });
      },
      openDialog(hostId, confirm = null) {
        set({ dialog: { hostId, confirm } });
        rememberDialog(hostId);
        void get().loadStatus(hostId);
      },
      closeDialog() {
        set({ dialog: null });
        rememberDialog(null);
      },
      async refreshIdle(hostId) {
        try {
          applyIdle(hostId, await ipc.invoke('idle:status', { hostId }));
        } catch (error) {
          set({
            idle: {
              ...get().idle,
              [hostId]: { status: get().idle[hostId]?.status ?? null, receivedAt: now(), error: shapeOf(error) },
            },
          });
        }
      },
      async setIdle(hostId, policy) {
        return applyIdle(hostId, await ipc.invoke('idle:set', { hostId, policy }));
      },
      async keepAwake(hostId, minutes = 60) {
        return applyIdle(hostId, await ipc.invoke('idle:keep-awake', { hostId, minutes }));
      },
      async startAndConnect(hostId) {
        try {
          await ipc.invoke('hosts:start-and-connect', { id: hostId });
        } finally {
          options.onHostsChanged?.();
        }
      },
    };
  });
  ipc.on('deploy:progress', ({ hostId, job }) => {
    const { byHost, dialog } = store.getState();
    const current = byHost[hostId] ?? EMPTY;
    const next = newerJob(current.job, job);
    store.setState({ byHost: { ...byHost, [hostId]: { ...current, job: next } } });
    // The job just ended (also one started in another window): what the open dialog says about the host is stale.
    const ended = current.job?.id === next.id && current.job.state === 'running' && next.state !== 'running';
    if (ended && dialog?.hostId === hostId) void store.getState().loadStatus(hostId);
  });
  const reopen = rememberedDialog();
  if (reopen) store.getState().openDialog(reopen);
  return store;
}

/** Seconds until the idle stop as of `at` (this computer's clock), or null when no stop is counting down. */
export function idleSecondsLeft(idle: HostIdle | undefined, at: number): number | null {
  const status = idle?.status;
  if (!status || status.state !== 'counting' || status.secondsLeft === null) return null;
  return Math.max(0, status.secondsLeft - Math.max(0, at - idle.receivedAt) / 1000);
}

/**
 * The app's deploy store, made on first use beside the other stores (one per AppStores): it refreshes the host list
 * when a job or the idle policy changed what main records about a host.
 */
const deployStores = new WeakMap<AppStores, StoreApi<DeployState>>();
export function deployStoreOf(stores: AppStores): StoreApi<DeployState> {
  let store = deployStores.get(stores);
  if (!store) {
    const hosts = stores.hosts;
    store = createDeployStore(stores.ipc, {
      onHostsChanged: () =>
        void hosts
          .getState()
          .load()
          .catch(() => undefined),
    });
    deployStores.set(stores, store);
  }
  return store;
}

export const useDeploy = <T>(select: (state: DeployState) => T): T => useStore(deployStoreOf(useStores()), select);
