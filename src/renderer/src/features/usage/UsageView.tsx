import { useEffect, useState } from 'react';
import type { UsageSummary, UsageTotals } from '../../../../shared/ipc/contract';
import { saveExport } from '../../lib/save-export';
import { formatDateTime, formatTokens, formatUsd } from '../../lib/format';
import { customRange, type RangePreset } from '../../lib/usage-range';
import { useGateway, useHosts, useStores, useUsage } from '../../stores';
import { endUserGatewayUrl } from '../../lib/gateway-url';
import { handleError } from '../app/actions';
import { UsageCharts } from './UsageCharts';

/** New requests show up without a click while the view is open. */
const REFRESH_MS = 15_000;

const PRESETS: Array<[RangePreset, string]> = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['custom', 'Custom…'],
];

function Totals({ totals }: { totals: UsageTotals }) {
  const cache = totals.cacheCreationTokens + totals.cacheReadTokens;
  const items: Array<[string, string, string?]> = [
    ['Requests', totals.requests.toLocaleString('en-US'), totals.errors ? `${totals.errors} failed` : undefined],
    ['Total tokens', formatTokens(totals.totalTokens)],
    ['Input', formatTokens(totals.inputTokens)],
    ['Output', formatTokens(totals.outputTokens)],
    ['Cache', formatTokens(cache), cache ? `${formatTokens(totals.cacheReadTokens)} read` : undefined],
    ['Cost', formatUsd(totals.costUsd)],
  ];
  return (
    <dl className="totals" aria-label="Totals">
      {items.map(([label, value, note]) => (
        <div key={label} className="total">
          <dt>{label}</dt>
          <dd data-testid={`total-${label.toLowerCase().replace(' ', '-')}`}>{value}</dd>
          {note ? <span className="muted">{note}</span> : null}
        </div>
      ))}
    </dl>
  );
}

function GroupList({
  title,
  summary,
  onPick,
}: {
  title: string;
  summary: UsageSummary;
  onPick?: (group: { key: string; label: string }) => void;
}) {
  const top = summary.groups.slice(0, 10);
  const max = Math.max(...top.map((g) => g.totals.costUsd || g.totals.totalTokens), 0) || 1;
  return (
    <section className="card" aria-label={title}>
      <h3>{title}</h3>
      {top.length === 0 ? <p className="empty">Nothing in this range.</p> : null}
      <ol className="rank-list">
        {top.map((group) => {
          const share = (group.totals.costUsd || group.totals.totalTokens) / max;
          const body = (
            <>
              <span className="rank-label">{group.label}</span>
              <span className="rank-bar" aria-hidden="true">
                <span style={{ width: `${Math.max(2, share * 100)}%` }} />
              </span>
              <span className="rank-value">
                {formatTokens(group.totals.totalTokens)} tokens · {formatUsd(group.totals.costUsd)}
              </span>
            </>
          );
          return (
            <li key={group.key}>
              {onPick ? (
                <button
                  type="button"
                  className="rank-row"
                  title={`Show ${group.label}'s usage`}
                  onClick={() => onPick(group)}
                >
                  {body}
                </button>
              ) : (
                <div className="rank-row">{body}</div>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

/** Tokens and cost over time by model, top users and a per-user drill-down, for one host. */
export default function UsageView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const usage = useUsage((s) => s);
  const gatewayStatus = useGateway((s) => s.byHost[hostId]?.status);
  const gatewayHost = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const gatewayUrl = endUserGatewayUrl(gatewayStatus, gatewayHost);
  const [customFrom, setCustomFrom] = useState(usage.range.from.slice(0, 10));
  const [customTo, setCustomTo] = useState(new Date(Date.parse(usage.range.to) - 1).toISOString().slice(0, 10));
  const [rangeError, setRangeError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);

  useEffect(() => {
    const load = (): void => {
      if (document.visibilityState !== 'hidden') void stores.usage.getState().load(hostId);
    };
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, [stores, hostId]);

  const choosePreset = (preset: RangePreset): void => {
    setRangeError(null);
    if (preset === 'custom') {
      void stores.usage.getState().setRange({ ...usage.range, preset: 'custom' });
      return;
    }
    void stores.usage.getState().setPreset(preset);
  };
  const applyCustom = (): void => {
    const range = customRange(customFrom, customTo);
    if ('error' in range) {
      setRangeError(range.error);
      return;
    }
    setRangeError(null);
    void stores.usage.getState().setRange(range);
  };
  const exportAs = async (format: 'csv' | 'json'): Promise<void> => {
    setExporting(true);
    try {
      const result = await stores.usage.getState().exportRows(format);
      saveExport(result, (path) => stores.ui.getState().notify(`Usage saved to ${path}.`));
    } catch (error) {
      handleError(stores, error, hostId);
    } finally {
      setExporting(false);
    }
  };

  const { byModel, byOwner, user, rows, range } = usage;
  const empty = byModel !== null && byModel.totals.requests === 0;

  return (
    <main className="workspace admin-view" aria-label="Usage">
      <header className="view-header wrap">
        <h2>Usage</h2>
        {user ? (
          <span className="filter-chip">
            User: <strong>{user.label}</strong>
            <button
              type="button"
              className="icon-button"
              aria-label="Show all users"
              onClick={() => void stores.usage.getState().drillDown(null)}
            >
              ×
            </button>
          </span>
        ) : null}
        <span className="spacer" />
        <div className="segmented range-presets" role="group" aria-label="Range">
          {PRESETS.map(([preset, label]) => (
            <button
              key={preset}
              type="button"
              className={range.preset === preset ? 'checked' : ''}
              aria-pressed={range.preset === preset}
              onClick={() => choosePreset(preset)}
            >
              {label}
            </button>
          ))}
        </div>
        <button type="button" className="button small" disabled={exporting} onClick={() => void exportAs('csv')}>
          Export CSV
        </button>
        <button type="button" className="button small" disabled={exporting} onClick={() => void exportAs('json')}>
          Export JSON
        </button>
        <button
          type="button"
          className="button small"
          disabled={usage.loading}
          onClick={() => void stores.usage.getState().load(hostId)}
        >
          {usage.loading ? 'Loading…' : 'Refresh'}
        </button>
      </header>
      {range.preset === 'custom' ? (
        <div className="toolbar custom-range">
          <label>
            From <input type="date" value={customFrom} onChange={(e) => setCustomFrom(e.target.value)} />
          </label>
          <label>
            To <input type="date" value={customTo} onChange={(e) => setCustomTo(e.target.value)} />
          </label>
          <button type="button" className="button small primary" onClick={applyCustom}>
            Apply
          </button>
          <span className="muted">Whole UTC days, both included.</span>
          {rangeError ? <span className="form-error">{rangeError}</span> : null}
        </div>
      ) : null}
      {usage.error ? (
        <div className="banner error" role="alert">
          {usage.error.message}
        </div>
      ) : null}
      <div className="view-body">
        <p className="muted range-note">
          {formatDateTime(range.from)} – {formatDateTime(range.to)}
        </p>
        {byModel ? <Totals totals={byModel.totals} /> : null}
        {empty ? (
          <div className="empty-block">
            <p>
              <strong>No usage {user ? `by ${user.label} ` : ''}in this range yet.</strong>
            </p>
            <p>
              Create a key in Users and call the gateway with it
              {gatewayUrl ? (
                <>
                  {' '}
                  (ANTHROPIC_BASE_URL=<code>{gatewayUrl}</code>)
                </>
              ) : null}
              ; each request shows here within seconds. Or pick a longer range.
            </p>
            <button type="button" className="button small" onClick={() => stores.ui.getState().setView('users')}>
              Open Users
            </button>
          </div>
        ) : null}
        {byModel && !empty ? <UsageCharts summary={byModel} range={range} /> : null}
        {byOwner && !empty ? (
          user ? (
            <GroupList title={`Keys of ${user.label}`} summary={byOwner} />
          ) : (
            <GroupList
              title="Top users"
              summary={byOwner}
              onPick={(group) => void stores.usage.getState().drillDown({ id: group.key, label: group.label })}
            />
          )
        ) : null}
        {user && rows && rows.length > 0 ? (
          <section className="card" aria-label={`Latest requests of ${user.label}`}>
            <h3>Latest requests of {user.label}</h3>
            <table className="data-table">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Model</th>
                  <th>Status</th>
                  <th className="num">Input</th>
                  <th className="num">Output</th>
                  <th className="num">Cache</th>
                  <th className="num">Cost</th>
                  <th className="num">Latency</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr key={row.id}>
                    <td>{formatDateTime(row.startedAt)}</td>
                    <td>{row.model}</td>
                    <td>
                      <span className={`chip chip-${row.status === 'success' ? 'ok' : 'off'}`}>
                        {row.status}
                        {row.httpStatus && row.status !== 'success' ? ` ${row.httpStatus}` : ''}
                      </span>
                    </td>
                    <td className="num">{formatTokens(row.inputTokens)}</td>
                    <td className="num">{formatTokens(row.outputTokens)}</td>
                    <td className="num">{formatTokens(row.cacheCreationTokens + row.cacheReadTokens)}</td>
                    <td className="num">{formatUsd(row.costUsd)}</td>
                    <td className="num">{row.latencyMs} ms</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        ) : null}
      </div>
    </main>
  );
}
