import type { EventChannel, InvokeChannel } from '../../src/shared/ipc/channels';
import type { Host, HostStatus, IpcEvent, Slot } from '../../src/shared/ipc/contract';
import type { IpcClient } from '../../src/renderer/src/lib/ipc';

type Handler = (input: never) => unknown;

/**
 * An IpcClient standing in for main: each channel answers with what its handler returns (or rejects with what it
 * throws); every call is recorded, and events are pushed to the store's listeners with `emit`.
 */
export function fakeIpc(handlers: Partial<Record<InvokeChannel, Handler>> = {}) {
  const calls: Array<{ channel: InvokeChannel; input: unknown }> = [];
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const connectionListeners = new Set<(connected: boolean) => void>();

  const invoke = (channel: InvokeChannel, input: unknown): Promise<unknown> => {
    calls.push({ channel, input });
    const handler = handlers[channel] as ((input: unknown) => unknown) | undefined;
    if (!handler) return Promise.reject(new Error(`the fake main has no handler for ${channel}`));
    return Promise.resolve().then(() => handler(input));
  };

  const client: IpcClient = {
    invoke: invoke as IpcClient['invoke'],
    on(channel, listener) {
      const set = listeners.get(channel) ?? new Set();
      set.add(listener as (payload: unknown) => void);
      listeners.set(channel, set);
      return () => set.delete(listener as (payload: unknown) => void);
    },
    onConnection(listener) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },
  };

  return {
    client,
    calls,
    /** Sets what a channel answers from now on. */
    handle(channel: InvokeChannel, handler: Handler): void {
      handlers[channel] = handler;
    },
    callsTo(channel: InvokeChannel): unknown[] {
      return calls.filter((call) => call.channel === channel).map((call) => call.input);
    },
    emit<E extends EventChannel>(channel: E, payload: IpcEvent<E>): void {
      for (const listener of listeners.get(channel) ?? []) listener(payload);
    },
  };
}

export const status = (state: HostStatus['state'], extra: Partial<HostStatus> = {}): HostStatus => ({
  state,
  since: '2024-01-01T00:00:00.000Z',
  ...extra,
});

export const host = (id: string, changes: Partial<Host> = {}): Host => ({
  id,
  name: id,
  kind: 'ssh',
  address: `${id}.example.com`,
  port: 22,
  user: 'ubuntu',
  auth: { method: 'agent', keyPath: null, storedKey: false, storedPassphrase: false },
  agentPort: 7420,
  agentCommand: 'slotdeck-agent',
  storedAdminToken: true,
  pinnedKey: null,
  instance: null,
  idleStoppedAt: null,
  status: status('disconnected'),
  createdAt: '2024-01-01T00:00:00.000Z',
  updatedAt: '2024-01-01T00:00:00.000Z',
  ...changes,
});

export const slot = (id: string, changes: Partial<Slot> = {}): Slot => ({
  id,
  name: `slot-${id}`,
  command: { preset: 'shell' },
  argv: ['/bin/bash', '-l'],
  env: {},
  workDir: `/srv/slots/${id}`,
  homeDir: `/srv/slots/${id}/home`,
  memoryLimitMb: null,
  terminal: 'builtin',
  desiredState: 'running',
  state: 'running',
  failure: null,
  pid: 100,
  programPid: 101,
  uptimeMs: 1000,
  restarts: 0,
  cpuPercent: 0,
  memoryBytes: 1024,
  viewers: { writable: 0, readOnly: 0 },
  size: { cols: 120, rows: 32 },
  lastActivityAt: null,
  ownerId: null,
  metered: null,
  createdAt: '2024-01-01T00:00:00.000Z',
  updatedAt: '2024-01-01T00:00:00.000Z',
  ...changes,
});
