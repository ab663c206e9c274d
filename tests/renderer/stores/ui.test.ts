import { afterEach, describe, expect, it, vi } from 'vitest';
import { createUiStore } from '../../../src/renderer/src/stores/ui';
import type { Preferences } from '../../../src/shared/ipc/contract';
import { fakeIpc } from '../fake-ipc';

function setup(preferences: Partial<Preferences> = {}) {
  const ipc = fakeIpc({
    'app:info': () => ({
      version: '0.0.0',
      mode: 'browser',
      platform: 'linux',
      secrets: { backend: 'keychain', state: 'ready', detail: '' },
      notices: [],
    }),
    'app:preferences': () => ({ theme: 'system', consoles: [], selectedHostId: 'local', ...preferences }),
    'app:set-preferences': (changes: Partial<Preferences>) => changes,
  });
  return { ipc, store: createUiStore(ipc.client) };
}

describe('ui store: the host of the admin views', () => {
  it('keeps the host picked for the admin views when another host is selected (clicked or just added)', async () => {
    const { store } = setup();
    await store.getState().init();
    store.getState().setView('users');
    expect(store.getState().adminHostId).toBe('local');
    store.getState().select('h-unreachable');
    expect(store.getState().adminHostId).toBe('local');
    store.getState().pickAdminHost('h-prod');
    expect(store.getState().adminHostId).toBe('h-prod');
  });

  it('keeps the pick across restarts, as a preference', async () => {
    const first = setup();
    await first.store.getState().init();
    first.store.getState().pickAdminHost('h-prod');
    expect(first.ipc.callsTo('app:set-preferences')).toContainEqual({ adminHostId: 'h-prod' });

    const again = setup({ selectedHostId: 'h-unreachable', adminHostId: 'h-prod' });
    await again.store.getState().init();
    expect(again.store.getState().adminHostId).toBe('h-prod');
  });
});

describe('ui store: while Slotdeck is unreachable', () => {
  it('shows no error notices: the page says it once', async () => {
    const { store } = setup();
    await store.getState().init();
    store.getState().notify('Could not save', 'error');
    store.setState({ offline: true });
    store.getState().notify('Lost the connection to Slotdeck.', 'error');
    expect(store.getState().toasts.map((t) => t.message)).toEqual(['Could not save']);
  });
});

describe('ui store: the theme', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('starts with the theme this page last used, before main answers, and keeps what main says', async () => {
    const saved = new Map<string, string>();
    vi.stubGlobal('localStorage', {
      getItem: (key: string) => saved.get(key) ?? null,
      setItem: (key: string, value: string) => void saved.set(key, value),
    });
    const first = setup({ theme: 'dark' });
    expect(first.store.getState().theme).toBe('system');
    await first.store.getState().init();
    expect(first.store.getState().theme).toBe('dark');

    // The next load paints dark at once; a change is remembered for the load after.
    const next = setup({ theme: 'dark' });
    expect(next.store.getState().theme).toBe('dark');
    next.store.getState().setTheme('light');
    expect(setup().store.getState().theme).toBe('light');
    expect(next.ipc.callsTo('app:set-preferences')).toContainEqual({ theme: 'light' });
  });
});
