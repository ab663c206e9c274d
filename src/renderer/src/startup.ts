import type { AppStores } from './stores';

/**
 * What the first screen needs from main, asked for in parallel as soon as the socket exists (before React renders):
 * the app's info and preferences, and the hosts. Then the consoles the admin had open are restored.
 */
export async function startApp(stores: AppStores): Promise<void> {
  try {
    const [preferences] = await Promise.all([stores.ui.getState().init(), stores.hosts.getState().load()]);
    stores.consoles
      .getState()
      .restore(preferences.consoles, preferences.clipboardAlwaysAllowed, preferences.activeConsole);
  } catch (error) {
    stores.ui.getState().notify(`Slotdeck could not start: ${(error as Error).message}`, 'error');
  }
}
