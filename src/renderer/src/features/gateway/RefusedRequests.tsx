import { useEffect, useState } from 'react';
import type { RefusalRow } from '../../../../shared/ipc/contract';
import { formatDateTime, formatRelative } from '../../lib/format';
import { useStores } from '../../stores';

export const REFUSALS_PAGE_SIZE = 25;

/** The gateway's codes in a few words; the row's message (what the client was told) says the rest. */
const CODE_LABEL: Record<string, string> = {
  GATEWAY_KEY_MISSING: 'No key sent',
  GATEWAY_KEY_MALFORMED: 'Not a Slotdeck key',
  GATEWAY_KEY_UNKNOWN: 'Unknown key',
  GATEWAY_KEY_REVOKED: 'Key revoked',
  GATEWAY_KEY_EXPIRED: 'Key expired',
  GATEWAY_USER_DISABLED: 'User disabled',
  GATEWAY_USER_DELETED: 'User deleted',
  GATEWAY_SCOPE_MISSING: 'Key lacks the scope',
  GATEWAY_RATE_LIMITED: 'Rate limit',
  GATEWAY_STREAMS_EXHAUSTED: 'Too many streams at once',
  GATEWAY_QUOTA_EXCEEDED: 'Quota used up',
  GATEWAY_BODY_INVALID: 'Invalid request body',
  GATEWAY_BODY_TOO_LARGE: 'Request too large',
  GATEWAY_BODY_TIMEOUT: 'Upload stalled',
  GATEWAY_REQUEST_MALFORMED: 'Malformed request',
  GATEWAY_HEADERS_TOO_LARGE: 'Headers too large',
  GATEWAY_MODEL_UNPRICED: 'Model has no price',
  GATEWAY_ROUTE_NOT_FOUND: 'No such route',
  GATEWAY_UPSTREAM_KEY_MISSING: 'No organisation key',
  GATEWAY_UPSTREAM_TIMEOUT: 'Upstream too slow',
  GATEWAY_UPSTREAM_UNREACHABLE: 'Upstream unreachable',
  GATEWAY_SHUTTING_DOWN: 'Agent restarting',
  GATEWAY_STORAGE_FULL: 'Host disk full',
};

export const refusalLabel = (code: string): string => CODE_LABEL[code] ?? code;

const STATUSES = [400, 401, 403, 404, 408, 413, 429, 502, 503, 504];

/** Short cells stay on one line; the reason takes the width that is left. */
const ONE_LINE = { whiteSpace: 'nowrap' } as const;

function keyCell(row: RefusalRow): string {
  if (row.keyName) return row.keyName;
  if (row.keyPrefix) return `${row.keyPrefix}…`;
  return '—';
}

/**
 * The request log: requests the gateway refused and why, newest first, a page at a time. In a user's detail it
 * shows that user's (filterable per key); in the Gateway view everyone's.
 */
export function RefusedRequests({
  hostId,
  userId,
  keys,
  label,
}: {
  hostId: string;
  /** Only this user's refusals; all when left out. */
  userId?: string;
  /** The user's keys, to filter by one. */
  keys?: Array<{ id: string; name: string; prefix: string }>;
  label: string;
}) {
  const stores = useStores();
  const [keyId, setKeyId] = useState('');
  const [status, setStatus] = useState('');
  /** Cursors of the pages before the current one (the first page has none). */
  const [cursors, setCursors] = useState<string[]>([]);
  const [reloads, setReloads] = useState(0);
  const [loaded, setLoaded] = useState<{
    query: string;
    page: { rows: RefusalRow[]; nextCursor: string | null } | null;
    error: string | null;
  } | null>(null);
  const cursor = cursors.at(-1);
  const query = JSON.stringify([hostId, userId, keyId, status, cursor, reloads]);

  useEffect(() => {
    let current = true;
    stores.gateway
      .getState()
      .refusals(hostId, {
        limit: REFUSALS_PAGE_SIZE,
        ...(userId ? { userId } : {}),
        ...(keyId ? { keyId } : {}),
        ...(status ? { status: Number(status) } : {}),
        ...(cursor ? { cursor } : {}),
      })
      .then(
        (page) => current && setLoaded({ query, page, error: null }),
        (err: unknown) => current && setLoaded({ query, page: null, error: (err as Error).message }),
      );
    return () => {
      current = false;
    };
  }, [stores, hostId, userId, keyId, status, cursor, query]);

  // The previous page stays on screen while the next one loads.
  const loading = loaded?.query !== query;
  const page = loaded?.page ?? null;
  const error = loaded?.error ?? null;
  const filtered = Boolean(keyId || status);
  const rows = page?.rows ?? [];
  return (
    <section className="detail-section refused-requests" aria-label={label}>
      <div className="section-title">
        <h4>{label}</h4>
        {keys && keys.length > 0 ? (
          <select
            aria-label="Filter by key"
            value={keyId}
            onChange={(e) => {
              setKeyId(e.target.value);
              setCursors([]);
            }}
          >
            <option value="">all keys</option>
            {keys.map((key) => (
              <option key={key.id} value={key.id}>
                {key.name} ({key.prefix}…)
              </option>
            ))}
          </select>
        ) : null}
        <select
          aria-label="Filter by status"
          value={status}
          onChange={(e) => {
            setStatus(e.target.value);
            setCursors([]);
          }}
        >
          <option value="">any status</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <button type="button" className="button small" disabled={loading} onClick={() => setReloads((n) => n + 1)}>
          Refresh
        </button>
      </div>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {page && rows.length === 0 && !error ? (
        <p className="empty" data-testid="refusals-empty">
          {filtered
            ? 'No refused request matches these filters.'
            : `No refused requests${userId ? ' for this user' : ''} in the last 30 days. When the gateway turns a call away (a revoked key, a used-up quota, a rate limit), it shows here with the reason.`}
        </p>
      ) : null}
      {rows.length > 0 ? (
        <table className="data-table refusals-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>Status</th>
              <th>Reason</th>
              {userId ? null : <th>User</th>}
              <th>Key</th>
              <th>Model</th>
              <th>From</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.id}>
                <td
                  style={ONE_LINE}
                  title={row.count > 1 ? `last at ${formatDateTime(row.lastAt)}` : formatDateTime(row.at)}
                >
                  {formatRelative(row.lastAt)}
                  {row.count > 1 ? <span className="muted"> ×{row.count.toLocaleString('en-US')}</span> : null}
                </td>
                <td style={ONE_LINE}>
                  <span className={`chip ${row.status >= 500 ? 'chip-danger' : 'chip-busy'}`}>{row.status}</span>
                </td>
                <td>
                  <strong>{refusalLabel(row.code)}</strong> <code className="muted">{row.code}</code>
                  <div className="muted">{row.message}</div>
                </td>
                {userId ? null : <td>{row.username ?? (row.userId ? row.userId : 'unknown caller')}</td>}
                <td style={ONE_LINE}>
                  <code>{keyCell(row)}</code>
                </td>
                <td style={ONE_LINE}>{row.model ?? '—'}</td>
                <td style={ONE_LINE}>
                  <code>{row.ip}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {cursors.length > 0 || page?.nextCursor ? (
        <div className="pager">
          <button
            type="button"
            className="button small"
            disabled={cursors.length === 0 || loading}
            onClick={() => setCursors(cursors.slice(0, -1))}
          >
            ‹ Newer
          </button>
          <span>Page {cursors.length + 1}</span>
          <button
            type="button"
            className="button small"
            disabled={!page?.nextCursor || loading}
            onClick={() => page?.nextCursor && setCursors([...cursors, page.nextCursor])}
          >
            Older ›
          </button>
        </div>
      ) : null}
    </section>
  );
}
