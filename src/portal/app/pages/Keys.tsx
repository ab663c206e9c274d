import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import type { CreatedPortalKey, PortalKey, PortalKeyList } from '../../../../remote-agent/src/contract/portal';
import { usePortal } from '../context';
import { paths } from '../endpoints';
import { CopyButton, ErrorNote, Field, formatDate, useAction } from '../ui';

/** Expiry choices for a new key, in days (null: never). */
const EXPIRY_CHOICES: { label: string; days: number | null }[] = [
  { label: 'Never', days: null },
  { label: '7 days', days: 7 },
  { label: '30 days', days: 30 },
  { label: '90 days', days: 90 },
  { label: '1 year', days: 365 },
];

export function expiryFromDays(days: number | null, now: Date = new Date()): string | null {
  return days === null ? null : new Date(now.getTime() + days * 86_400_000).toISOString();
}

export function KeysPage(): ReactNode {
  const { api } = usePortal();
  const [list, setList] = useState<PortalKeyList | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedPortalKey | null>(null);
  const [name, setName] = useState('');
  const [expiryDays, setExpiryDays] = useState<number | null>(90);
  const action = useAction();

  const load = useCallback(
    () =>
      api.get<PortalKeyList>(paths.keys).then(
        (answer) => {
          setList(answer);
          setLoadError(null);
        },
        (error: unknown) => setLoadError(error),
      ),
    [api],
  );
  useEffect(() => {
    void load();
  }, [load]);

  const create = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      setCreated(
        await api.send<CreatedPortalKey>('POST', paths.keys, {
          name: name.trim(),
          expiresAt: expiryFromDays(expiryDays),
        }),
      );
      setName('');
      await load();
    });
  };

  const atLimit = list !== null && list.activeOwnKeys >= list.limits.keyLimit;
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">My keys</h1>
      <p className="muted">
        API keys let Claude Code (or any Anthropic SDK) reach Claude through this Slotdeck, counted against your quota.
      </p>
      <ErrorNote error={loadError} />
      {created ? <CreatedKeyPanel created={created} onDone={() => setCreated(null)} /> : null}
      {list ? (
        <form className="card inline-form" onSubmit={create} data-testid="key-create-form">
          <Field
            label="Key name"
            required
            maxLength={64}
            value={name}
            onValue={setName}
            placeholder="laptop"
            data-testid="key-name"
          />
          <label>
            Expires
            <select
              value={expiryDays ?? ''}
              onChange={(event) => setExpiryDays(event.target.value === '' ? null : Number(event.target.value))}
              data-testid="key-expiry"
            >
              {EXPIRY_CHOICES.map((choice) => (
                <option key={choice.label} value={choice.days ?? ''}>
                  {choice.label}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" disabled={action.busy || atLimit} data-testid="key-create">
            Create key
          </button>
          <p className="hint">
            {list.activeOwnKeys} of {list.limits.keyLimit} keys in use
            {atLimit ? ': revoke one to make another.' : '.'}
          </p>
          <ErrorNote error={action.error} />
        </form>
      ) : null}
      <ul className="cards" data-testid="key-list">
        {list?.keys.map((key) => (
          <KeyRow key={key.id} apiKey={key} onChanged={load} onRotated={setCreated} />
        ))}
      </ul>
    </section>
  );
}

function CreatedKeyPanel({ created, onDone }: { created: CreatedPortalKey; onDone: () => void }): ReactNode {
  return (
    <div className="card created" role="region" aria-label="New key" data-testid="key-created">
      <h2>Your new key “{created.key.name}”</h2>
      <p>
        <strong>Copy it now: it is not shown again.</strong> To use it with Claude Code, paste these two lines into your
        shell (or your shell profile):
      </p>
      <pre className="code" data-testid="key-shell-lines">
        {created.shellLines}
      </pre>
      <div className="actions">
        <CopyButton text={created.shellLines} label="Copy both lines" testId="key-copy-lines" />
        <CopyButton text={created.secret} label="Copy the key only" testId="key-copy-secret" />
        <button type="button" onClick={onDone} data-testid="key-created-done">
          Done
        </button>
      </div>
    </div>
  );
}

function KeyRow({
  apiKey,
  onChanged,
  onRotated,
}: {
  apiKey: PortalKey;
  onChanged: () => Promise<void>;
  onRotated: (created: CreatedPortalKey) => void;
}): ReactNode {
  const { api } = usePortal();
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(apiKey.name);
  const [expiry, setExpiry] = useState(apiKey.expiresAt ? apiKey.expiresAt.slice(0, 10) : '');
  const action = useAction();
  const live = apiKey.state === 'active' || apiKey.state === 'rotating';

  const save = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      await api.send('PATCH', paths.key(apiKey.id), {
        name: name.trim(),
        expiresAt: expiry ? new Date(`${expiry}T23:59:59Z`).toISOString() : null,
      });
      setEditing(false);
      await onChanged();
    });
  };
  const revoke = (): void => {
    if (!window.confirm(`Revoke “${apiKey.name}”? Programs using it stop working at once.`)) return;
    void action.run(async () => {
      await api.send('POST', paths.keyAction(apiKey.id, 'revoke'));
      await onChanged();
    });
  };
  const rotate = (): void => {
    void action.run(async () => {
      onRotated(await api.send<CreatedPortalKey>('POST', paths.keyAction(apiKey.id, 'rotate'), { graceSeconds: 3600 }));
      await onChanged();
    });
  };

  return (
    <li className="card key" data-testid={`key-${apiKey.name}`} data-key-id={apiKey.id}>
      {editing ? (
        <form onSubmit={save} className="inline-form">
          <label>
            Name
            <input required maxLength={64} value={name} onChange={(event) => setName(event.target.value)} />
          </label>
          <label>
            Expires on (UTC, empty: never)
            <input type="date" value={expiry} onChange={(event) => setExpiry(event.target.value)} />
          </label>
          <button type="submit" disabled={action.busy}>
            Save
          </button>
          <button type="button" className="secondary" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <>
          <div className="slot-head">
            <h2>{apiKey.name}</h2>
            <span className={`state key-${apiKey.state}`} data-testid="key-state">
              {apiKey.state}
            </span>
          </div>
          <dl className="facts">
            <dt>Key</dt>
            <dd>
              <code>{apiKey.prefix}…</code>
            </dd>
            <dt>Scopes</dt>
            <dd>{apiKey.scopes.join(', ')}</dd>
            <dt>Expires</dt>
            <dd>{formatDate(apiKey.expiresAt)}</dd>
            <dt>Last used</dt>
            <dd>{formatDate(apiKey.lastUsedAt)}</dd>
          </dl>
          {!apiKey.editable ? <p className="hint">Issued by the admin for a slot: only the admin changes it.</p> : null}
          {apiKey.editable && live ? (
            <div className="actions">
              <button type="button" className="secondary" onClick={() => setEditing(true)} data-testid="key-edit">
                Rename or change expiry
              </button>
              <button
                type="button"
                className="secondary"
                onClick={rotate}
                disabled={action.busy}
                data-testid="key-rotate"
              >
                Rotate
              </button>
              <button type="button" className="danger" onClick={revoke} disabled={action.busy} data-testid="key-revoke">
                Revoke
              </button>
            </div>
          ) : null}
        </>
      )}
      <ErrorNote error={action.error} />
    </li>
  );
}
