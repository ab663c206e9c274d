import type { Handlers } from './dispatch';
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

/** EC2 channels (filled in by the AWS service). */
export function createCloudHandlers(): Pick<Handlers, CloudChannel> {
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

/** Deploy and idle channels (filled in by the deploy service). */
export function createDeployHandlers(): Pick<Handlers, DeployChannel> {
  return {
    'deploy:status': notYet,
    'deploy:run': notYet,
    'deploy:cancel': notYet,
    'idle:status': notYet,
    'idle:set': notYet,
    'idle:keep-awake': notYet,
  };
}
