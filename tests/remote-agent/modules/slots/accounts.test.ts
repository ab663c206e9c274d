import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseHelperConfig, SlotAccounts } from '../../../../remote-agent/src/modules/slots/accounts.js';

const me = userInfo().username;
let dir: string;
let servers: Server[];
const accounts = new SlotAccounts({ helper: '/nonexistent', sudo: '/nonexistent', homes: '/h', run: '/r', nproc: 1 });

const listen = (path: string): Promise<void> =>
  new Promise((resolve) => {
    const server = createServer();
    servers.push(server);
    server.listen(path, resolve);
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-accounts-'));
  mkdirSync(join(dir, 's'));
  servers = [];
});
afterEach(() => {
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('claimSocket: the agent connects only to a socket it took out of the account-writable folder', () => {
  it("takes the account's socket into the agent's folder", async () => {
    await listen(join(dir, 's', 'abc.sock'));
    accounts.claimSocket(join(dir, 's', 'abc.sock'), join(dir, 'abc.sock'), me);
    expect(statSync(join(dir, 'abc.sock')).isSocket()).toBe(true);
    expect(readdirSync(join(dir, 's'))).toEqual([]);
    // Again (the agent reconnects): nothing new in s/, the one taken before is used.
    expect(() => accounts.claimSocket(join(dir, 's', 'abc.sock'), join(dir, 'abc.sock'), me)).not.toThrow();
  });

  it("refuses a link to another slot's socket, and does not leave it to be followed later", async () => {
    await listen(join(dir, 'victim.sock'));
    symlinkSync(join(dir, 'victim.sock'), join(dir, 's', 'abc.sock'));
    expect(() => accounts.claimSocket(join(dir, 's', 'abc.sock'), join(dir, 'abc.sock'), me)).toThrow(/not a socket/);
    expect(() => statSync(join(dir, 'abc.sock'))).toThrow();
    expect(statSync(join(dir, 'victim.sock')).isSocket()).toBe(true);
  });

  it('refuses a file or folder in place of the socket, and a socket of another uid', async () => {
    writeFileSync(join(dir, 's', 'abc.sock'), 'not a socket');
    expect(() => accounts.claimSocket(join(dir, 's', 'abc.sock'), join(dir, 'abc.sock'), me)).toThrow(/not a socket/);
    mkdirSync(join(dir, 's', 'abc.sock'));
    expect(() => accounts.claimSocket(join(dir, 's', 'abc.sock'), join(dir, 'abc.sock'), me)).toThrow(/not a socket/);
    await listen(join(dir, 's', 'abc.sock'));
    expect(() =>
      accounts.claimSocket(join(dir, 's', 'abc.sock'), join(dir, 'abc.sock'), 'no-such-account-here'),
    ).toThrow(/not a socket of/);
  });
});

describe('parseHelperConfig', () => {
  it('reads the settings setup-host writes, and refuses paths that are not plain absolute paths', () => {
    expect(parseHelperConfig('# c\nhomes=/home/s-slots\nrun=/run/s-slots\nnproc=256\n')).toEqual({
      homes: '/home/s-slots',
      run: '/run/s-slots',
      nproc: 256,
    });
    expect(parseHelperConfig('homes=/h\nrun=/r\n')?.nproc).toBe(1024);
    expect(parseHelperConfig('homes=relative\nrun=/r\n')).toBeNull();
    expect(parseHelperConfig('homes=/h $(id)\nrun=/r\n')).toBeNull();
    expect(parseHelperConfig('run=/r\n')).toBeNull();
  });
});
