import { useHosts, useStores, useUi } from '../../stores';

const STATE_WORDS: Record<string, string> = {
  connected: 'connected',
  connecting: 'connecting…',
  reconnecting: 'reconnecting…',
  disconnected: 'not connected',
  failed: 'failed',
};

/**
 * Which host the admin views (users, usage, gateway) show, said and chosen in one place. They keep that host until
 * the admin picks another here: adding or clicking a host in the sidebar does not switch them.
 */
export function HostPicker() {
  const { ui } = useStores();
  const hosts = useHosts((s) => s.hosts);
  const chosen = useAdminHost();
  if (hosts.length === 0) return null;
  return (
    <label className="host-picker">
      <span className="host-picker-label">Host</span>
      <select
        aria-label="Host of this view"
        value={chosen?.id ?? ''}
        onChange={(event) => ui.getState().pickAdminHost(event.target.value)}
      >
        {chosen ? null : (
          <option value="" disabled>
            Pick a host…
          </option>
        )}
        {hosts.map((host) => (
          <option key={host.id} value={host.id}>
            {host.name} ({STATE_WORDS[host.status.state] ?? host.status.state})
          </option>
        ))}
      </select>
    </label>
  );
}

/** The host the admin views show: the one picked for them, else the selected one; undefined when there is none. */
export function useAdminHost() {
  const id = useUi((s) => s.adminHostId ?? s.selectedHostId);
  const fallback = useUi((s) => s.selectedHostId);
  return useHosts((s) => s.hosts.find((h) => h.id === id) ?? s.hosts.find((h) => h.id === fallback));
}
