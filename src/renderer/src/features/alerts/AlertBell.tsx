import { useEffect } from 'react';
import { useAlerts, useHosts, useStores } from '../../stores';

/**
 * The top bar's bell: unread alerts over the connected hosts (main tells of changes with `alerts:changed`). A click
 * opens the Alerts view of the host with the most unread.
 */
export function AlertBell() {
  const stores = useStores();
  const counts = useAlerts((s) => s.counts);
  const connected = useHosts((s) =>
    s.hosts
      .filter((h) => h.status.state === 'connected')
      .map((h) => h.id)
      .join(','),
  );
  useEffect(() => {
    for (const id of connected ? connected.split(',') : []) void stores.alerts.getState().refreshCounts(id);
  }, [stores, connected]);
  const ids = connected ? connected.split(',') : [];
  const unread = ids.reduce((sum, id) => sum + (counts[id]?.unread ?? 0), 0);
  const firing = ids.reduce((sum, id) => sum + (counts[id]?.firing ?? 0), 0);
  const open = (): void => {
    const busiest = [...ids].sort((a, b) => (counts[b]?.unread ?? 0) - (counts[a]?.unread ?? 0))[0];
    if (busiest) stores.ui.getState().pickAdminHost(busiest);
    stores.ui.getState().setView('alerts');
  };
  const label = `Alerts: ${unread} unread${firing ? `, ${firing} firing` : ''}`;
  return (
    <button
      type="button"
      className={`alert-bell${firing ? ' firing' : ''}`}
      title={label}
      aria-label={label}
      data-testid="alert-bell"
      onClick={open}
    >
      {/* An SVG, not the emoji: systems without an emoji font draw a box. */}
      <svg
        aria-hidden="true"
        width="16"
        height="16"
        viewBox="0 0 24 24"
        fill="none"
        stroke="currentColor"
        strokeWidth="2"
      >
        <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
        <path d="M13.7 21a2 2 0 0 1-3.4 0" />
      </svg>
      {unread > 0 ? (
        <span className="alert-bell-count" data-testid="alert-bell-count">
          {unread > 99 ? '99+' : unread}
        </span>
      ) : null}
    </button>
  );
}
