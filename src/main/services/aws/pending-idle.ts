import type { Store } from '../db/store';

/**
 * The idle auto-stop minutes chosen when launching a host, kept until the agent is deployed there (the agent's idle
 * policy can only be set once it runs). A preference, not a column: it lives for one deploy.
 */
const keyOf = (hostId: string): string => `pendingIdle:${hostId}`;

export function savePendingIdle(store: Pick<Store, 'setPreference'>, hostId: string, minutes: number | null): void {
  if (minutes !== null) store.setPreference(keyOf(hostId), minutes);
}

/** The minutes to apply with idle:set after a successful deploy, or null; read once (cleared as it is read). */
export function takePendingIdle(store: Pick<Store, 'preference' | 'setPreference'>, hostId: string): number | null {
  const minutes = store.preference<number | null>(keyOf(hostId));
  if (minutes === undefined || minutes === null) return null;
  store.setPreference(keyOf(hostId), null);
  return typeof minutes === 'number' ? minutes : null;
}
