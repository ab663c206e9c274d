import { describe, expect, it } from 'vitest';
import { IpcClientError } from '../../../src/renderer/src/lib/ipc';
import { createGatewayStore } from '../../../src/renderer/src/stores/gateway';
import type { GatewayStatus } from '../../../src/shared/ipc/contract';
import { fakeIpc } from '../fake-ipc';

const status = (changes: Partial<GatewayStatus> = {}): GatewayStatus => ({
  url: 'http://127.0.0.1:7421',
  listen: { host: '127.0.0.1', port: 7421 },
  upstream: { baseUrl: 'https://api.anthropic.com', keyConfigured: false },
  legacyMode: { enabled: false, userId: null, username: null },
  defaultRateLimit: { requestsPerMinute: 60, concurrentStreams: 4 },
  inFlight: 0,
  ...changes,
});

describe('gateway store', () => {
  it('keeps each host’s gateway status, and the new one after the upstream key or legacy mode changes', async () => {
    const ipc = fakeIpc({
      'gateway:status': () => status(),
      'gateway:set-upstream-key': () =>
        status({ upstream: { baseUrl: 'https://api.anthropic.com', keyConfigured: true } }),
      'gateway:update': () => status({ legacyMode: { enabled: true, userId: 'u_aaaaaaaaaa', username: 'ada' } }),
    });
    const store = createGatewayStore(ipc.client);
    await store.getState().refresh('prod');
    expect(store.getState().byHost.prod?.status?.upstream.keyConfigured).toBe(false);
    await store.getState().setUpstreamKey('prod', 'sk-ant-test-key');
    expect(store.getState().byHost.prod?.status?.upstream.keyConfigured).toBe(true);
    await store.getState().update('prod', { legacyMode: { enabled: true, userId: 'u_aaaaaaaaaa' } });
    expect(store.getState().byHost.prod?.status?.legacyMode).toEqual({
      enabled: true,
      userId: 'u_aaaaaaaaaa',
      username: 'ada',
    });
    expect(store.getState().byHost.stage).toBeUndefined();
  });

  it('keeps showing legacy mode as on when a later poll fails, with the failure beside it', async () => {
    const ipc = fakeIpc({
      'gateway:status': () => status({ legacyMode: { enabled: true, userId: 'u_aaaaaaaaaa', username: 'ada' } }),
    });
    const store = createGatewayStore(ipc.client);
    await store.getState().refresh('prod');
    ipc.handle('gateway:status', () => {
      throw new IpcClientError({ code: 'AGENT_NOT_RUNNING', message: 'The agent on prod does not answer.' });
    });
    await store.getState().refresh('prod');
    expect(store.getState().byHost.prod?.status?.legacyMode.enabled).toBe(true);
    expect(store.getState().byHost.prod?.error?.code).toBe('AGENT_NOT_RUNNING');
  });
});
