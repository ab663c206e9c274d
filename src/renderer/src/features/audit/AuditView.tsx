import { useEffect, useState } from 'react';
import type { AuditEntry } from '../../../../shared/ipc/contract';
import { saveExport } from '../../lib/save-export';
import { formatDateTime } from '../../lib/format';
import { useStores, useUsers } from '../../stores';
import { handleError } from '../app/actions';
import {
  actorLabel,
  AUDIT_ACTIONS,
  auditQuery,
  browserLabel,
  EMPTY_AUDIT_FILTER,
  type AuditFilterDraft,
  type AuditQuery,
} from './audit-filter';

/** One empty list for selectors: a new [] on every read would make React render without end. */
const NONE: never[] = [];

const PAGE_SIZE = 50;

/** Who did what on a host, when and from where: sign-ins and failures, keys, sessions, shares, admin actions. */
export default function AuditView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const users = useUsers((s) => s.byHost[hostId]?.users) ?? NONE;
  const names = Object.fromEntries(users.map((u) => [u.id, u.username]));
  const [draft, setDraft] = useState<AuditFilterDraft>(EMPTY_AUDIT_FILTER);
  const [query, setQuery] = useState<AuditQuery>({});
  const [problem, setProblem] = useState<string | null>(null);
  /** The cursors of the pages before this one (the first page has none), for ‹ Newer. */
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    void stores.users.getState().load(hostId);
  }, [stores, hostId]);
  /** Bumped by Refresh: the same page loads again. */
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    stores.signin
      .getState()
      .audit(hostId, { ...query, limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) })
      .then(
        (page) => {
          if (!current) return;
          setEntries(page.entries);
          setNextCursor(page.nextCursor);
          setError(null);
        },
        (err: Error) => current && setError(err.message),
      );
    return () => {
      current = false;
    };
  }, [stores, hostId, query, cursor, generation]);

  const apply = (next: AuditFilterDraft): void => {
    setDraft(next);
    const checked = auditQuery(next);
    if ('problem' in checked) {
      setProblem(checked.problem);
      return;
    }
    setProblem(null);
    setQuery(checked.query);
    setCursors([undefined]);
  };
  const exportAs = async (format: 'jsonl' | 'csv'): Promise<void> => {
    setExporting(true);
    try {
      const result = await stores.signin.getState().exportAudit(hostId, { ...query, format });
      saveExport(result, (path) => stores.ui.getState().notify(`Audit log saved to ${path}.`));
    } catch (err) {
      handleError(stores, err, hostId);
    } finally {
      setExporting(false);
    }
  };

  return (
    <main className="workspace admin-view" aria-label="Audit log">
      <header className="view-header wrap">
        <h2>Audit log</h2>
        <select aria-label="Action" value={draft.action} onChange={(e) => apply({ ...draft, action: e.target.value })}>
          <option value="">Any action</option>
          {AUDIT_ACTIONS.map((action) => (
            <option key={action} value={action}>
              {action}
            </option>
          ))}
        </select>
        <select aria-label="Who" value={draft.actor} onChange={(e) => apply({ ...draft, actor: e.target.value })}>
          <option value="">Anyone</option>
          <option value="admin">admin</option>
          {users.map((user) => (
            <option key={user.id} value={user.id}>
              {user.username}
            </option>
          ))}
        </select>
        <label className="inline">
          From{' '}
          <input
            type="datetime-local"
            aria-label="From"
            value={draft.from}
            onChange={(e) => apply({ ...draft, from: e.target.value })}
          />
        </label>
        <label className="inline">
          To{' '}
          <input
            type="datetime-local"
            aria-label="To"
            value={draft.to}
            onChange={(e) => apply({ ...draft, to: e.target.value })}
          />
        </label>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => setGeneration((g) => g + 1)}>
          Refresh
        </button>
        <button type="button" className="button small" disabled={exporting} onClick={() => void exportAs('jsonl')}>
          Export JSONL
        </button>
        <button type="button" className="button small" disabled={exporting} onClick={() => void exportAs('csv')}>
          Export CSV
        </button>
      </header>
      {problem ? (
        <div className="banner error" role="alert">
          {problem}
        </div>
      ) : null}
      {error ? (
        <div className="banner error" role="alert">
          {error}
        </div>
      ) : null}
      {entries === null ? (
        error ? null : (
          <p className="empty padded">Loading…</p>
        )
      ) : entries.length === 0 ? (
        <p className="empty padded">No entries{Object.keys(query).length ? ' match these filters' : ' yet'}.</p>
      ) : (
        <div className="detail">
          <table className="data-table audit-table" aria-label="Audit entries">
            <thead>
              <tr>
                <th>Time</th>
                <th>Who</th>
                <th>Action</th>
                <th>Target</th>
                <th>Outcome</th>
                <th>Address</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                <tr key={entry.id} className={entry.outcome === 'failure' ? 'audit-failure' : ''}>
                  <td>{formatDateTime(entry.at)}</td>
                  <td>{actorLabel(entry.actor, names)}</td>
                  <td>
                    <code>{entry.action}</code>
                  </td>
                  <td title={Object.keys(entry.detail).length ? JSON.stringify(entry.detail) : undefined}>
                    {entry.target ?? '—'}
                  </td>
                  <td>
                    <span className={`chip chip-${entry.outcome === 'success' ? 'ok' : 'danger'}`}>
                      {entry.outcome}
                    </span>
                  </td>
                  <td title={entry.userAgent ?? undefined}>
                    {entry.ip ?? '—'}
                    {entry.userAgent ? <div className="muted">{browserLabel(entry.userAgent)}</div> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="pager">
            <button
              type="button"
              className="button small"
              disabled={cursors.length <= 1}
              onClick={() => setCursors((c) => c.slice(0, -1))}
            >
              ‹ Newer
            </button>
            <span>Page {cursors.length}</span>
            <button
              type="button"
              className="button small"
              disabled={!nextCursor}
              onClick={() => nextCursor && setCursors((c) => [...c, nextCursor])}
            >
              Older ›
            </button>
          </div>
        </div>
      )}
    </main>
  );
}
