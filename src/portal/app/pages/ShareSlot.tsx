import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import type { CreatedShare, Share } from '../../../../remote-agent/src/contract/share';
import { usePortal } from '../context';
import { paths } from '../endpoints';
import { CopyButton, ErrorNote, Field, formatDate, useAction } from '../ui';

const EXPIRIES: { label: string; minutes: number }[] = [
  { label: '1 hour', minutes: 60 },
  { label: '1 day', minutes: 24 * 60 },
  { label: '7 days', minutes: 7 * 24 * 60 },
  { label: '30 days', minutes: 30 * 24 * 60 },
];

/** The embedding origins typed one per line or separated by commas or spaces; empty entries dropped. */
export function parseOrigins(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((origin) => origin.trim().replace(/\/+$/, ''))
    .filter((origin) => origin.length > 0);
}

/** The owner shares one of their slots (when the admin lets owners share): make a link, list them, revoke. */
export function ShareSlot({ slotId, slotName }: { slotId: string; slotName: string }): ReactNode {
  const { api } = usePortal();
  const [shares, setShares] = useState<Share[] | null>(null);
  const [created, setCreated] = useState<CreatedShare | null>(null);
  const [mode, setMode] = useState<'read' | 'write'>('read');
  const [minutes, setMinutes] = useState(24 * 60);
  const [origins, setOrigins] = useState('');
  const [version, setVersion] = useState(0);
  const action = useAction();

  useEffect(() => {
    api.get<{ shares: Share[] }>(paths.slotShares(slotId)).then(
      (list) => setShares(list.shares),
      () => setShares([]),
    );
  }, [api, slotId, version]);

  const create = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      setCreated(
        await api.send<CreatedShare>('POST', paths.slotShares(slotId), {
          mode,
          expiresInMinutes: minutes,
          signInRequired: false,
          frameAncestors: parseOrigins(origins),
        }),
      );
      setVersion((value) => value + 1);
    });
  };
  const revoke = (share: Share): void => {
    void action.run(async () => {
      await api.send('DELETE', paths.share(share.id));
      setVersion((value) => value + 1);
    });
  };

  return (
    <div className="share-panel" data-testid="share-panel">
      <h3>Share {slotName}</h3>
      {created ? (
        <div className="created" data-testid="share-created">
          <p>
            <strong>Copy the link now: it is not shown again.</strong>
          </p>
          <pre className="code" data-testid="share-link">
            {created.link}
          </pre>
          <div className="actions">
            <CopyButton text={created.link} label="Copy link" testId="share-copy-link" />
            <CopyButton text={created.iframeSnippet} label="Copy iframe snippet" testId="share-copy-iframe" />
            <button type="button" className="secondary" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <form onSubmit={create} className="inline-form">
          <label>
            Access
            <select value={mode} onChange={(event) => setMode(event.target.value as 'read' | 'write')}>
              <option value="read">Read-only</option>
              <option value="write">Can type</option>
            </select>
          </label>
          <label>
            Expires after
            <select value={minutes} onChange={(event) => setMinutes(Number(event.target.value))}>
              {EXPIRIES.map((choice) => (
                <option key={choice.minutes} value={choice.minutes}>
                  {choice.label}
                </option>
              ))}
            </select>
          </label>
          <Field
            label="Sites that may embed it (origins, optional)"
            value={origins}
            onValue={setOrigins}
            placeholder="https://wiki.example.com"
          />
          <button type="submit" disabled={action.busy} data-testid="share-create">
            Create link
          </button>
        </form>
      )}
      <ErrorNote error={action.error} />
      {shares && shares.length > 0 ? (
        <ul className="share-list">
          {shares.map((share) => (
            <li key={share.id}>
              <span>
                {share.mode === 'write' ? 'can type' : 'read-only'} · {share.state} · expires{' '}
                {formatDate(share.expiresAt)} · {share.viewersNow} viewing
              </span>
              {share.state === 'active' ? (
                <button type="button" className="danger" onClick={() => revoke(share)} disabled={action.busy}>
                  Revoke
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
