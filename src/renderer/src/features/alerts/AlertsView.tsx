import { useEffect, useState } from 'react';
import type { Alert, AlertFilter, AlertRule, WebhookFormat, WebhookSettings } from '../../../../shared/ipc/contract';
import { formatDateTime } from '../../lib/format';
import { useAlerts, useStores } from '../../stores';
import { handleError } from '../app/actions';

const FILTERS: Array<[AlertFilter, string]> = [
  ['all', 'All'],
  ['firing', 'Firing'],
  ['resolved', 'Resolved'],
  ['recovery', 'Recovered by itself'],
  ['unread', 'Unread'],
];

const PARAM_LABELS: Record<string, string> = {
  restarts: 'restarts',
  windowMinutes: 'minutes',
  freePercent: '% free',
  freeGb: 'GB free',
  usedPercent: '% used',
  errorPercent: '% errors',
  minRequests: 'requests at least',
  percent: '% of quota',
  maxAgeHours: 'hours',
  days: 'days',
};

function stateChip(alert: Alert) {
  const kind = alert.state === 'firing' ? 'danger' : alert.state === 'resolved' ? 'ok' : 'muted';
  const text = alert.kind === 'recovery' ? 'recovered' : alert.state;
  return <span className={`chip chip-${kind}`}>{text}</span>;
}

/** A host's alerts: the history (firing, resolved, what healed itself), the rules and the webhook. */
export default function AlertsView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const counts = useAlerts((s) => s.counts[hostId]);
  const [filter, setFilter] = useState<AlertFilter>('all');
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let current = true;
    stores.alerts
      .getState()
      .list(hostId, filter)
      .then(
        (list) => {
          if (!current) return;
          setAlerts(list.alerts);
          setError(null);
        },
        (err: Error) => current && setError(err.message),
      );
    return () => {
      current = false;
    };
    // A change of the host's counts (main's poll) loads the list again.
  }, [stores, hostId, filter, generation, counts?.unread, counts?.firing]);

  const markRead = async (mark: { ids: string[] } | { all: true }): Promise<void> => {
    try {
      await stores.alerts.getState().markRead(hostId, mark);
      setGeneration((g) => g + 1);
    } catch (err) {
      handleError(stores, err, hostId);
    }
  };

  return (
    <main className="workspace admin-view alerts-view" aria-label="Alerts">
      <header className="view-header wrap">
        <h2>Alerts</h2>
        <span className="muted" data-testid="alerts-counts">
          {counts ? `${counts.firing} firing · ${counts.unread} unread` : ''}
        </span>
        <select aria-label="Show" value={filter} onChange={(e) => setFilter(e.target.value as AlertFilter)}>
          {FILTERS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => setGeneration((g) => g + 1)}>
          Refresh
        </button>
        <button
          type="button"
          className="button small"
          disabled={!counts?.unread}
          onClick={() => void markRead({ all: true })}
        >
          Mark all read
        </button>
      </header>
      {error ? (
        <div className="banner error" role="alert">
          {error}
        </div>
      ) : null}
      <div className="detail alerts-detail">
        {alerts === null ? (
          error ? null : (
            <p className="empty padded">Loading…</p>
          )
        ) : alerts.length === 0 ? (
          <p className="empty padded">
            {filter === 'all' ? 'No alerts yet: nothing has fired or healed itself.' : 'No alerts match this filter.'}
          </p>
        ) : (
          <table className="data-table alerts-table" aria-label="Alert history">
            <thead>
              <tr>
                <th>Time</th>
                <th>State</th>
                <th>Alert</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {alerts.map((alert) => (
                <tr
                  key={alert.id}
                  className={`alert-row severity-${alert.severity}${alert.read ? '' : ' unread'}`}
                  data-testid="alert-row"
                >
                  <td>
                    {formatDateTime(alert.firedAt)}
                    {alert.resolvedAt && alert.resolvedAt !== alert.firedAt ? (
                      <div className="muted">resolved {formatDateTime(alert.resolvedAt)}</div>
                    ) : null}
                  </td>
                  <td>{stateChip(alert)}</td>
                  <td>
                    <strong>{alert.title}</strong>
                    {alert.occurrences > 1 ? <span className="muted"> ×{alert.occurrences}</span> : null}
                    <div className="alert-message">{alert.message}</div>
                  </td>
                  <td>
                    {alert.read ? null : (
                      <button type="button" className="button small" onClick={() => void markRead({ ids: [alert.id] })}>
                        Mark read
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <RulesEditor hostId={hostId} />
        <WebhookEditor hostId={hostId} />
      </div>
    </main>
  );
}

function RulesEditor({ hostId }: { hostId: string }) {
  const stores = useStores();
  const [rules, setRules] = useState<AlertRule[] | null>(null);
  const [draft, setDraft] = useState<Record<string, { enabled: boolean; params: Record<string, string> }>>({});
  const [saving, setSaving] = useState(false);

  const take = (list: AlertRule[]): void => {
    setRules(list);
    setDraft(
      Object.fromEntries(
        list.map((rule) => [
          rule.id,
          {
            enabled: rule.enabled,
            params: Object.fromEntries(Object.entries(rule.params).map(([k, v]) => [k, String(v)])),
          },
        ]),
      ),
    );
  };
  useEffect(() => {
    stores.alerts
      .getState()
      .rules(hostId)
      .then((list) => take(list.rules))
      .catch((err: unknown) => handleError(stores, err, hostId));
  }, [stores, hostId]);

  if (!rules) return null;
  const changed = rules.filter((rule) => {
    const d = draft[rule.id];
    return d && (d.enabled !== rule.enabled || Object.entries(rule.params).some(([k, v]) => String(v) !== d.params[k]));
  });
  const save = async (): Promise<void> => {
    setSaving(true);
    try {
      const list = await stores.alerts.getState().setRules(hostId, {
        rules: changed.map((rule) => ({
          id: rule.id,
          enabled: draft[rule.id]!.enabled,
          params: Object.fromEntries(Object.entries(draft[rule.id]!.params).map(([k, v]) => [k, Number(v)])),
        })),
      });
      take(list.rules);
      stores.ui.getState().notify('Alert rules saved.');
    } catch (err) {
      handleError(stores, err, hostId);
    } finally {
      setSaving(false);
    }
  };

  return (
    <section className="alerts-section" aria-label="Alert rules">
      <h3>Rules</h3>
      <table className="data-table alert-rules">
        <tbody>
          {rules.map((rule) => {
            const d = draft[rule.id]!;
            return (
              <tr key={rule.id}>
                <td>
                  <label className="inline">
                    <input
                      type="checkbox"
                      checked={d.enabled}
                      aria-label={`${rule.title} on`}
                      onChange={(e) => setDraft({ ...draft, [rule.id]: { ...d, enabled: e.target.checked } })}
                    />{' '}
                    <strong>{rule.title}</strong>
                  </label>
                  <div className="muted alert-rule-description">{rule.description.replace(/`/g, '')}</div>
                </td>
                <td className="alert-rule-params">
                  {Object.keys(rule.params).map((name) => (
                    <label key={name} className="inline" title={`default ${rule.defaults[name]}`}>
                      <input
                        type="number"
                        className="narrow"
                        aria-label={`${rule.title}: ${name}`}
                        value={d.params[name] ?? ''}
                        onChange={(e) =>
                          setDraft({ ...draft, [rule.id]: { ...d, params: { ...d.params, [name]: e.target.value } } })
                        }
                      />{' '}
                      {PARAM_LABELS[name] ?? name}
                    </label>
                  ))}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="form-actions">
        <button
          type="button"
          className="button primary small"
          disabled={saving || changed.length === 0}
          onClick={() => void save()}
        >
          Save rules
        </button>
      </div>
    </section>
  );
}

function WebhookEditor({ hostId }: { hostId: string }) {
  const stores = useStores();
  const [settings, setSettings] = useState<WebhookSettings | null>(null);
  const [url, setUrl] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    stores.alerts
      .getState()
      .webhook(hostId)
      .then(setSettings)
      .catch((err: unknown) => handleError(stores, err, hostId));
  }, [stores, hostId]);
  if (!settings) return null;

  const run = async (action: () => Promise<WebhookSettings | null>, done: string): Promise<void> => {
    setBusy(true);
    try {
      const next = await action();
      if (next) setSettings(next);
      stores.ui.getState().notify(done);
    } catch (err) {
      handleError(stores, err, hostId);
      // A failed test still recorded its delivery: show it.
      void stores.alerts
        .getState()
        .webhook(hostId)
        .then(setSettings)
        .catch(() => undefined);
    } finally {
      setBusy(false);
    }
  };
  const api = stores.alerts.getState();
  const last = settings.lastDelivery;

  return (
    <section className="alerts-section" aria-label="Alert webhook">
      <h3>Webhook</h3>
      <p className="muted">
        {settings.configured
          ? `Alerts go to ${settings.target ?? ''} (${settings.format === 'slack' ? 'Slack format' : 'JSON'})${settings.enabled ? '' : ': off'}.`
          : 'No webhook: alerts show here and as desktop notifications only.'}
      </p>
      <div className="form-row wrap">
        <input
          type="password"
          autoComplete="off"
          aria-label="Webhook URL"
          placeholder={
            settings.configured ? 'New URL (the current one is kept secret)' : 'https://hooks.slack.com/services/…'
          }
          value={url}
          onChange={(e) => setUrl(e.target.value)}
        />
        <select
          aria-label="Webhook format"
          value={settings.format}
          onChange={(e) =>
            void run(() => api.setWebhook(hostId, { format: e.target.value as WebhookFormat }), 'Webhook format saved.')
          }
        >
          <option value="json">JSON</option>
          <option value="slack">Slack</option>
        </select>
        <label className="inline">
          <input
            type="checkbox"
            checked={settings.enabled}
            aria-label="Webhook on"
            onChange={(e) => void run(() => api.setWebhook(hostId, { enabled: e.target.checked }), 'Webhook saved.')}
          />{' '}
          On
        </label>
        <button
          type="button"
          className="button primary small"
          disabled={busy || url.trim() === ''}
          onClick={() =>
            void run(async () => {
              const next = await api.setWebhook(hostId, { url: url.trim() });
              setUrl('');
              return next;
            }, 'Webhook saved.')
          }
        >
          Save URL
        </button>
        <button
          type="button"
          className="button small"
          disabled={busy || !settings.configured}
          onClick={() =>
            void run(async () => {
              await api.testWebhook(hostId);
              return api.webhook(hostId);
            }, 'Test alert delivered.')
          }
        >
          Test
        </button>
        <button
          type="button"
          className="button small danger"
          disabled={busy || !settings.configured}
          onClick={() => void run(() => api.setWebhook(hostId, { url: null }), 'Webhook removed.')}
        >
          Remove
        </button>
      </div>
      {last ? (
        <p className={last.ok ? 'muted' : 'banner error'} data-testid="webhook-last-delivery">
          Last delivery ({last.test ? 'test' : last.what}) {formatDateTime(last.at)}:{' '}
          {last.ok
            ? `delivered (HTTP ${last.status ?? ''})`
            : `failed after ${last.attempts} attempt(s): ${last.error ?? ''}`}
        </p>
      ) : null}
    </section>
  );
}
