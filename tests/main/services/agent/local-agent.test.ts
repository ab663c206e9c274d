import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalAgent } from '../../../../src/main/services/agent/local-agent';

/**
 * What "This computer"'s agent is started with. The agent here is a stand-in script that writes down its
 * environment and exits; the real agent is started by the integration and E2E tests.
 */
let dir: string;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-local-agent-'));
  mkdirSync(join(dir, 'agent', 'bin'), { recursive: true });
  mkdirSync(join(dir, 'agent', 'dist'), { recursive: true });
  writeFileSync(join(dir, 'agent', 'dist', 'cli.js'), '');
  writeFileSync(
    join(dir, 'agent', 'bin', 'slotdeck-agent.js'),
    `const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(SLOTDECK|ANTHROPIC|GITHUB)_/.test(k)));
require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'env.json'))}, JSON.stringify(env));
process.exit(3);`,
  );
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function startedEnv(options: { env?: NodeJS.ProcessEnv; gatewayPort?: number }): Promise<Record<string, string>> {
  const agent = new LocalAgent({
    agentDir: join(dir, 'agent'),
    dataDir: join(dir, 'data'),
    logFile: join(dir, 'agent.log'),
    nodePath: process.execPath,
    log: silent,
    onStateChange: () => undefined,
    ...options,
  });
  await expect(agent.ensureRunning()).rejects.toMatchObject({ code: 'LOCAL_AGENT_FAILED' });
  await agent.stop();
  return JSON.parse(readFileSync(join(dir, 'env.json'), 'utf8')) as Record<string, string>;
}

describe('the local agent’s gateway', () => {
  it('listens on this machine only, on port 7421 by default, with the panel’s upstream passed on', async () => {
    const env = await startedEnv({ env: { SLOTDECK_AGENT_UPSTREAM_URL: 'http://127.0.0.1:9999' } });
    expect(env).toMatchObject({
      SLOTDECK_AGENT_GATEWAY_HOST: '127.0.0.1',
      SLOTDECK_AGENT_GATEWAY_PORT: '7421',
      SLOTDECK_AGENT_UPSTREAM_URL: 'http://127.0.0.1:9999',
      SLOTDECK_AGENT_DATA_DIR: join(dir, 'data'),
    });
  });

  it('takes its port from SLOTDECK_AGENT_GATEWAY_PORT or the options (0: any free port), never another host', async () => {
    expect(
      await startedEnv({ env: { SLOTDECK_AGENT_GATEWAY_PORT: '0', SLOTDECK_AGENT_GATEWAY_HOST: '0.0.0.0' } }),
    ).toMatchObject({ SLOTDECK_AGENT_GATEWAY_HOST: '127.0.0.1', SLOTDECK_AGENT_GATEWAY_PORT: '0' });
    expect(await startedEnv({ env: { SLOTDECK_AGENT_GATEWAY_PORT: '0' }, gatewayPort: 8421 })).toMatchObject({
      SLOTDECK_AGENT_GATEWAY_PORT: '8421',
    });
  });
});

describe('secrets and the local agent', () => {
  it('starts the agent without the vault key or any other secret in its environment (PM2 and slots inherit it)', async () => {
    const env = await startedEnv({
      env: {
        SLOTDECK_MASTER_KEY: 'vault-passphrase',
        SLOTDECK_AGENT_UPSTREAM_KEY: 'sk-ant-upstream',
        ANTHROPIC_API_KEY: 'sk-ant-admin',
        GITHUB_TOKEN: 'ghp_admin',
        SLOTDECK_AGENT_LOG_LEVEL: 'debug',
      },
    });
    expect(env.SLOTDECK_AGENT_LOG_LEVEL).toBe('debug');
    expect(JSON.stringify(env)).not.toMatch(/vault-passphrase|sk-ant-upstream|sk-ant-admin|ghp_admin/);
  });

  it('hands an upstream key from the panel’s environment to the agent as its private key file, once', async () => {
    await startedEnv({ env: { SLOTDECK_AGENT_UPSTREAM_KEY: 'sk-ant-first' } });
    const file = join(dir, 'data', 'secrets', 'upstream-key');
    expect(readFileSync(file, 'utf8')).toBe('sk-ant-first');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // A key already there (set in the Gateway view) wins.
    await startedEnv({ env: { SLOTDECK_AGENT_UPSTREAM_KEY: 'sk-ant-second' } });
    expect(readFileSync(file, 'utf8')).toBe('sk-ant-first');
  });
});

describe('the admin token of the local agent', () => {
  it('is read again after `slotdeck-agent token --rotate` changed it, so the panel is not locked out', async () => {
    // An agent that already runs (adopted, as after a panel restart): a stand-in that answers /health.
    const server = createServer((_req, res) => res.end(JSON.stringify({ supervisor: { ok: true } })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const adminUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const data = join(dir, 'data');
    mkdirSync(join(data, 'secrets'), { recursive: true });
    writeFileSync(join(data, 'agent-state.json'), JSON.stringify({ pid: process.pid, adminUrl }));
    writeFileSync(join(data, 'secrets', 'admin-token'), 'first-token\n');
    const agent = new LocalAgent({
      agentDir: join(dir, 'agent'),
      dataDir: data,
      logFile: join(dir, 'agent.log'),
      nodePath: process.execPath,
      log: silent,
      onStateChange: () => undefined,
    });
    try {
      await agent.ensureRunning();
      expect(agent.endpoint).toEqual({ baseUrl: adminUrl, token: 'first-token' });
      // What rotateAdminToken does: a new file in its place.
      writeFileSync(join(data, 'secrets', 'admin-token.new'), 'second-token-longer\n');
      renameSync(join(data, 'secrets', 'admin-token.new'), join(data, 'secrets', 'admin-token'));
      expect(agent.endpoint?.token).toBe('second-token-longer');
    } finally {
      server.close();
    }
  });
});
