import { useMemo } from 'react';
import type { Slot } from '../../../../shared/ipc/contract';
import type { Host } from '../../../../shared/ipc/contract';
import { useConsoles, useHosts, useSlots, useStores, useUi } from '../../stores';
import { useAction } from '../app/actions';
import { DeployLayer } from '../deploy/DeployDialog';
import { AgentErrorActions, HostAgentLine } from '../deploy/HostAgent';
import { IdleStoppedNote } from '../deploy/idle';
import { SlotMenu } from '../slots/SlotMenu';
import { SlotStateBadge, slotProblem } from '../slots/SlotStatus';

const STATE_LABEL: Record<Host['status']['state'], string> = {
  connected: 'connected',
  connecting: 'connecting…',
  reconnecting: 'reconnecting…',
  disconnected: 'disconnected',
  failed: 'failed',
};

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '–';
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(bytes < 10 * 1024 ** 2 ? 1 : 0)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

export function formatUptime(ms: number | null): string {
  if (ms === null) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function SlotRow({ host, slot }: { host: Host; slot: Slot }) {
  const { consoles, ui } = useStores();
  const active = useConsoles((s) => s.active);
  const open = (mode: 'writable' | 'read-only'): void => {
    ui.getState().setView('consoles');
    consoles.getState().open({ hostId: host.id, slotId: slot.id, mode });
  };
  const isActive = active === `${host.id}/${slot.id}/writable` || active === `${host.id}/${slot.id}/read-only`;
  const viewers = slot.viewers.writable + slot.viewers.readOnly;
  const problem = slotProblem(slot);
  const details = [
    slot.state === 'running' ? `${slot.cpuPercent ?? 0}% · ${formatBytes(slot.memoryBytes)}` : null,
    viewers > 0 ? `${viewers} viewer${viewers === 1 ? '' : 's'}` : null,
  ].filter((part): part is string => part !== null);
  return (
    <li className={`slot-row ${isActive ? 'active' : ''}`} data-state={slot.state}>
      <div className="slot-line">
        <button
          type="button"
          className="slot-open"
          onClick={() => {
            ui.getState().select(host.id);
            open('writable');
          }}
          title={`Open ${slot.name}'s console (${slot.argv.join(' ')}${slot.account ? `, as ${slot.account}` : ''})`}
        >
          <span className={`state-dot slot-${slot.state}`} aria-hidden="true" />
          <span className="slot-name">{slot.name}</span>
          <SlotStateBadge slot={slot} />
        </button>
        <button
          type="button"
          className="icon-button slot-watch"
          title="Watch read-only"
          aria-label={`Watch ${slot.name} read-only`}
          onClick={() => open('read-only')}
        >
          ◉
        </button>
        <SlotMenu hostId={host.id} slot={slot} />
      </div>
      {details.length > 0 ? <div className="slot-meta">{details.join(' · ')}</div> : null}
      {problem ? (
        <p className={`slot-problem ${problem.tone}`} role={problem.tone === 'failed' ? 'alert' : undefined}>
          {problem.text}
        </p>
      ) : null}
    </li>
  );
}

function HostSection({ host }: { host: Host }) {
  const { hosts, ui } = useStores();
  const selected = useUi((s) => s.selectedHostId === host.id);
  const slotsState = useSlots((s) => s.byHost[host.id]);
  const act = useAction();
  const state = host.status.state;
  const slots = useMemo(
    () => [...(slotsState?.slots ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
    [slotsState],
  );
  return (
    <section className={`host ${selected ? 'selected' : ''}`} aria-label={host.name}>
      <div className="host-row">
        <button type="button" className="host-select" onClick={() => ui.getState().select(host.id)}>
          <span className={`state-dot host-${state}`} aria-hidden="true" />
          <span className="host-name">{host.name}</span>
          <span className="host-state">{STATE_LABEL[state]}</span>
        </button>
        <div className="host-actions">
          {state === 'connected' || state === 'reconnecting' || state === 'connecting' ? (
            host.kind === 'ssh' ? (
              <button
                type="button"
                className="icon-button"
                title="Disconnect"
                aria-label={`Disconnect ${host.name}`}
                onClick={() => void act(() => hosts.getState().disconnect(host.id), host.id)}
              >
                ⏏
              </button>
            ) : null
          ) : (
            <button
              type="button"
              className="icon-button"
              title="Connect"
              aria-label={`Connect ${host.name}`}
              onClick={() => void act(() => hosts.getState().connect(host.id), host.id)}
            >
              ↻
            </button>
          )}
          {host.kind === 'ssh' ? (
            <button
              type="button"
              className="icon-button"
              title="Edit host"
              aria-label={`Edit ${host.name}`}
              onClick={() => ui.getState().open({ kind: 'edit-host', hostId: host.id })}
            >
              ✎
            </button>
          ) : null}
        </div>
      </div>
      <HostAgentLine host={host} />
      {state === 'failed' && host.status.error ? (
        <div className="host-error" role="alert">
          <p>{host.status.error.message}</p>
          {(host.status.error.code === 'HOST_KEY_UNKNOWN' || host.status.error.code === 'HOST_KEY_MISMATCH') &&
          host.status.error.details?.fingerprint ? (
            <button
              type="button"
              className="button small"
              onClick={() =>
                ui.getState().open({
                  kind: 'trust-key',
                  hostId: host.id,
                  algorithm: host.status.error?.details?.algorithm ?? 'unknown',
                  fingerprint: host.status.error?.details?.fingerprint ?? '',
                  pinnedFingerprint: host.status.error?.details?.pinnedFingerprint,
                })
              }
            >
              Review host key…
            </button>
          ) : null}
          <AgentErrorActions host={host} />
        </div>
      ) : null}
      {state === 'reconnecting' ? (
        <p className="host-note">
          {host.status.error?.message ?? 'Connection lost.'} Attempt {host.status.attempt ?? 1}
          {host.status.nextRetryAt ? `, next try ${new Date(host.status.nextRetryAt).toLocaleTimeString()}` : ''}.
        </p>
      ) : null}
      <IdleStoppedNote host={host} />
      {state === 'connected' ? (
        <ul className="slot-list">
          {slots.map((slot) => (
            <SlotRow key={slot.id} host={host} slot={slot} />
          ))}
          {slotsState?.error ? <li className="host-error">{slotsState.error.message}</li> : null}
          {slotsState && slots.length === 0 && !slotsState.error ? <li className="empty">No slots yet.</li> : null}
          <li>
            <button
              type="button"
              className="link-button"
              onClick={() => ui.getState().open({ kind: 'create-slot', hostId: host.id })}
            >
              + New slot
            </button>
          </li>
        </ul>
      ) : null}
    </section>
  );
}

export function Sidebar() {
  const hosts = useHosts((s) => s.hosts);
  const loaded = useHosts((s) => s.loaded);
  const { ui } = useStores();
  return (
    <aside className="sidebar" aria-label="Hosts">
      <div className="sidebar-header">
        <h1 className="brand">Slotdeck</h1>
        <button
          type="button"
          className="button small"
          title="Add an SSH host (Ctrl+Shift+H)"
          onClick={() => ui.getState().open({ kind: 'add-host' })}
        >
          + Host
        </button>
      </div>
      <nav className="host-list">
        {hosts.map((host) => (
          <HostSection key={host.id} host={host} />
        ))}
        {loaded && hosts.length === 0 ? <p className="empty">No hosts yet. Add one with “+ Host”.</p> : null}
      </nav>
      {/* The deploy dialog and the idle polling live with the hosts they are about (any view can open it). */}
      <DeployLayer />
    </aside>
  );
}
