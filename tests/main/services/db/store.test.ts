import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HostNameTakenError,
  Store,
  STORE_SCHEMA_VERSION,
  StoreTooNewError,
  type NewHostRow,
} from '../../../../src/main/services/db/store';

let dir: string;
let file: string;
const opened: Store[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-store-'));
  file = join(dir, 'data', 'slotdeck.db');
});

afterEach(() => {
  for (const store of opened.splice(0)) {
    try {
      store.close();
    } catch {
      // Already closed by the test.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function open(path = file, now?: Date): Store {
  const store = Store.open(path, now);
  opened.push(store);
  return store;
}

function tables(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((row) => row.name);
  } finally {
    db.close();
  }
}

type NewHost = NewHostRow;

const localHost: NewHost = {
  id: 'local',
  name: 'This computer',
  kind: 'local',
  address: null,
  port: null,
  user: null,
  authMethod: null,
  keyPath: null,
  agentPort: 7420,
  agentCommand: null,
  hasPrivateKey: false,
  hasPassphrase: false,
  hasAdminToken: true,
};

const sshHost = (id: string, name: string): NewHost => ({
  id,
  name,
  kind: 'ssh',
  address: `${id}.example.com`,
  port: 22,
  user: 'ubuntu',
  authMethod: 'key',
  keyPath: null,
  agentPort: 7420,
  agentCommand: 'slotdeck-agent',
  hasPrivateKey: true,
  hasPassphrase: false,
  hasAdminToken: false,
  instanceAccountId: null,
  instanceRegion: null,
  instanceId: null,
  idleStoppedAt: null,
});

const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';

describe('Store.open', () => {
  it('creates an owner-only database with the hosts, host_keys and preferences tables', () => {
    const store = open();
    expect(store.notices).toEqual([]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    store.close();
    expect(tables(file)).toEqual(expect.arrayContaining(['host_keys', 'hosts', 'preferences']));
  });

  it('keeps hosts across a close and a reopen', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    store.close();
    expect(open().getHost('prod')?.name).toBe('Production');
  });

  it('sets a damaged file aside, starts with a fresh database and tells where the old one was kept', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    store.close();
    const garbage = randomBytes(8192);
    writeFileSync(file, garbage);

    const fresh = open(file, new Date('2024-05-06T07:08:09.123Z'));
    const backup = `${file}.damaged-2024-05-06T07-08-09-123Z`;
    expect(readFileSync(backup).equals(garbage)).toBe(true);
    expect(fresh.notices).toHaveLength(1);
    expect(fresh.notices[0]).toContain(backup);
    expect(fresh.listHosts()).toEqual([]);
    fresh.insertHost(sshHost('prod', 'Production'));
    expect(fresh.getHost('prod')?.name).toBe('Production');
  });

  it('refuses a database from a newer Slotdeck, leaves it byte-identical and keeps a copy', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    store.close();
    const db = new Database(file);
    db.pragma(`user_version = ${STORE_SCHEMA_VERSION + 1}`);
    db.close();
    const before = readFileSync(file);

    expect(() => Store.open(file, new Date('2024-05-06T07:08:09.123Z'))).toThrow(StoreTooNewError);
    expect(readFileSync(file).equals(before)).toBe(true);
    const copy = `${file}.newer-2024-05-06T07-08-09-123Z`;
    expect(readFileSync(copy).equals(before)).toBe(true);
    expect(readdirSync(join(dir, 'data')).filter((name) => name.includes('.damaged-'))).toEqual([]);
  });

  it('says which schema the newer database has and where the copy is', () => {
    open().close();
    const db = new Database(file);
    db.pragma(`user_version = ${STORE_SCHEMA_VERSION + 5}`);
    db.close();

    let message = '';
    try {
      Store.open(file, new Date('2024-05-06T07:08:09.123Z'));
    } catch (error) {
      expect(error).toBeInstanceOf(StoreTooNewError);
      message = (error as Error).message;
    }
    expect(message).toContain(`schema ${STORE_SCHEMA_VERSION + 5}`);
    expect(message).toContain(`${file}.newer-2024-05-06T07-08-09-123Z`);
    expect(message).toMatch(/update slotdeck/i);
  });

  it('drops its tables when migrated down to version 0', () => {
    const store = open();
    store.migrateDown(0);
    store.close();
    const remaining = tables(file);
    for (const name of ['hosts', 'host_keys', 'preferences']) expect(remaining).not.toContain(name);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    db.close();
  });

  it('migrates a database moved down to version 0 back up when it is opened again', () => {
    const store = open();
    store.migrateDown(0);
    store.close();
    const again = open();
    again.insertHost(sshHost('prod', 'Production'));
    expect(again.listHosts().map((host) => host.id)).toEqual(['prod']);
  });
});

describe('Store hosts', () => {
  it('stores a host and reads every field back', () => {
    const store = open();
    const inserted = store.insertHost(sshHost('prod', 'Production'), '2024-01-01T00:00:00.000Z');
    expect(inserted).toEqual({
      ...sshHost('prod', 'Production'),
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-01-01T00:00:00.000Z',
    });
    expect(store.getHost('prod')).toEqual(inserted);
    expect(store.getHost('missing')).toBeNull();
  });

  it('lists the local host first, then SSH hosts in the order they were added', () => {
    const store = open();
    store.insertHost(sshHost('second', 'Second'), '2024-01-02T00:00:00.000Z');
    store.insertHost(sshHost('first', 'First'), '2024-01-01T00:00:00.000Z');
    store.insertHost(localHost, '2024-01-03T00:00:00.000Z');
    expect(store.listHosts().map((host) => host.id)).toEqual(['local', 'first', 'second']);
  });

  it('updates only the given fields and the update time', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'), '2024-01-01T00:00:00.000Z');
    const updated = store.updateHost(
      'prod',
      { name: 'Prod EU', port: 2222, hasPrivateKey: false, keyPath: '/home/me/.ssh/id', user: undefined },
      '2024-02-01T00:00:00.000Z',
    );
    expect(updated).toEqual({
      ...sshHost('prod', 'Prod EU'),
      port: 2222,
      hasPrivateKey: false,
      keyPath: '/home/me/.ssh/id',
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-02-01T00:00:00.000Z',
    });
    expect(store.getHost('prod')).toEqual(updated);
  });

  it('refuses a second host whose name differs only in case', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    expect(() => store.insertHost(sshHost('prod-2', 'PRODUCTION'))).toThrow(HostNameTakenError);
    expect(store.listHosts().map((host) => host.id)).toEqual(['prod']);
  });

  it('refuses to rename a host to the name of another one', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    store.insertHost(sshHost('stage', 'Staging'));
    expect(() => store.updateHost('stage', { name: 'production' })).toThrow(HostNameTakenError);
    expect(store.getHost('stage')?.name).toBe('Staging');
  });

  it('deletes a host', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    store.insertHost(sshHost('stage', 'Staging'));
    store.deleteHost('prod');
    expect(store.getHost('prod')).toBeNull();
    expect(store.listHosts().map((host) => host.id)).toEqual(['stage']);
  });
});

describe('Store pinned keys', () => {
  it('pins, replaces and unpins a host key', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    expect(store.pinnedKey('prod')).toBeNull();

    store.pinKey('prod', { algorithm: 'ssh-ed25519', fingerprint: FINGERPRINT }, '2024-01-01T00:00:00.000Z');
    expect(store.pinnedKey('prod')).toEqual({
      algorithm: 'ssh-ed25519',
      fingerprint: FINGERPRINT,
      pinnedAt: '2024-01-01T00:00:00.000Z',
    });

    const other = 'SHA256:u0S4lfKqw5ENxt0f2iqJL2aFvDRX4SBa2q1n1fxnyM8';
    store.pinKey('prod', { algorithm: 'ssh-rsa', fingerprint: other }, '2024-02-01T00:00:00.000Z');
    expect(store.pinnedKey('prod')).toEqual({
      algorithm: 'ssh-rsa',
      fingerprint: other,
      pinnedAt: '2024-02-01T00:00:00.000Z',
    });

    store.unpinKey('prod');
    expect(store.pinnedKey('prod')).toBeNull();
  });

  it('forgets the pinned key of a deleted host, so a new host with the same id starts unpinned', () => {
    const store = open();
    store.insertHost(sshHost('prod', 'Production'));
    store.pinKey('prod', { algorithm: 'ssh-ed25519', fingerprint: FINGERPRINT });
    store.deleteHost('prod');
    expect(store.pinnedKey('prod')).toBeNull();
    store.insertHost(sshHost('prod', 'Production again'));
    expect(store.pinnedKey('prod')).toBeNull();
  });
});

describe('Store preferences', () => {
  it('returns undefined for a preference never set and round-trips JSON values', () => {
    const store = open();
    expect(store.preference('theme')).toBeUndefined();
    const consoles = [{ hostId: 'local', slotId: 'abcdefghij', mode: 'read-only' }];
    store.setPreference('theme', 'dark');
    store.setPreference('consoles', consoles);
    store.setPreference('selectedHostId', null);
    expect(store.preference<string>('theme')).toBe('dark');
    expect(store.preference('consoles')).toEqual(consoles);
    expect(store.preference('selectedHostId')).toBeNull();

    store.setPreference('theme', 'light');
    expect(store.preference<string>('theme')).toBe('light');
  });

  it('keeps preferences across a reopen', () => {
    const store = open();
    store.setPreference('theme', 'dark');
    store.close();
    expect(open().preference<string>('theme')).toBe('dark');
  });
});

describe('Store browser-mode sessions', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const later = new Date('2030-02-01T00:00:00Z');

  it('keeps a session’s origin with the hash of its secret, and forgets it once expired', () => {
    const store = open();
    store.insertWebSession({ id: 's-1', secretSha256: 'ab'.repeat(32), origin: 'http://127.0.0.1:7421' }, now, later);
    expect(store.webSession('s-1', now)).toEqual({
      id: 's-1',
      secretSha256: 'ab'.repeat(32),
      origin: 'http://127.0.0.1:7421',
    });
    expect(store.webSession('s-1', later)).toBeUndefined();
  });

  it('ends sessions made before they were bound to an origin when it upgrades the database', () => {
    const store = open();
    store.migrateDown(2);
    store.close();
    const db = new Database(file);
    db.prepare('INSERT INTO web_sessions VALUES (?, ?, ?, ?)').run('cd'.repeat(32), 'x', 'x', later.toISOString());
    db.close();
    const upgraded = open();
    expect(upgraded.webSession('cd'.repeat(32), now)).toBeUndefined();
    upgraded.insertWebSession({ id: 's-2', secretSha256: 'ef'.repeat(32), origin: 'http://127.0.0.1:1' }, now, later);
    expect(upgraded.webSession('s-2', now)?.origin).toBe('http://127.0.0.1:1');
  });
});

describe('Store.open on a newer database in rollback-journal mode', () => {
  // Switching a database to WAL rewrites its header (bytes 18-19): it must not happen before the version check, or
  // a newer database would be changed before it is refused, and its backup copy with it.
  it('leaves a newer rollback-journal database byte-identical and copies the original', () => {
    mkdirSync(join(dir, 'data'));
    const db = new Database(file);
    db.exec('CREATE TABLE hosts (id TEXT PRIMARY KEY)');
    db.pragma(`user_version = ${STORE_SCHEMA_VERSION + 1}`);
    db.close();
    const before = readFileSync(file);

    expect(() => Store.open(file, new Date('2024-05-06T07:08:09.123Z'))).toThrow(StoreTooNewError);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readFileSync(`${file}.newer-2024-05-06T07-08-09-123Z`).equals(before)).toBe(true);
  });
});
