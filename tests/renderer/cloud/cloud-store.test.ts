import { describe, expect, it } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createCloudStore, progressSteps } from '../../../src/renderer/src/stores/cloud';
import type { AwsAccount, AwsProgress, Ec2Instance } from '../../../src/shared/ipc/contract';
import { fakeIpc } from '../fake-ipc';

const ACCOUNT = 'aws-abcdefghij';

const account = (changes: Partial<AwsAccount> = {}): AwsAccount => ({
  id: ACCOUNT,
  name: 'work',
  source: 'access-key',
  profile: null,
  accessKeyHint: 'AKIA…WXYZ',
  regions: ['eu-west-1'],
  createdAt: '2026-12-01T10:00:00.000Z',
  ...changes,
});

const instance = (instanceId: string, changes: Partial<Ec2Instance> = {}): Ec2Instance => ({
  accountId: ACCOUNT,
  region: 'eu-west-1',
  instanceId,
  name: 'build box',
  state: 'stopped',
  type: 't3.medium',
  zone: 'eu-west-1a',
  publicIp: null,
  privateIp: '10.0.0.5',
  publicDns: null,
  launchTime: '2026-11-30T09:00:00.000Z',
  imageId: 'ami-0123456789abcdef0',
  platform: 'Linux/UNIX',
  keyName: 'work-key',
  securityGroups: [{ id: 'sg-01234567', name: 'ssh' }],
  tags: { Name: 'build box' },
  suggestedUser: 'ec2-user',
  linkedHostIds: [],
  statusChecks: null,
  ...changes,
});

const progress = (
  phase: AwsProgress['phase'],
  instanceId: string | null = 'i-0123456789abcdef0',
  message: string = phase,
): AwsProgress => ({
  accountId: ACCOUNT,
  region: 'eu-west-1',
  instanceId,
  phase,
  message,
  at: '2026-12-01T10:00:00.000Z',
});

/** A promise the test settles itself: an action main has not answered yet. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const ID = 'i-0123456789abcdef0';
const REF = { accountId: ACCOUNT, region: 'eu-west-1', instanceId: ID };

describe('cloud store: accounts', () => {
  it('lists, adds, renames and removes accounts; a removed account’s instances go with it', async () => {
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:account-create': () => account({ id: 'aws-klmnopqrst', name: 'lab', source: 'profile', profile: 'lab' }),
      'aws:account-update': () => account({ name: 'work (eu)' }),
      'aws:account-remove': () => ({ ok: true }),
      'aws:instances': () => ({ instances: [instance(ID)], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    expect(store.getState().accounts.map((a) => a.name)).toEqual(['work']);
    await store.getState().createAccount({
      name: 'lab',
      regions: ['us-east-1'],
      credentials: { source: 'profile', profile: 'lab' },
    });
    await store.getState().updateAccount(ACCOUNT, { name: 'work (eu)' });
    expect(store.getState().accounts.map((a) => a.name)).toEqual(['work (eu)', 'lab']);
    await store.getState().refreshInstances(ACCOUNT);
    expect(store.getState().byAccount[ACCOUNT]?.instances).toHaveLength(1);
    await store.getState().removeAccount(ACCOUNT);
    expect(store.getState().accounts.map((a) => a.name)).toEqual(['lab']);
    expect(store.getState().byAccount[ACCOUNT]).toBeUndefined();
  });

  it('keeps the account list’s failure to show, with the message main wrote', async () => {
    const ipc = fakeIpc({
      'aws:accounts': () => {
        throw new IpcClientError({ code: 'SECRETS_LOCKED', message: 'Unlock the secrets file first.' });
      },
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    expect(store.getState().accountsLoaded).toBe(true);
    expect(store.getState().accountsError).toEqual({
      code: 'SECRETS_LOCKED',
      message: 'Unlock the secrets file first.',
    });
  });
});

describe('cloud store: instances', () => {
  it('keeps the last list when a refresh fails, and shows a region that could not be listed beside the others', async () => {
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account({ regions: ['eu-west-1', 'us-east-1'] })] }),
      'aws:instances': () => ({
        instances: [instance(ID)],
        regionErrors: [
          {
            region: 'us-east-1',
            code: 'AWS_UNAUTHORIZED',
            message: 'Allow ec2:DescribeInstances in us-east-1 for this key.',
          },
        ],
        fetchedAt: '2026-12-01T10:00:00Z',
      }),
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    await store.getState().refreshInstances(ACCOUNT);
    expect(store.getState().byAccount[ACCOUNT]?.regionErrors[0]?.message).toContain('ec2:DescribeInstances');
    ipc.handle('aws:instances', () => {
      throw new IpcClientError({ code: 'AWS_UNREACHABLE', message: 'AWS does not answer: check the network.' });
    });
    await store.getState().refreshInstances(ACCOUNT);
    const list = store.getState().byAccount[ACCOUNT];
    expect(list?.instances.map((i) => i.instanceId)).toEqual([ID]);
    expect(list?.error?.message).toBe('AWS does not answer: check the network.');
    expect(list?.loading).toBe(false);
  });

  it('keeps a list read before the accounts are (the host dialog reads its link’s), but not one of an account removed meanwhile', async () => {
    const answer = deferred<{ instances: Ec2Instance[]; regionErrors: never[]; fetchedAt: string }>();
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:account-remove': () => ({ ok: true }),
      'aws:instances': () => ({ instances: [instance(ID)], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
    });
    const store = createCloudStore(ipc.client);
    await store.getState().refreshInstances(ACCOUNT);
    expect(store.getState().byAccount[ACCOUNT]?.instances.map((i) => i.instanceId)).toEqual([ID]);
    await store.getState().refreshInstances(ACCOUNT);
    expect(ipc.callsTo('aws:instances')).toHaveLength(2);

    await store.getState().loadAccounts();
    ipc.handle('aws:instances', () => answer.promise);
    const reading = store.getState().refreshInstances(ACCOUNT);
    await store.getState().removeAccount(ACCOUNT);
    answer.resolve({ instances: [instance(ID)], regionErrors: [], fetchedAt: '2026-12-01T10:01:00Z' });
    await reading;
    expect(store.getState().byAccount[ACCOUNT]).toBeUndefined();
  });

  it('follows a start through its phases to ready, and the row’s state moves with them', async () => {
    const answer = deferred<Ec2Instance>();
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:instances': () => ({ instances: [instance(ID)], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
      'aws:instance-action': () => answer.promise,
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    await store.getState().refreshInstances(ACCOUNT);
    const acting = store.getState().act(REF, 'start');
    expect(ipc.callsTo('aws:instance-action')).toEqual([{ ...REF, action: 'start' }]);
    ipc.emit('aws:progress', progress('pending'));
    expect(store.getState().byAccount[ACCOUNT]?.instances[0]?.state).toBe('pending');
    ipc.emit('aws:progress', progress('running'));
    ipc.emit('aws:progress', progress('status-checks', ID, 'Waiting for the status checks (2/2)…'));
    const operation = store.getState().operations[`${ACCOUNT}/eu-west-1/${ID}`];
    expect(operation?.state).toBe('running');
    expect(progressSteps('start', operation!.events, operation!.state).map((s) => `${s.phase}:${s.state}`)).toEqual([
      'pending:done',
      'running:done',
      'status-checks:current',
      'ready:todo',
    ]);
    expect(store.getState().byAccount[ACCOUNT]?.instances[0]?.state).toBe('running');
    ipc.emit('aws:progress', progress('ready'));
    answer.resolve(instance(ID, { state: 'running', publicIp: '203.0.113.7', statusChecks: 'ok' }));
    await acting;
    const done = store.getState().operations[`${ACCOUNT}/eu-west-1/${ID}`];
    expect(done?.state).toBe('done');
    expect(progressSteps('start', done!.events, done!.state).every((s) => s.state === 'done')).toBe(true);
    expect(store.getState().byAccount[ACCOUNT]?.instances[0]?.publicIp).toBe('203.0.113.7');
  });

  it('keeps a refused action’s message (the missing IAM action) on the row, and starts no second one meanwhile', async () => {
    const answer = deferred<Ec2Instance>();
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:instances': () => ({ instances: [instance(ID)], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
      'aws:instance-action': () => answer.promise,
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    const first = store.getState().act(REF, 'start');
    await store.getState().act(REF, 'start');
    expect(ipc.callsTo('aws:instance-action')).toHaveLength(1);
    answer.reject(
      new IpcClientError({
        code: 'AWS_UNAUTHORIZED',
        message: 'This key may not call ec2:StartInstances: add it to the IAM policy (see docs).',
      }),
    );
    await first;
    const operation = store.getState().operations[`${ACCOUNT}/eu-west-1/${ID}`];
    expect(operation?.state).toBe('failed');
    expect(operation?.error?.message).toContain('ec2:StartInstances');
    expect(progressSteps('start', operation!.events, operation!.state)[0]?.state).toBe('failed');
    store.getState().dismiss(REF);
    expect(store.getState().operations[`${ACCOUNT}/eu-west-1/${ID}`]).toBeUndefined();
  });

  it('Cancel stops following at once, even before main answers the cancel; later progress is not added', async () => {
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:instances': () => ({ instances: [instance(ID)], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
      // Main never answers: only the cancel ends the wait.
      'aws:instance-action': () => new Promise(() => undefined),
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    const acting = store.getState().act(REF, 'start');
    ipc.emit('aws:progress', progress('pending'));
    store.getState().cancel(REF);
    await acting;
    ipc.emit('aws:progress', progress('running'));
    const operation = store.getState().operations[`${ACCOUNT}/eu-west-1/${ID}`];
    expect(operation?.state).toBe('cancelled');
    expect(operation?.events.map((e) => e.phase)).toEqual(['pending']);
  });
});

describe('cloud store: launch', () => {
  it('collects the launch’s progress (before and after it has an instance id) and keeps the new host profile', async () => {
    const answer = deferred<{ instance: Ec2Instance; hostId: string }>();
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:instances': () => ({ instances: [], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
      'aws:launch': () => answer.promise,
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    const launching = store.getState().startLaunch({
      accountId: ACCOUNT,
      region: 'eu-west-1',
      name: 'claude-1',
      instanceType: 't3.medium',
      image: 'al2023',
      diskGb: 30,
      keyPair: { mode: 'create', name: 'slotdeck-claude-1' },
      idleStopMinutes: 60,
    });
    ipc.emit('aws:progress', progress('requested', null, 'Creating the key pair and security group…'));
    ipc.emit('aws:progress', progress('pending', ID));
    // Another instance's progress in the same region is not this launch's.
    ipc.emit('aws:progress', progress('running', 'i-0fedcba9876543210'));
    ipc.emit('aws:progress', progress('running', ID));
    expect(store.getState().launch?.instanceId).toBe(ID);
    expect(store.getState().launch?.events.map((e) => e.phase)).toEqual(['requested', 'pending', 'running']);
    answer.resolve({ instance: instance(ID, { state: 'running' }), hostId: 'claude-1' });
    await launching;
    expect(store.getState().launch).toMatchObject({ state: 'done', hostId: 'claude-1', instanceId: ID });
    store.getState().clearLaunch();
    expect(store.getState().launch).toBeNull();
  });

  it('keeps main’s field details of a refused launch, so the form can show them under its fields', async () => {
    const ipc = fakeIpc({
      'aws:accounts': () => ({ accounts: [account()] }),
      'aws:instances': () => ({ instances: [], regionErrors: [], fetchedAt: '2026-12-01T10:00:00Z' }),
      'aws:launch': () => {
        throw new IpcClientError({
          code: 'IPC_INPUT_INVALID',
          message: 'Check the form.',
          details: { fields: 'diskGb: at least 8 GB' },
        });
      },
    });
    const store = createCloudStore(ipc.client);
    await store.getState().loadAccounts();
    await store.getState().startLaunch({
      accountId: ACCOUNT,
      region: 'eu-west-1',
      name: 'claude-1',
      instanceType: 't3.medium',
      image: 'ubuntu-24.04',
      diskGb: 4,
      keyPair: { mode: 'existing', name: 'work-key' },
      idleStopMinutes: null,
    });
    expect(store.getState().launch?.state).toBe('failed');
    expect(store.getState().launch?.error?.details).toEqual({ fields: 'diskGb: at least 8 GB' });
  });
});

describe('progressSteps', () => {
  it('shows the first step as current before any progress, and the failing step as failed', () => {
    expect(progressSteps('stop', [], 'running').map((s) => s.state)).toEqual(['current', 'todo']);
    expect(progressSteps('reboot', [progress('rebooting')], 'failed').map((s) => s.state)).toEqual([
      'failed',
      'todo',
      'todo',
    ]);
    expect(progressSteps('stop', [progress('stopping'), progress('stopped')], 'running').map((s) => s.state)).toEqual([
      'done',
      'done',
    ]);
  });
});
