import { lazy, Suspense, type ComponentType } from 'react';
import { useUi } from '../../stores';
import { HostPicker, useAdminHost } from '../hosts/HostPicker';
import type { View } from '../../stores/ui';

// The admin views load on first use, so that the first paint (hosts and a console) does not wait for them.
const UsersView = lazy(() => import('../users/UsersView'));
const UsageView = lazy(() => import('../usage/UsageView'));
const GatewayView = lazy(() => import('../gateway/GatewayView'));
const CloudView = lazy(() => import('../cloud/CloudView'));
const SignInView = lazy(() => import('../signin/SignInView'));
const AuditView = lazy(() => import('../audit/AuditView'));
const HealthView = lazy(() => import('../health/HealthView'));
const AlertsView = lazy(() => import('../alerts/AlertsView'));
const LogsView = lazy(() => import('../logs/LogsView'));
const BackupsView = lazy(() => import('../backups/BackupsView'));

const HOST_VIEWS: Record<Exclude<View, 'consoles' | 'cloud'>, ComponentType<{ hostId: string }>> = {
  users: UsersView,
  usage: UsageView,
  gateway: GatewayView,
  signin: SignInView,
  audit: AuditView,
  health: HealthView,
  alerts: AlertsView,
  logs: LogsView,
  backups: BackupsView,
};

const TITLES: Record<Exclude<View, 'consoles'>, string> = {
  users: 'Users',
  usage: 'Usage',
  gateway: 'Gateway',
  signin: 'Sign-in',
  audit: 'Audit log',
  health: 'Health',
  alerts: 'Alerts',
  logs: 'Logs',
  backups: 'Backups',
  cloud: 'Cloud',
};

/** An admin view of the host picked for it, under the picker that says which host that is. */
export function AdminView({ view }: { view: Exclude<View, 'consoles'> }) {
  const host = useAdminHost();
  // While Slotdeck is unreachable the page says so once (OfflineState): the view's own "could not load" stays out of
  // sight, still mounted, so that it is as the admin left it once Slotdeck is back.
  const offline = useUi((s) => s.offline);
  // AWS accounts belong to this panel, not to a host: no host picker above them.
  if (view === 'cloud')
    return (
      <div className="admin-host-body" hidden={offline}>
        <Suspense fallback={<p className="empty padded">Loading…</p>}>
          <CloudView />
        </Suspense>
      </div>
    );
  return (
    <div className="admin-host">
      <div className="admin-host-bar">
        <HostPicker />
      </div>
      <div className="admin-host-body" hidden={offline}>
        <AdminViewBody view={view} host={host} />
      </div>
    </div>
  );
}

function AdminViewBody({ view, host }: { view: Exclude<View, 'consoles'>; host: ReturnType<typeof useAdminHost> }) {
  if (!host) {
    return (
      <main className="workspace empty-workspace">
        <div className="empty-state">
          <h2>No host to show</h2>
          <p>Add a host with + Host on the left: users, usage and the gateway belong to the agent on a host.</p>
        </div>
      </main>
    );
  }
  if (host.status.state !== 'connected') {
    return (
      <main className="workspace empty-workspace">
        <div className="empty-state">
          <h2>
            {TITLES[view]} of {host.name}: not connected
          </h2>
          <p>
            This view shows {host.name}, which is{' '}
            {host.status.state === 'failed' ? 'failing to connect' : 'not connected'}.
          </p>
          {host.status.error?.message ? <p className="field-error">{host.status.error.message}</p> : null}
          <p>Connect it with ↻ on the left, or pick another host above.</p>
        </div>
      </main>
    );
  }
  const Body = HOST_VIEWS[view as Exclude<View, 'consoles' | 'cloud'>];
  return (
    <Suspense
      fallback={
        <main className="workspace empty-workspace">
          <p className="empty">Loading…</p>
        </main>
      }
    >
      {/* One instance per host: a typed key, a test result or a list's paging must not carry over to another host. */}
      <Body key={host.id} hostId={host.id} />
    </Suspense>
  );
}
