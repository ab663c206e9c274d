import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../../remote-agent/src/config.js';
import { startHarness, type Harness } from './harness.js';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'sd-gateway-config-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const load = (env: Record<string, string> = {}, file?: unknown) => {
  if (file !== undefined) writeFileSync(join(dataDir, 'agent.json'), JSON.stringify(file));
  return loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir, ...env } }).gateway;
};

describe('the gateway’s listen address', () => {
  it('stays on 127.0.0.1 when nothing is set and there is no TLS certificate', () => {
    expect(load().host).toBe('127.0.0.1');
  });

  it('listens on all interfaces by default when the gateway has its own certificate', () => {
    const tls = { tlsCertFile: '/etc/ssl/gateway.pem', tlsKeyFile: '/etc/ssl/gateway.key' };
    expect(load({}, { gateway: tls }).host).toBe('0.0.0.0');
  });

  it('keeps a host the admin set, 0.0.0.0 included, from the file or the environment', () => {
    expect(load({}, { gateway: { host: '0.0.0.0' } }).host).toBe('0.0.0.0');
    expect(load({ SLOTDECK_AGENT_GATEWAY_HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(load({ SLOTDECK_AGENT_GATEWAY_HOST: '10.0.0.5' }).host).toBe('10.0.0.5');
  });
});

describe('the body timeout', () => {
  it('is 30 s unless set, and is read from SLOTDECK_AGENT_GATEWAY_BODY_TIMEOUT_MS', () => {
    expect(load().bodyTimeoutMs).toBe(30_000);
    expect(load({ SLOTDECK_AGENT_GATEWAY_BODY_TIMEOUT_MS: '5000' }).bodyTimeoutMs).toBe(5000);
  });

  it('refuses a bad value, naming the variable and the fix', () => {
    let message = '';
    try {
      load({ SLOTDECK_AGENT_GATEWAY_BODY_TIMEOUT_MS: 'soon' });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as ConfigError).message;
    }
    expect(message).toContain('gateway.bodyTimeoutMs');
    expect(message).toContain('SLOTDECK_AGENT_GATEWAY_BODY_TIMEOUT_MS');
    expect(message).toMatch(/milliseconds/);
  });
});

describe('prices in the config', () => {
  it('takes a default price ("*"), 1-hour cache writes and a long-context tier, and refuses a malformed one', () => {
    const gateway = load(
      {},
      {
        gateway: {
          prices: {
            '*': { input: 10, output: 50, cacheWrite: 12.5, cacheRead: 1 },
            mine: {
              input: 1,
              output: 2,
              cacheWrite: 1.25,
              cacheRead: 0.1,
              cacheWrite1h: 2,
              longContext: { aboveInputTokens: 100_000, input: 2, output: 3, cacheWrite: 2.5, cacheRead: 0.2 },
            },
          },
        },
      },
    );
    expect(gateway.prices['*']).toMatchObject({ input: 10 });
    expect(gateway.prices.mine?.longContext).toMatchObject({ aboveInputTokens: 100_000 });
    expect(() =>
      load(
        {},
        { gateway: { prices: { mine: { input: 1, output: 2, cacheWrite: 1, cacheRead: 0, longContext: {} } } } },
      ),
    ).toThrow(ConfigError);
  });
});

describe('a gateway listening beyond this machine in plain HTTP', () => {
  let h: Harness | null = null;
  afterAll(() => h?.close());

  it('says so loudly in the log', async () => {
    h = await startHarness({ upstream: false, config: { host: '0.0.0.0' } });
    await h.listen();
    expect(h.logs.join('\n')).toMatch(/PLAIN HTTP BEYOND THIS MACHINE/);
  });
});
