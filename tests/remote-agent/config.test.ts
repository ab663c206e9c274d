import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type LoadConfigOptions } from '../../remote-agent/src/config.js';
import { SlotPaths } from '../../remote-agent/src/modules/slots/paths.js';

/** Linux keeps unix socket paths in sun_path[108], NUL included. */
const MAX_SOCKET_PATH = 107;

let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'sd-config-'));
});

afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

function writeConfigFile(content: unknown, file = join(dataDir, 'agent.json')): string {
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The ConfigError message loadConfig throws, or a failure when it does not throw one. */
function configErrorMessage(options: LoadConfigOptions): string {
  try {
    loadConfig(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('loadConfig defaults', () => {
  it('listens on 127.0.0.1:7420 and keeps PM2 and the sockets under the data dir when nothing is set', () => {
    const config = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(config.dataDir).toBe(dataDir);
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 7420 });
    expect(config.pm2Home).toBe(join(dataDir, 'pm2'));
    expect(config.runDir).toBe(join(dataDir, 'run'));
    expect(config.logLevel).toBe('info');
    expect(config.terminal.ticketTtlSeconds).toBe(30);
    expect(config.configFile).toBeNull();
  });

  it('puts the data dir under XDG_DATA_HOME when no data dir is given', () => {
    const config = loadConfig({ env: { XDG_DATA_HOME: dataDir } });
    expect(config.dataDir).toBe(join(dataDir, 'slotdeck-agent'));
    expect(config.pm2Home).toBe(join(dataDir, 'slotdeck-agent', 'pm2'));
  });

  it('resolves a relative --data-dir against the current directory', () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: 'relative/agent-data' } });
    expect(config.dataDir).toBe(resolve('relative/agent-data'));
  });
});

describe('loadConfig precedence', () => {
  it('reads <data dir>/agent.json, lets SLOTDECK_AGENT_* variables override it and the command line win', () => {
    const file = writeConfigFile({ admin: { port: 8000 }, logLevel: 'debug', terminal: { scrollbackLines: 500 } });

    const fromFile = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(fromFile.configFile).toBe(file);
    expect(fromFile.admin.port).toBe(8000);
    expect(fromFile.logLevel).toBe('debug');
    expect(fromFile.terminal.scrollbackLines).toBe(500);

    const env = { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_ADMIN_PORT: '9000' };
    const fromEnv = loadConfig({ env });
    expect(fromEnv.admin.port).toBe(9000);
    // Values the variables do not touch still come from the file.
    expect(fromEnv.logLevel).toBe('debug');
    expect(fromEnv.admin.host).toBe('127.0.0.1');

    const fromCli = loadConfig({ env, overrides: { 'admin.port': 9100 } });
    expect(fromCli.admin.port).toBe(9100);
    expect(fromCli.logLevel).toBe('debug');
  });

  it('reads the file named by --config or SLOTDECK_AGENT_CONFIG instead of the one in the data dir', () => {
    writeConfigFile({ admin: { port: 8000 } });
    const elsewhere = writeConfigFile({ admin: { port: 8100 } }, join(dataDir, 'other.json'));
    const env = { SLOTDECK_AGENT_DATA_DIR: dataDir };
    expect(loadConfig({ env, configFile: elsewhere }).admin.port).toBe(8100);
    expect(loadConfig({ env: { ...env, SLOTDECK_AGENT_CONFIG: elsewhere } }).admin.port).toBe(8100);
  });

  it('ignores empty SLOTDECK_AGENT_* variables', () => {
    const config = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_ADMIN_PORT: '' } });
    expect(config.admin.port).toBe(7420);
  });
});

describe('loadConfig rejects bad values with the key, where it came from and the fix', () => {
  it('names SLOTDECK_AGENT_ADMIN_PORT and a valid example when the port is not a number', () => {
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_ADMIN_PORT: 'abc' } });
    expect(message).toContain('admin.port');
    expect(message).toContain('SLOTDECK_AGENT_ADMIN_PORT="abc"');
    expect(message).toContain('must be a whole number');
    expect(message).toContain('use a free TCP port 1-65535');
  });

  it('rejects port 70000 from the environment', () => {
    const message = configErrorMessage({
      env: { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_ADMIN_PORT: '70000' },
    });
    expect(message).toContain('admin.port');
    expect(message).toContain('SLOTDECK_AGENT_ADMIN_PORT="70000"');
    expect(message).toContain('65535');
  });

  it('refuses to put the admin listener on 0.0.0.0, naming the config file it came from', () => {
    const file = writeConfigFile({ admin: { host: '0.0.0.0' } });
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(message).toContain('admin.host');
    expect(message).toContain(`from ${file}`);
    expect(message).toContain('use 127.0.0.1 or ::1');
  });

  it('rejects a relative data dir given in SLOTDECK_AGENT_DATA_DIR', () => {
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: 'relative/dir' } });
    expect(message).toContain('dataDir');
    expect(message).toContain('SLOTDECK_AGENT_DATA_DIR="relative/dir"');
    expect(message).toContain('must be an absolute path');
    expect(message).toContain('e.g. /var/lib/slotdeck-agent');
  });

  it('rejects a ticket TTL of 120 seconds', () => {
    const message = configErrorMessage({
      env: { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_TICKET_TTL_S: '120' },
    });
    expect(message).toContain('terminal.ticketTtlSeconds');
    expect(message).toContain('SLOTDECK_AGENT_TICKET_TTL_S="120"');
    expect(message).toContain('use seconds between 5 and 60');
  });

  it('names a misspelt key in the config file and says to fix the spelling', () => {
    writeConfigFile({ admin: { port: 7420 }, logLevl: 'debug' });
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(message).toContain('"logLevl"');
    expect(message).toContain('check the spelling');
  });

  it('says which config file holds a misspelt key', () => {
    const file = writeConfigFile({ logLevl: 'debug' });
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(message).toContain(file);
  });

  it('reports a config file that is not valid JSON with its path and what to do', () => {
    const file = writeConfigFile('{"admin": {"port": 7420},}');
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(message).toContain(file);
    expect(message).toContain('is not valid JSON');
    expect(message).toContain('fix the file or remove it');
  });

  it('reports a config file holding a JSON array instead of an object', () => {
    const file = writeConfigFile([{ admin: { port: 7420 } }]);
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir } });
    expect(message).toContain(file);
    expect(message).toContain('must hold a JSON object');
  });

  it('stops when the config file named by --config or SLOTDECK_AGENT_CONFIG does not exist', () => {
    const missing = join(dataDir, 'missing.json');
    const fromOption = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir }, configFile: missing });
    expect(fromOption).toContain(`config file ${missing} does not exist`);
    expect(fromOption).toContain('drop --config / SLOTDECK_AGENT_CONFIG');
    const fromEnv = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_CONFIG: missing } });
    expect(fromEnv).toContain(`config file ${missing} does not exist`);
  });

  it('blames the command line when a --port override is bad', () => {
    const message = configErrorMessage({ env: { SLOTDECK_AGENT_DATA_DIR: dataDir }, overrides: { 'admin.port': 'x' } });
    expect(message).toContain('admin.port from the command line');
  });

  it('lists every problem at once, one per line', () => {
    const error = (() => {
      try {
        loadConfig({
          env: {
            SLOTDECK_AGENT_DATA_DIR: dataDir,
            SLOTDECK_AGENT_ADMIN_PORT: '-1',
            SLOTDECK_AGENT_LOG_LEVEL: 'loud',
            SLOTDECK_AGENT_RECONCILE_INTERVAL_MS: '10',
          },
        });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('loadConfig accepted the configuration');
    })();
    expect(error.problems).toHaveLength(3);
    expect(error.problems.join('\n')).toMatch(/admin\.port[^\n]*SLOTDECK_AGENT_ADMIN_PORT="-1"/);
    expect(error.problems.join('\n')).toMatch(/logLevel[^\n]*SLOTDECK_AGENT_LOG_LEVEL="loud"[^\n]*fatal, error/);
    expect(error.problems.join('\n')).toMatch(/reconcileIntervalMs[^\n]*between 200 and 600000/);
    expect(error.message.split('\n').filter((line) => line.startsWith('  - '))).toHaveLength(3);
  });
});

describe('loadConfig run dir', () => {
  it('moves the sockets to a short folder under the temp dir when the data dir is too long for them', () => {
    const longDataDir = join(dataDir, 'a'.repeat(60), 'b'.repeat(60));
    mkdirSync(longDataDir, { recursive: true });
    const config = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: longDataDir } });
    expect(config.runDir.startsWith(tmpdir())).toBe(true);
    expect(config.pm2Home.startsWith(tmpdir())).toBe(true);
    // Stable for one data dir (a restarted agent finds its slots' sockets), distinct for another.
    const again = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: longDataDir } });
    expect([again.runDir, again.pm2Home]).toEqual([config.runDir, config.pm2Home]);
    expect(loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: `${longDataDir}2` } }).runDir).not.toBe(config.runDir);
  });

  it('rejects an explicit run dir too long for unix sockets, naming SLOTDECK_AGENT_RUN_DIR', () => {
    const message = configErrorMessage({
      env: { SLOTDECK_AGENT_DATA_DIR: dataDir, SLOTDECK_AGENT_RUN_DIR: `/tmp/${'r'.repeat(100)}` },
    });
    expect(message).toContain('runDir');
    expect(message).toContain('SLOTDECK_AGENT_RUN_DIR=');
    expect(message).toContain('at most 86 characters');
  });

  it('leaves room for every socket the agent binds, whatever the length of the data dir', () => {
    const slotId = 'abcdefghij';
    for (let length = 20; length <= 140; length += 1) {
      const base = `${dataDir}/`;
      const longDataDir = base + 'd'.repeat(Math.max(1, length - base.length));
      const config = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: longDataDir } });
      const paths = new SlotPaths(config.dataDir, config.runDir);
      const sockets = [
        paths.socket(slotId),
        paths.ttydSocket(slotId),
        paths.tmuxSocket(slotId),
        join(config.runDir, 'agent.lock'),
        join(config.pm2Home, 'rpc.sock'),
        join(config.pm2Home, 'pub.sock'),
      ];
      for (const socket of sockets) expect(socket.length, socket).toBeLessThanOrEqual(MAX_SOCKET_PATH);
    }
  });
});
