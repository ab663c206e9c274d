import { lazy, Suspense, useCallback, useEffect } from 'react';
import { Dialog } from './components/Dialog';
import { Toasts } from './components/Toasts';
import { AlertBell } from './features/alerts/AlertBell';
import { AdminView } from './features/app/AdminView';
import { OfflineState, SignedOutPage } from './features/app/ConnectionState';
import { SHORTCUTS, useAppShortcuts } from './features/app/shortcuts';
import { useResolvedTheme } from './features/app/theme';
import { HostDialog, SecretsDialog, TrustKeyDialog } from './features/hosts/HostDialogs';
import { Sidebar } from './features/hosts/Sidebar';
import { ShareDialog } from './features/share/ShareDialog';
import { ConfirmDialog, CreateSlotDialog, DeleteSlotDialog, EditSlotDialog } from './features/slots/SlotDialogs';
import { useGateway, useHosts, useStores, useUi } from './stores';
import type { View } from './stores/ui';

const SLOT_POLL_MS = 2000;
/** Legacy mode can be switched on from elsewhere (another panel, the CLI): the banner follows within this time. */
const GATEWAY_POLL_MS = 30_000;

// xterm is most of the app's code: the consoles load in parallel with the first screen, not before it (startup.ts).
const ConsoleArea = lazy(() =>
  import('./features/terminal/ConsoleArea').then((module) => ({ default: module.ConsoleArea })),
);

const VIEWS: Array<[View, string]> = [
  ['consoles', 'Consoles'],
  ['health', 'Health'],
  ['users', 'Users'],
  ['usage', 'Usage'],
  ['gateway', 'Gateway'],
  ['signin', 'Sign-in'],
  ['alerts', 'Alerts'],
  ['logs', 'Logs'],
  ['backups', 'Backups'],
  ['audit', 'Audit log'],
  ['cloud', 'Cloud'],
];

function Dialogs() {
  const dialog = useUi((s) => s.dialog);
  const { ui } = useStores();
  if (!dialog) return null;
  switch (dialog.kind) {
    case 'add-host':
      return <HostDialog />;
    case 'edit-host':
      return <HostDialog hostId={dialog.hostId} />;
    case 'trust-key':
      return <TrustKeyDialog {...dialog} />;
    case 'create-slot':
      return <CreateSlotDialog hostId={dialog.hostId} />;
    case 'delete-slot':
      return <DeleteSlotDialog {...dialog} />;
    case 'edit-slot':
      return <EditSlotDialog hostId={dialog.hostId} slotId={dialog.slotId} />;
    case 'share-slot':
      return <ShareDialog hostId={dialog.hostId} slotId={dialog.slotId} onClose={() => ui.getState().close()} />;
    case 'confirm':
      return <ConfirmDialog {...dialog} />;
    case 'secrets':
      return <SecretsDialog next={dialog.next} />;
    case 'shortcuts':
      return (
        <Dialog title="Keyboard shortcuts" onClose={() => ui.getState().close()} width={660}>
          <dl className="shortcuts">
            {SHORTCUTS.map(({ action, description, chords }) => (
              <div key={action}>
                <dt>
                  {chords.map((chord, index) => (
                    <span key={chord.label}>
                      {index > 0 ? ' or ' : null}
                      <kbd>{chord.label}</kbd>
                    </span>
                  ))}
                </dt>
                <dd>{description}</dd>
              </div>
            ))}
          </dl>
          <p className="field-hint">
            In a browser, the browser keeps Ctrl+Shift+N, Ctrl+Shift+W and Ctrl+PageUp/PageDown for itself: use the Alt
            alternatives there.
          </p>
        </Dialog>
      );
  }
}

function StatusBar() {
  const { ui, ipc } = useStores();
  const info = useUi((s) => s.info);
  const theme = useUi((s) => s.theme);
  const selected = useUi((s) => s.selectedHostId);
  const host = useHosts((s) => s.hosts.find((h) => h.id === selected));
  const state = host?.status.state;
  const text = !host
    ? 'No host selected'
    : state === 'reconnecting'
      ? `${host.name}: reconnecting (attempt ${host.status.attempt ?? 1}${host.status.nextRetryAt ? `, next try at ${new Date(host.status.nextRetryAt).toLocaleTimeString()}` : ''})`
      : state === 'failed'
        ? `${host.name}: failed: ${host.status.error?.message ?? ''}`
        : `${host.name}: ${state}`;
  return (
    <footer className="statusbar">
      <span className={`state-dot host-${state ?? 'disconnected'}`} aria-hidden="true" />
      <span className="status-text" data-testid="connection-status">
        {text}
      </span>
      {info ? (
        <button
          type="button"
          className="status-button"
          title={info.secrets.detail}
          onClick={() => info.secrets.backend === 'file' && ui.getState().open({ kind: 'secrets' })}
        >
          Secrets: {info.secrets.backend === 'keychain' ? 'keychain' : `encrypted file (${info.secrets.state})`}
        </button>
      ) : null}
      <button
        type="button"
        className="status-button"
        title="Theme (Ctrl+Shift+L)"
        onClick={() => ui.getState().setTheme(theme === 'dark' ? 'light' : theme === 'light' ? 'system' : 'dark')}
      >
        Theme: {theme}
      </button>
      <button
        type="button"
        className="status-button"
        title="Keyboard shortcuts (Ctrl+Shift+/)"
        aria-label="Keyboard shortcuts"
        onClick={() => ui.getState().open({ kind: 'shortcuts' })}
      >
        ⌨
      </button>
      {info ? (
        <span className="status-muted">
          Slotdeck {info.version}
          {info.mode === 'browser' ? ' · browser mode' : ''}
        </span>
      ) : null}
      {info?.mode === 'browser' && ipc.session ? (
        <button
          type="button"
          className="status-button"
          title="Sign this browser out of Slotdeck"
          onClick={() =>
            ui.getState().open({
              kind: 'confirm',
              title: 'Sign out of this browser?',
              message:
                'This browser will need a new link to open Slotdeck again: Slotdeck prints one in its terminal when you sign out. Your slots keep running.',
              confirm: 'Sign out',
              run: () => ui.getState().signOut(),
            })
          }
        >
          Sign out
        </button>
      ) : null}
    </footer>
  );
}

/** Calls `refresh` for every connected host now and then every `intervalMs`, while the page is visible. */
function useConnectedHostPolling(refresh: (hostId: string) => void, intervalMs: number): void {
  const connected = useHosts((s) =>
    s.hosts
      .filter((h) => h.status.state === 'connected')
      .map((h) => h.id)
      .join(','),
  );
  useEffect(() => {
    const ids = connected ? connected.split(',') : [];
    const tick = (): void => {
      if (document.visibilityState === 'hidden') return;
      for (const id of ids) refresh(id);
    };
    tick();
    const timer = setInterval(tick, intervalMs);
    return () => clearInterval(timer);
  }, [connected, refresh, intervalMs]);
}

/** Polls the slots of every connected host while the page is visible. */
function useSlotPolling(): void {
  const stores = useStores();
  const refresh = useCallback((id: string) => void stores.slots.getState().refresh(id), [stores]);
  useConnectedHostPolling(refresh, SLOT_POLL_MS);
}

/** Keeps every connected host's gateway status fresh, for the legacy mode banner. */
function useGatewayPolling(): void {
  const stores = useStores();
  const refresh = useCallback((id: string) => void stores.gateway.getState().refresh(id), [stores]);
  useConnectedHostPolling(refresh, GATEWAY_POLL_MS);
}

/** While legacy mode is on, any key string is accepted: say so on every view, with the way to turn it off. */
function LegacyModeBanners() {
  const { ui } = useStores();
  const byHost = useGateway((s) => s.byHost);
  const hosts = useHosts((s) => s.hosts);
  return (
    <>
      {hosts.map((host) => {
        const legacy = byHost[host.id]?.status?.legacyMode;
        if (!legacy?.enabled) return null;
        return (
          <div key={host.id} className="banner warning legacy-banner" role="alert">
            <strong>Legacy mode is on for {host.name}:</strong> its gateway accepts any key string and bills every
            request to {legacy.username ?? 'one user'}.{' '}
            <button
              type="button"
              className="link-button"
              onClick={() => {
                ui.getState().pickAdminHost(host.id);
                ui.getState().setView('gateway');
              }}
            >
              Turn it off in Gateway
            </button>
          </div>
        );
      })}
    </>
  );
}

function ViewTabs() {
  const { ui } = useStores();
  const view = useUi((s) => s.view);
  return (
    <nav className="view-tabs" aria-label="Views">
      {VIEWS.map(([id, label]) => (
        <button
          key={id}
          type="button"
          className={`view-tab ${view === id ? 'active' : ''}`}
          aria-current={view === id ? 'page' : undefined}
          onClick={() => ui.getState().setView(id)}
        >
          {label}
        </button>
      ))}
      <AlertBell />
    </nav>
  );
}

/** The app shell: hosts and their slots on the left, consoles on the right, the connection state at the bottom. */
export function App() {
  const stores = useStores();
  const theme = useResolvedTheme(useUi((s) => s.theme));
  const info = useUi((s) => s.info);
  const view = useUi((s) => s.view);
  const signedOut = useUi((s) => s.signedOut);
  useSlotPolling();
  useGatewayPolling();
  useAppShortcuts(stores);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  if (signedOut !== null) return <SignedOutPage message={signedOut} />;

  return (
    <div className="shell" data-ready={info ? 'true' : 'false'}>
      <Sidebar />
      <div className="main-column">
        {info?.notices.map((notice) => (
          <div key={notice} className="banner warning" role="alert">
            {notice}
          </div>
        ))}
        <LegacyModeBanners />
        <ViewTabs />
        {/* Consoles stay mounted behind the other views: their sessions and scrollback live on. */}
        <div className="view-pane" hidden={view !== 'consoles'}>
          <Suspense fallback={null}>
            <ConsoleArea />
          </Suspense>
        </div>
        {view !== 'consoles' ? <AdminView view={view} /> : null}
      </div>
      <StatusBar />
      <Dialogs />
      <Toasts />
      <OfflineState />
    </div>
  );
}
