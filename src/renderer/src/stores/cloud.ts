import { createStore } from 'zustand/vanilla';
import type {
  AwsAccount,
  AwsProgress,
  AwsProfiles,
  Ec2Instance,
  InstanceAction,
  InstanceRef,
  IpcErrorShape,
  IpcInput,
  IpcOutput,
  LaunchOptions,
  SshAccess,
} from '../../../shared/ipc/contract';
import { IpcClientError, type IpcClient } from '../lib/ipc';
import { errorShape, type ErrorShape } from './errors';

/** While the Cloud view is visible its instance lists are read again this often. */
export const INSTANCES_POLL_MS = 10_000;

type Phase = AwsProgress['phase'];

export interface AccountInstances {
  instances: Ec2Instance[];
  regionErrors: IpcOutput<'aws:instances'>['regionErrors'];
  fetchedAt: string | null;
  loading: boolean;
  /** The whole list failed (bad credentials, no network); the last list stays shown beside it. */
  error: ErrorShape | null;
}

/** A start, stop or reboot of one instance, from the click until ready (or failed, or cancelled). */
export interface InstanceOperation {
  action: InstanceAction;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  /** The aws:progress events of this operation, oldest first. */
  events: AwsProgress[];
  error: ErrorShape | null;
}

/** A launch in flight or just ended: its progress, and the host profile main made for it. */
export interface LaunchRun {
  accountId: string;
  region: string;
  name: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  instanceId: string | null;
  events: AwsProgress[];
  /** With main's details: an input main refused goes back under the form's fields. */
  error: IpcErrorShape | null;
  hostId: string | null;
}

export interface CloudState {
  accounts: AwsAccount[];
  accountsLoaded: boolean;
  accountsError: ErrorShape | null;
  profiles: AwsProfiles | null;
  byAccount: Record<string, AccountInstances>;
  /** By instanceKey(). */
  operations: Record<string, InstanceOperation>;
  launch: LaunchRun | null;
  loadAccounts(): Promise<void>;
  loadProfiles(): Promise<AwsProfiles>;
  createAccount(input: IpcInput<'aws:account-create'>): Promise<AwsAccount>;
  updateAccount(id: string, changes: IpcInput<'aws:account-update'>['changes']): Promise<AwsAccount>;
  removeAccount(id: string): Promise<void>;
  refreshInstances(accountId: string): Promise<void>;
  /** Start, stop or reboot, followed until ready; never throws (the failure is kept on the operation). */
  act(ref: InstanceRef, action: InstanceAction): Promise<void>;
  /** Stops following (main stops waiting); what AWS was asked to do still happens. */
  cancel(ref: InstanceRef): void;
  dismiss(ref: InstanceRef): void;
  launchOptions(accountId: string, region: string): Promise<LaunchOptions>;
  /** Launches and waits until the instance is ready; never throws (the failure is kept on the run). */
  startLaunch(input: IpcInput<'aws:launch'>): Promise<void>;
  cancelLaunch(): void;
  clearLaunch(): void;
  linkHost(hostId: string, instance: InstanceRef | null): Promise<void>;
  sshAccess(hostId: string): Promise<SshAccess>;
}

export const instanceKey = (ref: { accountId: string; region: string; instanceId: string }): string =>
  `${ref.accountId}/${ref.region}/${ref.instanceId}`;

/** The phases a person waits through for each action, in order; the last one means done. */
export const PHASES: Record<InstanceAction | 'launch', Phase[]> = {
  start: ['pending', 'running', 'status-checks', 'ready'],
  stop: ['stopping', 'stopped'],
  reboot: ['rebooting', 'status-checks', 'ready'],
  launch: ['requested', 'pending', 'running', 'status-checks', 'ready'],
};

export const PHASE_LABELS: Record<Phase, string> = {
  requested: 'Requested',
  pending: 'Pending',
  running: 'Running',
  'status-checks': 'Status checks',
  ready: 'Ready',
  stopping: 'Stopping',
  stopped: 'Stopped',
  rebooting: 'Rebooting',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

export interface ProgressStep {
  phase: Phase;
  label: string;
  state: 'done' | 'current' | 'todo' | 'failed';
}

/**
 * The step list of an operation: the latest phase reached is the current step (done when it is the last, failed
 * when the operation failed or was cancelled there), the ones before it are done, the rest still to come.
 */
export function progressSteps(
  kind: InstanceAction | 'launch',
  events: AwsProgress[],
  state: InstanceOperation['state'],
): ProgressStep[] {
  const phases = PHASES[kind];
  const last = phases.length - 1;
  const current = Math.max(0, ...events.map((event) => phases.indexOf(event.phase)));
  return phases.map((phase, index) => {
    let stepState: ProgressStep['state'] = 'todo';
    if (state === 'done' || index < current || (index === current && current === last)) stepState = 'done';
    else if (index === current) stepState = state === 'running' ? 'current' : 'failed';
    return { phase, label: PHASE_LABELS[phase], state: stepState };
  });
}

/** What the instance's state becomes as its progress says so, before the next list shows it. */
const STATE_OF_PHASE: Partial<Record<Phase, Ec2Instance['state']>> = {
  pending: 'pending',
  running: 'running',
  'status-checks': 'running',
  ready: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
};

/** The call's answer, or a rejection as soon as `signal` aborts (main's own answer to the cancel may come later). */
function untilAborted<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const emptyInstances = (): AccountInstances => ({
  instances: [],
  regionErrors: [],
  fetchedAt: null,
  loading: false,
  error: null,
});

/** AWS accounts, their instances, and the start/stop/reboot and launch runs the Cloud view shows live. */
export function createCloudStore(ipc: IpcClient) {
  const controllers = new Map<string, AbortController>();
  let launchController: AbortController | null = null;

  const store = createStore<CloudState>()((set, get) => {
    const putAccount = (accountId: string, patch: Partial<AccountInstances>): void => {
      const current = get().byAccount[accountId] ?? emptyInstances();
      set({ byAccount: { ...get().byAccount, [accountId]: { ...current, ...patch } } });
    };
    const putOperation = (key: string, patch: Partial<InstanceOperation>): void => {
      const current = get().operations[key];
      if (!current) return;
      set({ operations: { ...get().operations, [key]: { ...current, ...patch } } });
    };
    const putLaunch = (patch: Partial<LaunchRun>): void => {
      const current = get().launch;
      if (current) set({ launch: { ...current, ...patch } });
    };
    /** Puts a fresh copy of an instance into its account's list (an action's answer, or a progress phase). */
    const patchInstance = (
      ref: { accountId: string; region: string; instanceId: string },
      patch: Partial<Ec2Instance>,
    ): void => {
      const list = get().byAccount[ref.accountId];
      if (!list) return;
      const instances = list.instances.map((instance) =>
        instance.region === ref.region && instance.instanceId === ref.instanceId ? { ...instance, ...patch } : instance,
      );
      putAccount(ref.accountId, { instances });
    };

    return {
      accounts: [],
      accountsLoaded: false,
      accountsError: null,
      profiles: null,
      byAccount: {},
      operations: {},
      launch: null,
      async loadAccounts() {
        try {
          const { accounts } = await ipc.invoke('aws:accounts', {});
          set({ accounts, accountsLoaded: true, accountsError: null });
        } catch (error) {
          set({ accountsLoaded: true, accountsError: errorShape(error) });
        }
      },
      async loadProfiles() {
        const profiles = await ipc.invoke('aws:profiles', {});
        set({ profiles });
        return profiles;
      },
      async createAccount(input) {
        const account = await ipc.invoke('aws:account-create', input);
        set({ accounts: [...get().accounts.filter((a) => a.id !== account.id), account] });
        return account;
      },
      async updateAccount(id, changes) {
        const account = await ipc.invoke('aws:account-update', { id, changes });
        set({ accounts: get().accounts.map((a) => (a.id === id ? account : a)) });
        return account;
      },
      async removeAccount(id) {
        await ipc.invoke('aws:account-remove', { id });
        const byAccount = { ...get().byAccount };
        delete byAccount[id];
        set({ accounts: get().accounts.filter((a) => a.id !== id), byAccount });
      },
      async refreshInstances(accountId) {
        // One list read at a time per account: a slow region must not pile up polls behind it.
        if (get().byAccount[accountId]?.loading) return;
        putAccount(accountId, { loading: true });
        try {
          const answer = await ipc.invoke('aws:instances', { accountId });
          // An account removed meanwhile stays removed (removing drops its entry).
          if (!get().byAccount[accountId]) return;
          putAccount(accountId, {
            instances: answer.instances,
            regionErrors: answer.regionErrors,
            fetchedAt: answer.fetchedAt,
            loading: false,
            error: null,
          });
        } catch (error) {
          if (get().byAccount[accountId]) putAccount(accountId, { loading: false, error: errorShape(error) });
        }
      },
      async act(ref, action) {
        const key = instanceKey(ref);
        if (get().operations[key]?.state === 'running') return;
        const controller = new AbortController();
        controllers.set(key, controller);
        set({ operations: { ...get().operations, [key]: { action, state: 'running', events: [], error: null } } });
        try {
          const instance = await untilAborted(
            ipc.invoke('aws:instance-action', { ...ref, action }, { signal: controller.signal }),
            controller.signal,
          );
          patchInstance(ref, instance);
          putOperation(key, { state: 'done' });
        } catch (error) {
          const shape = errorShape(error);
          putOperation(
            key,
            controller.signal.aborted || shape.code === 'IPC_CANCELLED'
              ? { state: 'cancelled', error: null }
              : { state: 'failed', error: shape },
          );
        } finally {
          controllers.delete(key);
          void get().refreshInstances(ref.accountId);
        }
      },
      cancel(ref) {
        controllers.get(instanceKey(ref))?.abort();
      },
      dismiss(ref) {
        const key = instanceKey(ref);
        if (get().operations[key]?.state === 'running') return;
        const operations = { ...get().operations };
        delete operations[key];
        set({ operations });
      },
      launchOptions: (accountId, region) => ipc.invoke('aws:launch-options', { accountId, region }),
      async startLaunch(input) {
        if (get().launch?.state === 'running') return;
        const controller = new AbortController();
        launchController = controller;
        set({
          launch: {
            accountId: input.accountId,
            region: input.region,
            name: input.name,
            state: 'running',
            instanceId: null,
            events: [],
            error: null,
            hostId: null,
          },
        });
        try {
          const { instance, hostId } = await untilAborted(
            ipc.invoke('aws:launch', input, { signal: controller.signal }),
            controller.signal,
          );
          putLaunch({ state: 'done', instanceId: instance.instanceId, hostId });
        } catch (error) {
          const shape = errorShape(error);
          putLaunch(
            controller.signal.aborted || shape.code === 'IPC_CANCELLED'
              ? { state: 'cancelled' }
              : {
                  state: 'failed',
                  error:
                    error instanceof IpcClientError && error.details ? { ...shape, details: error.details } : shape,
                },
          );
        } finally {
          launchController = null;
          if (get().accounts.some((a) => a.id === input.accountId)) void get().refreshInstances(input.accountId);
        }
      },
      cancelLaunch() {
        launchController?.abort();
      },
      clearLaunch() {
        if (get().launch?.state !== 'running') set({ launch: null });
      },
      async linkHost(hostId, instance) {
        await ipc.invoke('aws:link-host', { hostId, instance });
        // The instance lists name the profiles linked to each instance.
        for (const account of get().accounts) if (get().byAccount[account.id]) void get().refreshInstances(account.id);
      },
      sshAccess: (hostId) => ipc.invoke('aws:ssh-access', { hostId }),
    };
  });

  ipc.on('aws:progress', (progress) => {
    const state = store.getState();
    if (progress.instanceId) {
      const ref = { accountId: progress.accountId, region: progress.region, instanceId: progress.instanceId };
      const key = instanceKey(ref);
      const operation = state.operations[key];
      if (operation?.state === 'running') {
        store.setState({
          operations: { ...state.operations, [key]: { ...operation, events: [...operation.events, progress] } },
        });
      }
      const instanceState = STATE_OF_PHASE[progress.phase];
      const list = state.byAccount[progress.accountId];
      if (instanceState && list) {
        store.setState({
          byAccount: {
            ...store.getState().byAccount,
            [progress.accountId]: {
              ...list,
              instances: list.instances.map((instance) =>
                instance.region === ref.region && instance.instanceId === ref.instanceId
                  ? { ...instance, state: instanceState }
                  : instance,
              ),
            },
          },
        });
      }
      if (operation?.state === 'running') return;
    }
    // Not an instance action's: the running launch's, when it is in this account and region.
    const launch = store.getState().launch;
    if (
      launch?.state === 'running' &&
      launch.accountId === progress.accountId &&
      launch.region === progress.region &&
      (launch.instanceId === null || progress.instanceId === null || progress.instanceId === launch.instanceId)
    ) {
      store.setState({
        launch: {
          ...launch,
          instanceId: launch.instanceId ?? progress.instanceId,
          events: [...launch.events, progress],
        },
      });
    }
  });

  return store;
}
