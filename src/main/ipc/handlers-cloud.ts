import { idleApi, type IdleStatus } from '../../../remote-agent/src/contract/index';
import type { AwsService } from '../services/aws/aws-service';
import type { Store } from '../services/db/store';
import type { DeployService } from '../services/deploy/deploy-service';
import { idleStopOf } from '../services/hosts/connections';
import type { HostService } from '../services/hosts/hosts';
import type { Handlers } from './dispatch';
import type { EventBus } from './events';
import { IpcError } from './errors';
import { IpcErrorCode } from '../../shared/ipc/errors';

type CloudChannel =
  | 'aws:profiles'
  | 'aws:accounts'
  | 'aws:account-create'
  | 'aws:account-update'
  | 'aws:account-remove'
  | 'aws:instances'
  | 'aws:instance-action'
  | 'aws:launch-options'
  | 'aws:launch'
  | 'aws:link-host'
  | 'aws:ssh-access'
  | 'hosts:start-and-connect';
type DeployChannel = 'deploy:status' | 'deploy:run' | 'deploy:cancel' | 'idle:status' | 'idle:set' | 'idle:keep-awake';

const notYet = (): Promise<never> =>
  Promise.reject(new IpcError(IpcErrorCode.IPC_UNAVAILABLE, 'This part of Slotdeck is being built.'));

/** EC2 channels: the AWS service (absent in some handler tests: the channels then say so). */
export function createCloudHandlers(aws?: AwsService): Pick<Handlers, CloudChannel> {
  if (aws) return awsHandlers(aws);
  return {
    'aws:profiles': notYet,
    'aws:accounts': notYet,
    'aws:account-create': notYet,
    'aws:account-update': notYet,
    'aws:account-remove': notYet,
    'aws:instances': notYet,
    'aws:instance-action': notYet,
    'aws:launch-options': notYet,
    'aws:launch': notYet,
    'aws:link-host': notYet,
    'aws:ssh-access': notYet,
    'hosts:start-and-connect': notYet,
  };
}

function awsHandlers(aws: AwsService): Pick<Handlers, CloudChannel> {
  const ok = { ok: true as const };
  return {
    'aws:profiles': () => Promise.resolve(aws.profiles()),
    'aws:accounts': () => Promise.resolve({ accounts: aws.accounts() }),
    'aws:account-create': (input, { signal }) => aws.createAccount(input, signal),
    'aws:account-update': ({ id, changes }, { signal }) => aws.updateAccount(id, changes, signal),
    'aws:account-remove': async ({ id }) => {
      await aws.removeAccount(id);
      return ok;
    },
    'aws:instances': async ({ accountId }, { signal }) => ({
      ...(await aws.listInstances(accountId, {}, signal)),
      fetchedAt: new Date().toISOString(),
    }),
    'aws:instance-action': (input, { signal }) => aws.instanceAction(input, signal),
    'aws:launch-options': ({ accountId, region }, { signal }) => aws.launchOptions(accountId, region, signal),
    'aws:launch': (input, { signal }) => aws.launch(input, signal),
    'aws:link-host': async ({ hostId, instance }, { signal }) => {
      await aws.linkHost(hostId, instance, signal);
      return ok;
    },
    'aws:ssh-access': ({ hostId }, { signal }) => aws.sshAccess(hostId, signal),
    'hosts:start-and-connect': async ({ id }, { signal }) => {
      await aws.startAndConnect(id, signal);
      return ok;
    },
  };
}

export interface DeployHandlerServices {
  store: Store;
  hosts: HostService;
  events?: EventBus;
  /** Absent where the panel is built without it (some handler tests): the channels then say so. */
  deploy?: DeployService;
}

/** Deploy and idle channels. */
export function createDeployHandlers(services: Partial<DeployHandlerServices> = {}): Pick<Handlers, DeployChannel> {
  const { deploy, hosts, store, events } = services;
  if (!deploy || !hosts || !store) {
    return {
      'deploy:status': notYet,
      'deploy:run': notYet,
      'deploy:cancel': notYet,
      'idle:status': notYet,
      'idle:set': notYet,
      'idle:keep-awake': notYet,
    };
  }
  /**
   * The agent's stop command ran and succeeded: the host list says "stopped by idle policy at ..." from now on
   * (until the host is connected again). A stop still running, or one that failed, is not a stop.
   */
  const noteIdleStop = (hostId: string, status: IdleStatus): IdleStatus => {
    const at = idleStopOf(status);
    if (!at) return status;
    if (store.getHost(hostId)?.idleStoppedAt !== at) {
      store.updateHost(hostId, { idleStoppedAt: at });
      events?.emit('hosts:changed', {});
    }
    return status;
  };
  return {
    'deploy:status': ({ hostId }, { signal }) => deploy.status(hostId, signal),
    'deploy:run': ({ hostId, action, deleteData }, { signal }) => deploy.run(hostId, action, { deleteData }, signal),
    // Idempotent: a job that ended a moment ago has nothing left to cancel.
    'deploy:cancel': ({ hostId }) => {
      deploy.cancel(hostId);
      return Promise.resolve({ ok: true as const });
    },
    'idle:status': async ({ hostId }, { signal }) =>
      noteIdleStop(hostId, await hosts.client(hostId).call(idleApi.getIdle, {}, signal)),
    'idle:set': async ({ hostId, policy }, { signal }) =>
      noteIdleStop(hostId, await hosts.client(hostId).call(idleApi.setIdle, { body: policy }, signal)),
    'idle:keep-awake': async ({ hostId, minutes }, { signal }) =>
      noteIdleStop(hostId, await hosts.client(hostId).call(idleApi.keepAwake, { body: { minutes } }, signal)),
  };
}
