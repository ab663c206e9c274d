import { createStore } from 'zustand/vanilla';
import type { IpcOutput, SecretsStatus } from '../../../shared/ipc/contract';
import type { IpcClient } from '../lib/ipc';

export type Theme = 'system' | 'light' | 'dark';

/** What the main column shows: the consoles, or one of the selected host's admin views. */
export type View =
  'consoles' | 'health' | 'users' | 'usage' | 'gateway' | 'signin' | 'alerts' | 'logs' | 'backups' | 'audit' | 'cloud';

export type Dialog =
  | { kind: 'add-host' }
  | { kind: 'edit-host'; hostId: string }
  | {
      kind: 'trust-key';
      hostId: string;
      algorithm: string;
      fingerprint: string;
      pinnedFingerprint?: string | undefined;
      /** Runs once the key is pinned (a deploy that failed on the key is retried): the connect's own failure is its. */
      onTrusted?: (() => void) | undefined;
    }
  | { kind: 'create-slot'; hostId: string }
  | { kind: 'delete-slot'; hostId: string; slotId: string; name: string }
  | { kind: 'edit-slot'; hostId: string; slotId: string }
  | { kind: 'share-slot'; hostId: string; slotId: string }
  | { kind: 'confirm'; title: string; message: string; confirm: string; danger?: boolean; run: () => Promise<void> }
  /** `next`: the dialog to continue with once secrets can be stored. */
  | { kind: 'secrets'; next?: Dialog }
  | { kind: 'shortcuts' };

export interface Toast {
  id: number;
  kind: 'info' | 'error';
  message: string;
}

export interface UiState {
  info: IpcOutput<'app:info'> | null;
  theme: Theme;
  selectedHostId: string | null;
  /**
   * The host the admin views (users, usage, gateway) show, chosen with their own picker: a click on a host in the
   * sidebar (or a host just added) does not switch them. Null until known: they show the selected host then.
   */
  adminHostId: string | null;
  view: View;
  dialog: Dialog | null;
  toasts: Toast[];
  /** Browser mode only: the socket to main is down (Slotdeck stopped). */
  offline: boolean;
  /** Browser mode only: why this browser is not signed in (and what to do), once it is not. */
  signedOut: string | null;
  init(): Promise<IpcOutput<'app:preferences'>>;
  setTheme(theme: Theme): void;
  select(hostId: string): void;
  /** The host the admin views show from now on. */
  pickAdminHost(hostId: string): void;
  setView(view: View): void;
  open(dialog: Dialog): void;
  close(): void;
  notify(message: string, kind?: Toast['kind']): void;
  dismiss(id: number): void;
  setSecrets(status: SecretsStatus): void;
  /** Browser mode only: ends this browser's session. */
  signOut(): Promise<void>;
}

let toastId = 0;

/**
 * The theme is also kept in this page's localStorage: the first paint uses it, before main has answered (a slow
 * sign-in, or Slotdeck not running yet), instead of flashing the system's theme.
 */
const THEME_KEY = 'slotdeck.theme';
function cachedTheme(): Theme {
  try {
    const value = globalThis.localStorage?.getItem(THEME_KEY);
    return value === 'light' || value === 'dark' || value === 'system' ? value : 'system';
  } catch {
    return 'system';
  }
}
function cacheTheme(theme: Theme): void {
  try {
    globalThis.localStorage?.setItem(THEME_KEY, theme);
  } catch {
    // Storage refused (private mode, quota): main's preference still has it.
  }
}

export function createUiStore(ipc: IpcClient) {
  const store = createStore<UiState>()((set, get) => ({
    info: null,
    theme: cachedTheme(),
    selectedHostId: null,
    adminHostId: null,
    view: 'consoles',
    dialog: null,
    toasts: [],
    offline: false,
    signedOut: null,
    async init() {
      const [info, preferences] = await Promise.all([ipc.invoke('app:info', {}), ipc.invoke('app:preferences', {})]);
      cacheTheme(preferences.theme);
      set({
        info,
        theme: preferences.theme,
        selectedHostId: preferences.selectedHostId,
        adminHostId: get().adminHostId ?? preferences.adminHostId ?? preferences.selectedHostId,
      });
      return preferences;
    },
    setTheme(theme) {
      set({ theme });
      cacheTheme(theme);
      void ipc.invoke('app:set-preferences', { theme }).catch(() => undefined);
    },
    select(hostId) {
      set({ selectedHostId: hostId });
      void ipc.invoke('app:set-preferences', { selectedHostId: hostId }).catch(() => undefined);
    },
    pickAdminHost(hostId) {
      set({ adminHostId: hostId });
      void ipc.invoke('app:set-preferences', { adminHostId: hostId }).catch(() => undefined);
    },
    setView(view) {
      // The admin views start on the host selected when first opened; from then on only their picker moves them.
      set({ view, adminHostId: get().adminHostId ?? (view === 'consoles' ? null : get().selectedHostId) });
    },
    open(dialog) {
      // Hosts hold secrets: where the encrypted file is not unlocked yet, ask for its passphrase first, then go on.
      const secrets = get().info?.secrets;
      if ((dialog.kind === 'add-host' || dialog.kind === 'edit-host') && secrets && secrets.state !== 'ready') {
        set({ dialog: { kind: 'secrets', next: dialog } });
        return;
      }
      set({ dialog });
    },
    close() {
      set({ dialog: null });
    },
    notify(message, kind = 'info') {
      // While Slotdeck is unreachable every call fails the same way, and the page already says so once.
      if (kind === 'error' && get().offline) return;
      const toast = { id: (toastId += 1), kind, message };
      set({ toasts: [...get().toasts, toast].slice(-4) });
      setTimeout(() => get().dismiss(toast.id), kind === 'error' ? 9000 : 4000);
    },
    dismiss(id) {
      set({ toasts: get().toasts.filter((toast) => toast.id !== id) });
    },
    setSecrets(secrets) {
      const info = get().info;
      if (info) set({ info: { ...info, secrets } });
    },
    async signOut() {
      await ipc.session?.signOut();
    },
  }));
  ipc.onConnection((connected) =>
    store.setState(
      connected
        ? { offline: false }
        : { offline: true, toasts: store.getState().toasts.filter((t) => t.kind !== 'error') },
    ),
  );
  ipc.session?.onSignedOut((message) => store.setState({ signedOut: message, offline: false, dialog: null }));
  return store;
}
