import { describe, expect, it } from 'vitest';
import { BackupKeys, BACKUP_KEY_NAME } from '../../../../src/main/services/backups/keys';
import { openWithKey, sealToRecipient } from '../../../../remote-agent/src/modules/backups/crypto';

/** A vault of the shape the panel's keychain has (the keychain itself is exercised by the secrets tests). */
function memoryVault() {
  const entries = new Map<string, string>();
  return {
    entries,
    get: (k: string) => Promise.resolve(entries.get(k) ?? null),
    set: (k: string, v: string) => Promise.resolve(void entries.set(k, v)),
  };
}

describe("the panel's backup key", () => {
  it('is made once and kept in the vault; the agent seals to it and the panel opens the data key', async () => {
    const vault = memoryVault();
    const keys = new BackupKeys(vault);
    expect(await keys.keyId()).toBeNull();
    const first = await keys.publicKey();
    expect(await keys.publicKey()).toEqual(first);
    expect(vault.entries.get(BACKUP_KEY_NAME)).toMatch(/^-----BEGIN PRIVATE KEY-----/);

    const { envelope, sealed } = sealToRecipient(first.publicKey, Buffer.from('the upstream key'));
    expect(envelope.keyId).toBe(first.keyId);
    const dataKey = Buffer.from(await keys.unwrap(envelope), 'base64');
    expect(openWithKey(dataKey, sealed).toString()).toBe('the upstream key');
    // What goes to the agent is the data key only: nothing of the private key.
    expect(JSON.stringify({ dataKey: dataKey.toString('base64') })).not.toContain(
      vault.entries.get(BACKUP_KEY_NAME)!.split('\n')[1]!,
    );
  });

  it("refuses a backup sealed to another panel's key with BACKUP_KEY_MISMATCH", async () => {
    const other = await new BackupKeys(memoryVault()).publicKey();
    const { envelope } = sealToRecipient(other.publicKey, Buffer.from('x'));
    const mine = new BackupKeys(memoryVault());
    await mine.publicKey();
    await expect(mine.unwrap(envelope)).rejects.toMatchObject({ code: 'BACKUP_KEY_MISMATCH' });
  });
});
