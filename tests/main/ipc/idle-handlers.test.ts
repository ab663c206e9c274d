import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IdleStatus } from '../../../remote-agent/src/contract/index';
import { createDeployHandlers } from '../../../src/main/ipc/handlers-cloud';
import { EventBus } from '../../../src/main/ipc/events';
import { Store } from '../../../src/main/services/db/store';
import type { DeployService } from '../../../src/main/services/deploy/deploy-service';
import type { HostService } from '../../../src/main/services/hosts/hosts';

let dir: string;
let store: Store;
/** What the host's agent answers to the idle routes (the agent's own behaviour is tested in remote-agent). */
let answer: IdleStatus;

const idle = (changes: Partial<IdleStatus>): IdleStatus => ({
  policy: { enabled: true, minutes: 30 },
  stopCommand: 'sudo -n shutdown -h now',
  lastActivityAt: '2026-12-01T10:00:00.000Z',
  lastActivity: 'terminal',
  keepAwakeUntil: null,
  stopAt: '2026-12-01T10:30:00.000Z',
  secondsLeft: 0,
  state: 'stopping',
  lastStop: null,
  ...changes,
});

function handlers() {
  const hosts = { client: () => ({ call: () => Promise.resolve(answer) }) } as unknown as HostService;
  return createDeployHandlers({ store, hosts, events: new EventBus(), deploy: {} as DeployService });
}
const ctx: Parameters<ReturnType<typeof handlers>['idle:status']>[1] = { signal: new AbortController().signal };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-idle-handlers-'));
  store = Store.open(join(dir, 'slotdeck.db'));
  store.insertHost({
    id: 'h-1',
    name: 'web',
    kind: 'ssh',
    address: 'web.example.com',
    port: 22,
    user: 'ubuntu',
    authMethod: 'key',
    keyPath: null,
    agentPort: 7420,
    agentCommand: 'slotdeck-agent',
    hasPrivateKey: true,
    hasPassphrase: false,
    hasAdminToken: false,
  });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('"stopped by idle policy" as the host list says it', () => {
  it('is recorded only once the stop command ran and exited 0', async () => {
    const on = handlers();
    answer = idle({ lastStop: { at: '2026-12-01T10:30:00.000Z', exitCode: null, output: '' } });
    await on['idle:status']({ hostId: 'h-1' }, ctx);
    expect(store.getHost('h-1')?.idleStoppedAt).toBeNull();

    answer = idle({
      state: 'failed',
      lastStop: { at: '2026-12-01T10:30:00.000Z', exitCode: 1, output: 'sudo: a password is required' },
    });
    await on['idle:status']({ hostId: 'h-1' }, ctx);
    expect(store.getHost('h-1')?.idleStoppedAt).toBeNull();

    answer = idle({ lastStop: { at: '2026-12-01T10:31:00.000Z', exitCode: 0, output: '' } });
    await on['idle:status']({ hostId: 'h-1' }, ctx);
    expect(store.getHost('h-1')?.idleStoppedAt).toBe('2026-12-01T10:31:00.000Z');
  });

  it('is not recorded from an old successful stop once the host counts down again', async () => {
    answer = idle({
      state: 'counting',
      secondsLeft: 900,
      lastStop: { at: '2026-11-30T10:00:00.000Z', exitCode: 0, output: '' },
    });
    await handlers()['idle:status']({ hostId: 'h-1' }, ctx);
    expect(store.getHost('h-1')?.idleStoppedAt).toBeNull();
  });
});
