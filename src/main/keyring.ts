import { createRequire } from 'node:module';
import type { KeyringEntryFactory } from './services/secrets/vault';

/** The OS keychain through @napi-rs/keyring (N-API: the same binary serves Node and Electron), or null. */
export function loadKeyring(): KeyringEntryFactory | null {
  try {
    const require = createRequire(import.meta.url);
    const { AsyncEntry } = require('@napi-rs/keyring') as {
      AsyncEntry: new (service: string, account: string) => ReturnType<KeyringEntryFactory>;
    };
    return (service, account) => new AsyncEntry(service, account);
  } catch {
    return null;
  }
}
