import { describe, expect, it, vi } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createDeployStore, idleSecondsLeft } from '../../../src/renderer/src/stores/deploy';
import { fakeIpc } from '../fake-ipc';
import { deployStatus, idleStatus, job, step } from './fixtures';

function setup(handlers: Parameters<typeof fakeIpc>[0] = {}) {
  const ipc = fakeIpc(handlers);
  const hostsChanged = vi.fn();
  let clock = 1_000_000;
  const store = createDeployStore(ipc.client, { onHostsChanged: hostsChanged, now: () => clock });
  return { ipc, store, hostsChanged, tick: (ms: number) => (clock += ms), now: () => clock };
}

describe('deploy store', () => {
  it('shows each step as deploy:progress reports it, and the job deploy:run answers when it ends', async () => {
    let finish: ((value: unknown) => void) | undefined;
    const { ipc, store } = setup({ 'deploy:run': () => new Promise((resolve) => (finish = resolve)) });
    const running = store.getState().run('prod', 'deploy');
    expect(ipc.callsTo('deploy:run')).toEqual([{ hostId: 'prod', action: 'deploy' }]);
    ipc.emit('deploy:progress', {
      hostId: 'prod',
      job: job({ steps: [step('connect', { state: 'done' }), step('detect', { state: 'running' })] }),
    });
    expect(store.getState().byHost.prod?.job?.steps.map((s) => s.state)).toEqual(['done', 'running']);
    const ended = job({
      state: 'succeeded',
      steps: [step('connect', { state: 'done' }), step('detect', { state: 'done' })],
    });
    await vi.waitFor(() => expect(finish).toBeDefined());
    finish!(ended);
    await expect(running).resolves.toEqual(ended);
    expect(store.getState().byHost.prod?.job?.state).toBe('succeeded');
  });

  it('keeps a later job when an event of an earlier one arrives late, and another host’s job apart', () => {
    const { ipc, store } = setup();
    ipc.emit('deploy:progress', { hostId: 'prod', job: job({ id: 'new', startedAt: '2026-12-01T11:00:00.000Z' }) });
    ipc.emit('deploy:progress', { hostId: 'prod', job: job({ id: 'old', state: 'failed' }) });
    ipc.emit('deploy:progress', { hostId: 'stage', job: job({ id: 'other', hostId: 'stage' }) });
    expect(store.getState().byHost.prod?.job?.id).toBe('new');
    expect(store.getState().byHost.stage?.job?.id).toBe('other');
  });

  it('reads the host’s releases again when the job shown in the dialog ends, so it offers what fits now', async () => {
    const { ipc, store } = setup({ 'deploy:status': () => deployStatus() });
    store.getState().openDialog('prod');
    await vi.waitFor(() => expect(ipc.callsTo('deploy:status')).toHaveLength(1));
    ipc.emit('deploy:progress', { hostId: 'prod', job: job({ action: 'upgrade' }) });
    ipc.emit('deploy:progress', { hostId: 'prod', job: job({ action: 'upgrade' }) });
    expect(ipc.callsTo('deploy:status')).toHaveLength(1);
    ipc.emit('deploy:progress', { hostId: 'prod', job: job({ action: 'upgrade', state: 'succeeded' }) });
    expect(ipc.callsTo('deploy:status')).toHaveLength(2);
  });

  it('shows why a deploy could not start (another one runs) instead of a job', async () => {
    const { store } = setup({
      'deploy:run': () => {
        throw new IpcClientError({ code: 'DEPLOY_BUSY', message: 'A deploy already runs on prod.' });
      },
    });
    await expect(store.getState().run('prod', 'upgrade')).resolves.toBeNull();
    expect(store.getState().byHost.prod?.runError).toEqual({
      code: 'DEPLOY_BUSY',
      message: 'A deploy already runs on prod.',
    });
  });

  it('retries the same action with the same choice, and cancels through deploy:cancel', async () => {
    const { ipc, store } = setup({
      'deploy:run': (input: { action: string }) => job({ action: input.action as 'uninstall', state: 'failed' }),
      'deploy:cancel': () => ({ ok: true }),
      'deploy:status': () => deployStatus(),
    });
    await store.getState().run('prod', 'uninstall', { deleteData: true });
    await store.getState().retry('prod');
    expect(ipc.callsTo('deploy:run')).toEqual([
      { hostId: 'prod', action: 'uninstall', deleteData: true },
      { hostId: 'prod', action: 'uninstall', deleteData: true },
    ]);
    await store.getState().cancel('prod');
    expect(ipc.callsTo('deploy:cancel')).toEqual([{ hostId: 'prod' }]);
  });

  it('after a reload, Retry of a failed uninstall asks again whether to delete the data', async () => {
    const { ipc, store } = setup({ 'deploy:status': () => deployStatus() });
    ipc.emit('deploy:progress', { hostId: 'prod', job: job({ action: 'uninstall', state: 'failed' }) });
    await store.getState().retry('prod');
    expect(ipc.callsTo('deploy:run')).toEqual([]);
    expect(store.getState().dialog).toEqual({ hostId: 'prod', confirm: 'uninstall' });
  });

  it('opening the dialog reads the host’s releases and shows its last job', async () => {
    const last = job({ action: 'upgrade', state: 'rolled-back', message: 'rolled back to 0.1.0 because …' });
    const { store } = setup({ 'deploy:status': () => deployStatus({ lastJob: last }) });
    store.getState().openDialog('prod');
    expect(store.getState().dialog).toEqual({ hostId: 'prod', confirm: null });
    await vi.waitFor(() => expect(store.getState().byHost.prod?.status?.host?.previous).toBe('0.0.9'));
    expect(store.getState().byHost.prod?.job).toEqual(last);
  });
});

describe('idle countdown', () => {
  it('counts down on this computer’s clock from when the status arrived', async () => {
    const { store, tick, now } = setup({ 'idle:status': () => idleStatus({ secondsLeft: 600 }) });
    await store.getState().refreshIdle('prod');
    expect(idleSecondsLeft(store.getState().idle.prod, now())).toBe(600);
    tick(90_000);
    expect(idleSecondsLeft(store.getState().idle.prod, now())).toBe(510);
    tick(10 * 60_000);
    expect(idleSecondsLeft(store.getState().idle.prod, now())).toBe(0);
  });

  it('has no countdown when the policy is off or the agent is already stopping', async () => {
    const { ipc, store, now } = setup({
      'idle:status': () => idleStatus({ policy: { enabled: false, minutes: 60 }, state: 'off', secondsLeft: null }),
    });
    await store.getState().refreshIdle('prod');
    expect(idleSecondsLeft(store.getState().idle.prod, now())).toBeNull();
    ipc.handle('idle:status', () => idleStatus({ state: 'stopping', secondsLeft: 0 }));
    await store.getState().refreshIdle('prod');
    expect(idleSecondsLeft(store.getState().idle.prod, now())).toBeNull();
  });

  it('reloads the hosts once when the agent starts stopping the machine (main records the stop)', async () => {
    const { store, hostsChanged } = setup({ 'idle:status': () => idleStatus({ state: 'stopping' }) });
    await store.getState().refreshIdle('prod');
    await store.getState().refreshIdle('prod');
    expect(hostsChanged).toHaveBeenCalledTimes(1);
  });

  it('sets the policy, keeps awake for an hour, and starts a linked instance through main', async () => {
    const { ipc, store } = setup({
      'idle:set': () => idleStatus({ policy: { enabled: true, minutes: 30 } }),
      'idle:keep-awake': () => idleStatus({ keepAwakeUntil: '2026-12-01T12:00:00.000Z', secondsLeft: 5400 }),
      'hosts:start-and-connect': () => ({ ok: true }),
    });
    await store.getState().setIdle('prod', { enabled: true, minutes: 30 });
    expect(ipc.callsTo('idle:set')).toEqual([{ hostId: 'prod', policy: { enabled: true, minutes: 30 } }]);
    await store.getState().keepAwake('prod');
    expect(ipc.callsTo('idle:keep-awake')).toEqual([{ hostId: 'prod', minutes: 60 }]);
    expect(store.getState().idle.prod?.status?.secondsLeft).toBe(5400);
    await store.getState().startAndConnect('prod');
    expect(ipc.callsTo('hosts:start-and-connect')).toEqual([{ id: 'prod' }]);
  });

  it('keeps the last countdown and the error when a poll fails', async () => {
    const { ipc, store } = setup({ 'idle:status': () => idleStatus() });
    await store.getState().refreshIdle('prod');
    ipc.handle('idle:status', () => {
      throw new IpcClientError({ code: 'HOST_NOT_CONNECTED', message: 'Connect to prod first.' });
    });
    await store.getState().refreshIdle('prod');
    expect(store.getState().idle.prod?.status?.secondsLeft).toBe(2520);
    expect(store.getState().idle.prod?.error?.code).toBe('HOST_NOT_CONNECTED');
  });
});
