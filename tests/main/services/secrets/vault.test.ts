import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IpcError } from '../../../../src/main/ipc/errors';
import {
  createVault,
  FileVault,
  KEYCHAIN_SERVICE,
  KeychainVault,
  type KeyringEntryFactory,
} from '../../../../src/main/services/secrets/vault';

const PASSPHRASE = 'correct horse battery staple';
const SECRET = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-vault-'));
  file = join(dir, 'secrets', 'vault.json');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The IpcError a promise rejects with, or a failure when it resolves or rejects with something else. */
async function ipcErrorOf(promise: Promise<unknown>): Promise<IpcError> {
  const error: unknown = await promise.then(
    () => new Error('the call succeeded'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(IpcError);
  return error as IpcError;
}

/** An in-memory keychain, keyed by service and account; `fail` makes every call reject like a locked keychain. */
function fakeKeyring(options: { fail?: string } = {}): {
  factory: KeyringEntryFactory;
  entries: Map<string, string>;
} {
  const entries = new Map<string, string>();
  const refuse = (): Promise<never> => Promise.reject(new Error(options.fail));
  const factory: KeyringEntryFactory = (service, account) => {
    const id = `${service}/${account}`;
    return {
      getPassword: () => (options.fail ? refuse() : Promise.resolve(entries.get(id) ?? null)),
      setPassword: (value) => {
        if (options.fail) return refuse();
        entries.set(id, value);
        return Promise.resolve();
      },
      deletePassword: () => (options.fail ? refuse() : Promise.resolve(entries.delete(id))),
    };
  };
  return { factory, entries };
}

describe('FileVault', () => {
  it('is uninitialized and writes nothing before a passphrase is chosen', () => {
    const vault = new FileVault(file);
    expect(vault.status()).toMatchObject({ backend: 'file', state: 'uninitialized' });
    expect(vault.status().detail).toMatch(/passphrase/i);
    expect(() => statSync(file)).toThrow();
  });

  it('refuses to read or store secrets before a passphrase is chosen', async () => {
    const vault = new FileVault(file);
    expect((await ipcErrorOf(vault.get('token'))).code).toBe('SECRETS_LOCKED');
    expect((await ipcErrorOf(vault.set('token', 'value'))).code).toBe('SECRETS_LOCKED');
  });

  it('creates an owner-only file on the first passphrase and becomes ready', async () => {
    const vault = new FileVault(file);
    const status = await vault.unlock(PASSPHRASE);
    expect(status).toMatchObject({ backend: 'file', state: 'ready' });
    expect(vault.status().state).toBe('ready');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('stores, reads back and deletes a secret', async () => {
    const vault = new FileVault(file);
    await vault.unlock(PASSPHRASE);
    expect(await vault.get('host-1/private-key')).toBeNull();

    await vault.set('host-1/private-key', SECRET);
    await vault.set('host-1/admin-token', 'token-aaaaaaaaaaaaaaaaaaaa');
    expect(await vault.get('host-1/private-key')).toBe(SECRET);
    expect(await vault.get('host-1/admin-token')).toBe('token-aaaaaaaaaaaaaaaaaaaa');

    await vault.delete('host-1/private-key');
    expect(await vault.get('host-1/private-key')).toBeNull();
    expect(await vault.get('host-1/admin-token')).toBe('token-aaaaaaaaaaaaaaaaaaaa');
  });

  it('keeps neither the secrets nor the passphrase in plain text on disk', async () => {
    const vault = new FileVault(file);
    await vault.unlock(PASSPHRASE);
    await vault.set('host-1/admin-token', 'super-secret-admin-token-value');
    await vault.set('host-1/private-key', SECRET);

    const text = readFileSync(file, 'utf8');
    expect(text).toContain('host-1/admin-token');
    for (const plain of ['super-secret-admin-token-value', 'b3BlbnNzaC1rZXktdjEAAAAA', 'OPENSSH', PASSPHRASE]) {
      expect(text).not.toContain(plain);
      expect(text).not.toContain(Buffer.from(plain).toString('base64'));
    }
  });

  it('is locked in a new session and needs the same passphrase to read the earlier secrets', async () => {
    const first = new FileVault(file);
    await first.unlock(PASSPHRASE);
    await first.set('host-1/admin-token', 'token-from-last-session');

    const next = new FileVault(file);
    expect(next.status()).toMatchObject({ backend: 'file', state: 'locked' });
    const locked = await ipcErrorOf(next.get('host-1/admin-token'));
    expect(locked.code).toBe('SECRETS_LOCKED');
    expect(locked.message).toMatch(/passphrase/i);

    expect((await next.unlock(PASSPHRASE)).state).toBe('ready');
    expect(await next.get('host-1/admin-token')).toBe('token-from-last-session');
  });

  it('refuses a wrong passphrase and stays locked', async () => {
    const first = new FileVault(file);
    await first.unlock(PASSPHRASE);
    await first.set('host-1/admin-token', 'token-from-last-session');

    const next = new FileVault(file);
    const wrong = await ipcErrorOf(next.unlock('not the passphrase'));
    expect(wrong.code).toBe('SECRETS_PASSPHRASE_WRONG');
    expect(next.status().state).toBe('locked');
    expect((await ipcErrorOf(next.get('host-1/admin-token'))).code).toBe('SECRETS_LOCKED');
  });

  it('does not open a sealed value that was moved under another name in the file', async () => {
    const vault = new FileVault(file);
    await vault.unlock(PASSPHRASE);
    await vault.set('host-1/admin-token', 'token-of-host-1');
    await vault.set('host-2/admin-token', 'token-of-host-2');

    const json = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, unknown> };
    json.entries['host-2/admin-token'] = json.entries['host-1/admin-token'];
    writeFileSync(file, JSON.stringify(json));

    await expect(vault.get('host-2/admin-token')).rejects.toThrow();
    expect(await vault.get('host-1/admin-token')).toBe('token-of-host-1');
  });
});

describe('createVault', () => {
  it('uses the keychain when a probe entry can be written and deleted', async () => {
    const { factory, entries } = fakeKeyring();
    const vault = await createVault({ file, entry: factory });
    expect(vault).toBeInstanceOf(KeychainVault);
    expect(vault.status()).toMatchObject({ backend: 'keychain', state: 'ready' });
    // The probe leaves nothing behind, and no secrets file is made.
    expect(entries.size).toBe(0);
    expect(() => statSync(file)).toThrow();

    await vault.set('host-1/admin-token', 'token-in-keychain');
    expect(entries.get(`${KEYCHAIN_SERVICE}/host-1/admin-token`)).toBe('token-in-keychain');
  });

  it('falls back to the encrypted file when the keychain refuses to store', async () => {
    const { factory } = fakeKeyring({ fail: 'no Secret Service' });
    const vault = await createVault({ file, entry: factory });
    expect(vault).toBeInstanceOf(FileVault);
    expect(vault.status()).toMatchObject({ backend: 'file', state: 'uninitialized' });
  });

  it('uses the encrypted file when there is no keychain library', async () => {
    const vault = await createVault({ file, entry: null });
    expect(vault).toBeInstanceOf(FileVault);
    expect(vault.status().backend).toBe('file');
  });

  it('unlocks the encrypted file at once with a master key, and the same key opens it next time', async () => {
    const vault = await createVault({ file, masterKey: 'master-key-from-env' });
    expect(vault).toBeInstanceOf(FileVault);
    expect(vault.status()).toMatchObject({ backend: 'file', state: 'ready' });
    await vault.set('host-1/admin-token', 'kept-with-master-key');

    const again = await createVault({ file, masterKey: 'master-key-from-env' });
    expect(again.status().state).toBe('ready');
    expect(await again.get('host-1/admin-token')).toBe('kept-with-master-key');
  });
});

describe('KeychainVault', () => {
  it('reads back what it stored and forgets deleted entries', async () => {
    const { factory } = fakeKeyring();
    const vault = new KeychainVault(factory);
    expect(await vault.get('host-1/passphrase')).toBeNull();
    await vault.set('host-1/passphrase', 'key passphrase');
    expect(await vault.get('host-1/passphrase')).toBe('key passphrase');
    await vault.delete('host-1/passphrase');
    expect(await vault.get('host-1/passphrase')).toBeNull();
  });

  it('turns a keychain failure into SECRETS_FAILED that says to unlock the keychain', async () => {
    const vault = new KeychainVault(fakeKeyring({ fail: 'collection is locked' }).factory);

    const onGet = await ipcErrorOf(vault.get('host-1/admin-token'));
    expect(onGet.code).toBe('SECRETS_FAILED');
    expect(onGet.message).toContain('collection is locked');
    expect(onGet.message).toMatch(/unlock your keychain and try again/i);

    const onSet = await ipcErrorOf(vault.set('host-1/admin-token', 'value'));
    expect(onSet.code).toBe('SECRETS_FAILED');
  });
});
