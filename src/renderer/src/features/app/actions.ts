import { useCallback } from 'react';
import { IpcClientError } from '../../lib/ipc';
import type { AppStores } from '../../stores';
import { useStores } from '../../stores';

/**
 * What the UI does with a failure: errors that need the admin's decision open the dialog for it (a host key to
 * check, a secrets file to unlock); the others are shown with the message main wrote for them.
 */
export function handleError(stores: AppStores, error: unknown, hostId?: string): void {
  const ui = stores.ui.getState();
  if (error instanceof IpcClientError) {
    if (
      (error.code === 'HOST_KEY_UNKNOWN' || error.code === 'HOST_KEY_MISMATCH') &&
      hostId &&
      error.details?.fingerprint
    ) {
      ui.open({
        kind: 'trust-key',
        hostId,
        algorithm: error.details.algorithm ?? 'unknown',
        fingerprint: error.details.fingerprint,
        pinnedFingerprint: error.details.pinnedFingerprint,
      });
      return;
    }
    if (error.code === 'SECRETS_LOCKED') {
      ui.open({ kind: 'secrets' });
      return;
    }
    if (error.code === 'IPC_CANCELLED') return;
    // Slotdeck itself is gone: the page says so once (OfflineState), not once for every call that failed.
    if (error.code === 'IPC_UNAVAILABLE' && ui.offline) return;
    ui.notify(error.message, 'error');
    return;
  }
  ui.notify(error instanceof Error ? error.message : String(error), 'error');
}

/** Runs an action and routes its failure through handleError. */
export function useAction(): (run: () => Promise<unknown>, hostId?: string) => Promise<boolean> {
  const stores = useStores();
  return useCallback(
    async (run, hostId) => {
      try {
        await run();
        return true;
      } catch (error) {
        handleError(stores, error, hostId);
        return false;
      }
    },
    [stores],
  );
}

/** Asks before a step that cannot be undone (a red confirm button); `run` goes ahead once the admin confirms. */
export function confirmDanger(
  stores: Pick<AppStores, 'ui'>,
  title: string,
  message: string,
  label: string,
  run: () => Promise<unknown>,
): void {
  stores.ui.getState().open({
    kind: 'confirm',
    title,
    message,
    confirm: label,
    danger: true,
    run: async () => {
      await run();
    },
  });
}
