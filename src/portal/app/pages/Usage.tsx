import { useEffect, useState, type ReactNode } from 'react';
import type { PortalQuota, PortalUsage } from '../../../../remote-agent/src/contract/portal';
import { usePortal } from '../context';
import { paths } from '../endpoints';
import { ErrorNote, formatDate } from '../ui';
import { barPercent, dailyTotals, formatTokens, formatUsd, lastDays } from '../usage-math';

const RANGES = [7, 30, 90] as const;
const WINDOW_LABELS: Record<string, string> = { day: 'Today (UTC)', '5h': 'Last 5 hours', month: 'This month (UTC)' };

export function UsagePage(): ReactNode {
  const { api } = usePortal();
  const [days, setDays] = useState<(typeof RANGES)[number]>(30);
  const [usage, setUsage] = useState<PortalUsage | null>(null);
  const [quota, setQuota] = useState<PortalQuota | null>(null);
  const [error, setError] = useState<unknown>(null);
  const range = lastDays(days);

  useEffect(() => {
    const { from, to } = lastDays(days);
    let current = true;
    api.get<PortalUsage>(paths.usage, { from: from.toISOString(), to: to.toISOString(), groupBy: 'model' }).then(
      (answer) => {
        if (!current) return;
        setUsage(answer);
        setError(null);
      },
      (caught: unknown) => current && setError(caught),
    );
    api.get<PortalQuota>(paths.quota).then(
      (answer) => current && setQuota(answer),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [api, days]);

  const perDay = usage ? dailyTotals(usage.series, range.from, range.to) : [];
  const maxCost = Math.max(0, ...perDay.map((row) => row.costUsd));
  const maxTokens = Math.max(0, ...perDay.map((row) => row.tokens));
  const useCost = maxCost > 0;

  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">My usage</h1>
      <div className="range" role="group" aria-label="Range">
        {RANGES.map((value) => (
          <button
            key={value}
            type="button"
            className={value === days ? '' : 'secondary'}
            aria-pressed={value === days}
            onClick={() => setDays(value)}
            data-testid={`usage-range-${value}`}
          >
            {value} days
          </button>
        ))}
      </div>
      <ErrorNote error={error} />
      {quota ? <QuotaCards quota={quota} /> : null}
      {usage ? (
        <>
          <div className="totals" data-testid="usage-totals">
            <div>
              <span className="big">{formatTokens(usage.totals.totalTokens)}</span> tokens
            </div>
            <div>
              <span className="big">{formatUsd(usage.totals.costUsd)}</span> cost
            </div>
            <div>
              <span className="big">{usage.totals.requests}</span> requests
            </div>
          </div>
          <h2>Per day ({useCost ? 'cost' : 'tokens'})</h2>
          <div className="bars" role="list" aria-label="Usage per day" data-testid="usage-days">
            {perDay.map((row) => (
              <div
                key={row.day}
                className="bar"
                role="listitem"
                title={`${row.day}: ${formatTokens(row.tokens)} tokens, ${formatUsd(row.costUsd)}`}
                aria-label={`${row.day}: ${formatTokens(row.tokens)} tokens, ${formatUsd(row.costUsd)}`}
              >
                <span
                  className="fill"
                  style={{
                    height: `${barPercent(useCost ? row.costUsd : row.tokens, useCost ? maxCost : maxTokens)}%`,
                  }}
                />
              </div>
            ))}
          </div>
          <p className="axis">
            <span>{perDay[0]?.day}</span>
            <span>{perDay.at(-1)?.day}</span>
          </p>
          <h2>Per model</h2>
          {usage.groups.length === 0 ? (
            <p className="muted">No usage in this range.</p>
          ) : (
            <table className="table" data-testid="usage-models">
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Tokens</th>
                  <th scope="col">Cost</th>
                  <th scope="col">Requests</th>
                </tr>
              </thead>
              <tbody>
                {usage.groups.map((group) => (
                  <tr key={group.key}>
                    <th scope="row">{group.label}</th>
                    <td>{formatTokens(group.totals.totalTokens)}</td>
                    <td>{formatUsd(group.totals.costUsd)}</td>
                    <td>{group.totals.requests}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      ) : !error ? (
        <p role="status">Loading…</p>
      ) : null}
    </section>
  );
}

function QuotaCards({ quota }: { quota: PortalQuota }): ReactNode {
  if (quota.quotas.length === 0)
    return (
      <p className="muted" data-testid="quota-none">
        No quota is set for you: the admin has not limited your usage.
      </p>
    );
  return (
    <ul className="cards quotas" data-testid="quota-list">
      {quota.quotas.map((entry, index) => {
        const share = entry.maxCostUsd
          ? entry.usedCostUsd / entry.maxCostUsd
          : entry.maxTokens
            ? entry.usedTokens / entry.maxTokens
            : 0;
        return (
          <li key={index} className={`card quota${entry.exceeded ? ' exceeded' : ''}`}>
            <h2>
              {WINDOW_LABELS[entry.window] ?? entry.window}
              {entry.key ? ` · key ${entry.key.name}` : ''}
            </h2>
            <p>
              {entry.maxTokens !== null
                ? `${formatTokens(entry.remainingTokens ?? 0)} of ${formatTokens(entry.maxTokens)} tokens left`
                : null}
              {entry.maxTokens !== null && entry.maxCostUsd !== null ? ' · ' : null}
              {entry.maxCostUsd !== null
                ? `${formatUsd(entry.remainingCostUsd ?? 0)} of ${formatUsd(entry.maxCostUsd)} left`
                : null}
            </p>
            <div
              className="meter"
              role="meter"
              aria-valuemin={0}
              aria-valuemax={100}
              aria-valuenow={Math.round(share * 100)}
              aria-label="Used"
            >
              <span style={{ width: `${barPercent(share, 1)}%` }} />
            </div>
            <p className="hint">
              {entry.exceeded ? 'Used up. ' : ''}Resets {formatDate(entry.resetsAt)}
            </p>
          </li>
        );
      })}
    </ul>
  );
}
