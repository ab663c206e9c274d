import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IpcError } from '../../../../src/main/ipc/errors';
import { readSshConfig } from '../../../../src/main/services/hosts/ssh-config';

const SAMPLE = `# Work machines
Host prod
  HostName prod.example.com
  Port 2222
  User ubuntu
  IdentityFile ~/.ssh/prod

Host *.internal
  User ops
  Port 2200

Host a b
  HostName shared.example.com

Host bastion
  HostName 10.0.0.5

Host *
  User admin
  IdentityFile ~/.ssh/id_default
`;

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-ssh-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configFile(text: string): string {
  const file = join(dir, 'config');
  writeFileSync(file, text);
  return file;
}

describe('readSshConfig', () => {
  it('resolves a host as ssh would: its own values first, ~ expanded to the home directory', () => {
    const file = configFile(SAMPLE);
    const { file: read, entries } = readSshConfig(file);
    expect(read).toBe(file);
    expect(entries.find((entry) => entry.alias === 'prod')).toEqual({
      alias: 'prod',
      address: 'prod.example.com',
      port: 2222,
      user: 'ubuntu',
      keyPath: join(homedir(), '.ssh', 'prod'),
    });
  });

  it('fills what a host leaves out from the Host * defaults, with port 22', () => {
    const { entries } = readSshConfig(configFile(SAMPLE));
    expect(entries.find((entry) => entry.alias === 'bastion')).toEqual({
      alias: 'bastion',
      address: '10.0.0.5',
      port: 22,
      user: 'admin',
      keyPath: join(homedir(), '.ssh', 'id_default'),
    });
  });

  it('does not offer wildcard patterns as hosts', () => {
    const { entries } = readSshConfig(configFile(SAMPLE));
    const aliases = entries.map((entry) => entry.alias);
    expect(aliases).toContain('prod');
    expect(aliases.some((alias) => /[*?!]/.test(alias))).toBe(false);
  });

  it('uses the alias as the address and leaves user and key empty when nothing sets them', () => {
    const { entries } = readSshConfig(configFile('Host devbox\n  Port 2022\n'));
    expect(entries).toEqual([{ alias: 'devbox', address: 'devbox', port: 2022, user: null, keyPath: null }]);
  });

  it('falls back to port 22 when the config gives a port that is not one', () => {
    const { entries } = readSshConfig(configFile('Host odd\n  Port 99999\n'));
    expect(entries).toEqual([{ alias: 'odd', address: 'odd', port: 22, user: null, keyPath: null }]);
  });

  it('gives an empty list when the config file does not exist', () => {
    const missing = join(dir, 'no-such-config');
    expect(readSshConfig(missing)).toEqual({ file: missing, entries: [] });
  });

  it('reports SSH_CONFIG_UNREADABLE naming the file when it cannot be read', () => {
    let error: unknown;
    try {
      readSshConfig(dir);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(IpcError);
    expect((error as IpcError).code).toBe('SSH_CONFIG_UNREADABLE');
    expect((error as IpcError).message).toContain(dir);
  });
});

describe('readSshConfig with several aliases on one Host line', () => {
  // ssh-config parses `Host a b` into a list of values (a single name into a string); both forms must be read.
  it('lists each alias of a `Host a b` line, resolved with the shared values and the defaults', () => {
    const { entries } = readSshConfig(configFile(SAMPLE));
    const defaults = { address: 'shared.example.com', port: 22, user: 'admin' };
    const keyPath = join(homedir(), '.ssh', 'id_default');
    expect(entries.filter((entry) => entry.alias === 'a' || entry.alias === 'b')).toEqual([
      { alias: 'a', ...defaults, keyPath },
      { alias: 'b', ...defaults, keyPath },
    ]);
  });
});
