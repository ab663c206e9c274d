import { useEffect, useState } from 'react';
import type { HealthDetails, MetricsSample, MetricsSettings } from '../../../../shared/ipc/contract';
import { formatRelative } from '../../lib/format';
import { useStores } from '../../stores';
import { handleError } from '../app/actions';
import { HealthCharts } from './HealthCharts';
import { formatBytes, formatDuration } from './format';

/** How often the view asks the agent while it is visible. */
export const HEALTH_REFRESH_MS = 5000;
/** Samples kept for the charts: the agent's hour at 10 s. */
const MAX_SAMPLES = 360;

function Row({ label, value, bad }: { label: string; value: React.ReactNode; bad?: boolean }) {
  return (
    <div className={bad ? 'health-row bad' : 'health-row'}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function Card({ title, bad, children }: { title: string; bad?: boolean; children: React.ReactNode }) {
  return (
    <section className={bad ? 'card health-card bad' : 'card health-card'} aria-label={title}>
      <h3>
        {title} {bad ? <span className="chip chip-danger">problem</span> : null}
      </h3>
      <dl>{children}</dl>
    </section>
  );
}

/** A host's health: live charts from the agent's short series, and the details an operator checks first. */
export default function HealthView({ hostId }: { hostId: string }) {
  // Keyed by host: another host starts from an empty view (no samples or token of the previous one).
  return <HostHealth key={hostId} hostId={hostId} />;
}

function HostHealth({ hostId }: { hostId: string }) {
  const stores = useStores();
  const [details, setDetails] = useState<HealthDetails | null>(null);
  const [samples, setSamples] = useState<MetricsSample[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let last: string | undefined;
    const controller = new AbortController();
    const visible = (): boolean => document.visibilityState !== 'hidden';
    const refresh = async (): Promise<void> => {
      timer = null;
      // Not while the window is hidden: visibilitychange starts it again.
      if (stopped || !visible()) return;
      try {
        const ipc = stores.ipc;
        const [next, series] = await Promise.all([
          ipc.invoke('health:details', { hostId }, { signal: controller.signal }),
          ipc.invoke('health:series', last ? { hostId, since: last } : { hostId }, { signal: controller.signal }),
        ]);
        if (stopped) return;
        setDetails(next);
        setError(null);
        if (series.samples.length > 0) {
          last = series.samples.at(-1)!.at;
          setSamples((previous) => [...previous, ...series.samples].slice(-MAX_SAMPLES));
        }
      } catch (caught) {
        if (stopped) return;
        setError((caught as Error).message);
      }
      if (!stopped && document.visibilityState !== 'hidden')
        timer = setTimeout(() => void refresh(), HEALTH_REFRESH_MS);
    };
    const onVisibility = (): void => {
      if (visible() && timer === null) void refresh();
    };
    document.addEventListener('visibilitychange', onVisibility);
    void refresh();
    return () => {
      stopped = true;
      controller.abort();
      if (timer) clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [stores, hostId]);

  return (
    <main className="workspace admin-view health-view" aria-label="Health">
      <header className="view-header wrap">
        <h2>Health</h2>
        {details ? (
          <span className={details.status === 'ok' ? 'chip chip-ok' : 'chip chip-danger'} data-testid="health-status">
            {details.status === 'ok' ? 'healthy' : 'degraded'}
          </span>
        ) : null}
        <span className="spacer" />
        {details ? <span className="muted">checked {formatRelative(details.checkedAt)} · every 5 s</span> : null}
      </header>
      {error ? (
        <p className="notice error" role="alert">
          {error}
        </p>
      ) : null}
      {details && details.problems.length > 0 ? (
        <section className="card health-problems" aria-label="Problems">
          <h3>Problems</h3>
          <ul>
            {details.problems.map((problem) => (
              <li key={`${problem.code}:${problem.message}`}>
                <strong>{problem.code}</strong> {problem.message}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <HealthCharts samples={samples} />
      {details ? <Details details={details} /> : error ? null : <p className="empty padded">Loading…</p>}
      <PublicMetrics hostId={hostId} onError={(e) => handleError(stores, e, hostId)} />
    </main>
  );
}

function Details({ details }: { details: HealthDetails }) {
  const { database, supervisor, disk, memory, load, upstream, backup, tls, agent } = details;
  const integrityBad = database.integrity.ok === false;
  const diskBad = disk === null || disk.freePercent < 10 || disk.freeBytes < 2 * 1024 ** 3;
  const upstreamBad = upstream.errorRate5m !== null && upstream.errorRate5m > 0.05;
  const backupBad = backup.lastError !== null || (backup.ageS !== null && backup.ageS > 26 * 3600);
  const tlsBad = tls.configured && (tls.daysLeft === null || tls.daysLeft < 14);
  return (
    <>
      <div className="health-grid">
        <Card title="Database" bad={!database.ok || !database.writable || integrityBad}>
          <Row label="Size" value={formatBytes(database.sizeBytes)} />
          <Row label="WAL" value={formatBytes(database.walBytes)} />
          <Row label="Last checkpoint" value={formatRelative(database.lastCheckpointAt)} />
          <Row
            label="Integrity"
            bad={integrityBad}
            value={
              database.integrity.ok === null
                ? 'not checked yet'
                : `${database.integrity.ok ? 'ok' : (database.integrity.detail ?? 'failed')} (${formatRelative(database.integrity.checkedAt)})`
            }
          />
          <Row
            label="Writable"
            bad={!database.writable}
            value={database.writable ? 'yes' : `no: ${database.lastWriteError ?? ''}`}
          />
          <Row label="Schema" value={database.schemaVersion} />
        </Card>
        <Card title="PM2" bad={!supervisor.ok}>
          <Row label="Daemon" bad={!supervisor.ok} value={supervisor.ok ? `pid ${supervisor.daemonPid}` : 'down'} />
          {supervisor.error ? <Row label="Error" bad value={supervisor.error} /> : null}
          <Row label="Agent" value={`pid ${agent.pid}, up ${formatDuration(details.uptimeS)}, v${details.version}`} />
          <Row label="Agent memory" value={formatBytes(agent.rssBytes)} />
          <Row
            label="Event loop p99"
            value={agent.eventLoopDelayP99Ms === null ? '—' : `${agent.eventLoopDelayP99Ms} ms`}
          />
        </Card>
        <Card title="Host" bad={diskBad || memory.usedPercent > 90}>
          <Row
            label="Disk free"
            bad={diskBad}
            value={
              disk
                ? `${formatBytes(disk.freeBytes)} of ${formatBytes(disk.totalBytes)} (${disk.freePercent}%)`
                : 'unknown'
            }
          />
          <Row
            label="Memory"
            bad={memory.usedPercent > 90}
            value={`${memory.usedPercent}% used, ${formatBytes(memory.availableBytes)} available`}
          />
          <Row label="Load" value={`${load.one} · ${load.five} · ${load.fifteen} (${load.cpus} CPUs)`} />
        </Card>
        <Card title="Upstream" bad={upstreamBad}>
          <Row
            label="Last answer"
            value={
              upstream.lastAt === null
                ? 'none yet'
                : `${upstream.lastStatus ?? upstream.lastError ?? '?'} ${formatRelative(upstream.lastAt)}`
            }
          />
          <Row
            label="Errors (5 min)"
            bad={upstreamBad}
            value={upstream.errorRate5m === null ? 'no requests' : `${(upstream.errorRate5m * 100).toFixed(1)}%`}
          />
        </Card>
        <Card title="Backup and certificate" bad={backupBad || tlsBad}>
          <Row
            label="Last backup"
            bad={backupBad}
            value={
              backup.lastError
                ? `failed: ${backup.lastError}`
                : backup.ageS === null
                  ? 'none yet'
                  : `${formatDuration(backup.ageS)} ago`
            }
          />
          <Row
            label="Certificate"
            bad={tlsBad}
            value={
              !tls.configured
                ? 'no TLS on the gateway'
                : tls.daysLeft === null
                  ? 'unreadable'
                  : `expires in ${Math.floor(tls.daysLeft)} days`
            }
          />
        </Card>
      </div>
      <section className="card" aria-label="Slots">
        <h3>Slots</h3>
        {details.slots.length === 0 ? (
          <p className="empty">No slots.</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th>Slot</th>
                <th>State</th>
                <th>PID</th>
                <th>Restarts</th>
                <th>Memory</th>
                <th>CPU</th>
                <th>Viewers</th>
              </tr>
            </thead>
            <tbody>
              {details.slots.map((slot) => (
                <tr key={slot.id} className={slot.state === 'failed' || slot.state === 'restarting' ? 'bad' : ''}>
                  <td>{slot.name}</td>
                  <td>
                    <span
                      className={
                        slot.state === 'running'
                          ? 'chip chip-ok'
                          : slot.state === 'failed'
                            ? 'chip chip-danger'
                            : 'chip'
                      }
                    >
                      {slot.state}
                    </span>
                  </td>
                  <td>{slot.pid ?? '—'}</td>
                  <td>{slot.restarts}</td>
                  <td>{slot.memoryBytes === null ? '—' : formatBytes(slot.memoryBytes)}</td>
                  <td>{slot.cpuPercent === null ? '—' : `${slot.cpuPercent.toFixed(1)}%`}</td>
                  <td>{slot.viewers}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

/** Public /metrics for a scraper elsewhere: off by default; the token is shown once, here. */
function PublicMetrics({ hostId, onError }: { hostId: string; onError: (error: unknown) => void }) {
  const stores = useStores();
  const [settings, setSettings] = useState<MetricsSettings | null>(null);
  const [token, setToken] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    stores.ipc.invoke('health:metrics-settings', { hostId }).then(setSettings, onError);
    // onError is a fresh closure each render; the settings are read once per host.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stores, hostId]);
  const act = async (action: 'enable' | 'disable' | 'rotate'): Promise<void> => {
    setBusy(true);
    try {
      const next = await stores.ipc.invoke('health:set-metrics', { hostId, action });
      setSettings(next);
      setToken(next.token);
    } catch (error) {
      onError(error);
    } finally {
      setBusy(false);
    }
  };
  if (!settings) return null;
  return (
    <section className="card" aria-label="Public metrics">
      <h3>Public /metrics</h3>
      <p className="muted">
        The admin listener always serves /metrics (through the tunnel). For a Prometheus elsewhere, the gateway's
        listener can serve it too, to a bearer token of its own.
      </p>
      <div className="toolbar">
        <span>{settings.publicEnabled ? `On at ${settings.publicUrl ?? 'the gateway'} ` : 'Off'}</span>
        <span className="spacer" />
        {settings.publicEnabled ? (
          <>
            <button type="button" className="button small" disabled={busy} onClick={() => void act('rotate')}>
              New token
            </button>
            <button type="button" className="button small" disabled={busy} onClick={() => void act('disable')}>
              Turn off
            </button>
          </>
        ) : (
          <button type="button" className="button small" disabled={busy} onClick={() => void act('enable')}>
            Turn on
          </button>
        )}
      </div>
      {token ? (
        <p className="notice">
          Scrape token (shown once; copy it into the scraper's <code>authorization</code> bearer token):{' '}
          <code className="selectable">{token}</code>
        </p>
      ) : null}
    </section>
  );
}
