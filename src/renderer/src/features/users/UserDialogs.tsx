import { useState, type FormEvent } from 'react';
import type { ApiKey, CreatedKey, GatewayStatus, KeyScope, User, UserRole } from '../../../../shared/ipc/contract';
import { CopyButton } from '../../components/CopyButton';
import { Dialog, Field, FormFooter } from '../../components/Dialog';
import { formErrors, IpcClientError } from '../../lib/ipc';
import { useStores } from '../../stores';
import { QuotaTable, useQuotaDrafts } from './QuotaEditor';

const DAY_MS = 86_400_000;

const USER_FIELDS = { username: 'Username', displayName: 'Display name', email: 'Email', role: 'Role' };

/** A failure as the dialog shows it: under the field it is about when main or the agent says which, else below. */
function describe(error: unknown): { field?: string; message: string } {
  if (error instanceof IpcClientError && error.code === 'USER_NAME_TAKEN')
    return { field: 'username', message: error.message };
  const { fields, message } = formErrors(error, USER_FIELDS);
  const [field, text] = Object.entries(fields)[0] ?? [];
  return field && text ? { field, message: text } : { message: message ?? (error as Error).message };
}

export function UserDialog({
  hostId,
  user,
  onClose,
  onSaved,
}: {
  hostId: string;
  user?: User;
  onClose: () => void;
  onSaved: (user: User) => void;
}) {
  const stores = useStores();
  const [username, setUsername] = useState(user?.username ?? '');
  const [displayName, setDisplayName] = useState(user?.displayName ?? '');
  const [email, setEmail] = useState(user?.email ?? '');
  const [role, setRole] = useState<UserRole>(user?.role ?? 'member');
  const [error, setError] = useState<{ field?: string; message: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const fields = {
      username: username.trim(),
      displayName: displayName.trim() || null,
      email: email.trim() || null,
      role,
    };
    try {
      const saved = user
        ? await stores.users.getState().update(hostId, user.id, fields)
        : await stores.users.getState().create(hostId, fields);
      stores.ui
        .getState()
        .notify(user ? `${saved.username} saved.` : `User ${saved.username} created. Give them a key with “+ Key”.`);
      onSaved(saved);
    } catch (err) {
      setBusy(false);
      setError(describe(err));
    }
  };

  return (
    <Dialog
      title={user ? `Edit ${user.username}` : 'New user'}
      onClose={onClose}
      footer={
        <FormFooter
          form="user-form"
          busy={busy}
          label={user ? 'Save' : 'Create user'}
          busyLabel="Saving…"
          onCancel={onClose}
        />
      }
    >
      <form id="user-form" className="form" onSubmit={(event) => void submit(event)}>
        <Field
          label="Username"
          hint="1-32 letters, digits, '.', '_' or '-'. Usage is shown under this name."
          error={error?.field === 'username' ? error.message : undefined}
        >
          <input value={username} onChange={(e) => setUsername(e.target.value)} placeholder="ada" autoFocus required />
        </Field>
        <Field label="Display name" error={error?.field === 'displayName' ? error.message : undefined}>
          <input value={displayName} onChange={(e) => setDisplayName(e.target.value)} placeholder="Ada Lovelace" />
        </Field>
        <Field label="Email" error={error?.field === 'email' ? error.message : undefined}>
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="ada@example.com" />
        </Field>
        <Field
          label="Role"
          error={error?.field === 'role' ? error.message : undefined}
          hint="Admins may later manage others; members use the gateway."
        >
          <select value={role} onChange={(e) => setRole(e.target.value as UserRole)}>
            <option value="member">Member</option>
            <option value="admin">Admin</option>
          </select>
        </Field>
        {error && error.field === undefined ? (
          <p className="form-error" role="alert">
            {error.message}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}

type Expiry = 'never' | '30' | '90' | '365' | 'date';

/** An optional positive whole number from a field: null when empty, NaN when not one. */
const optionalInt = (text: string): number | null => {
  if (!text.trim()) return null;
  const n = Number(text.trim());
  return Number.isInteger(n) && n > 0 ? n : Number.NaN;
};

export function CreateKeyDialog({
  hostId,
  user,
  defaults,
  onClose,
  onCreated,
}: {
  hostId: string;
  user: User;
  defaults: GatewayStatus['defaultRateLimit'] | null;
  onClose: () => void;
  onCreated: (created: CreatedKey) => void;
}) {
  const stores = useStores();
  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState<Expiry>('never');
  const [date, setDate] = useState('');
  const [scopes, setScopes] = useState<KeyScope[]>(['gateway', 'self']);
  const [rpm, setRpm] = useState('');
  const [streams, setStreams] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [nameError, setNameError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const toggle = (scope: KeyScope, on: boolean): void =>
    setScopes(on ? [...new Set([...scopes, scope])] : scopes.filter((s) => s !== scope));

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const requestsPerMinute = optionalInt(rpm);
    const concurrentStreams = optionalInt(streams);
    if (Number.isNaN(requestsPerMinute) || Number.isNaN(concurrentStreams)) {
      setError('Rate limits are whole numbers above 0, or empty for the gateway’s default.');
      return;
    }
    let expiresAt: string | null = null;
    if (expiry === 'date') {
      const end = Date.parse(`${date}T23:59:59Z`);
      if (Number.isNaN(end) || end < Date.now()) {
        setError('Pick an expiry date in the future.');
        return;
      }
      expiresAt = new Date(end).toISOString();
    } else if (expiry !== 'never') {
      expiresAt = new Date(Date.now() + Number(expiry) * DAY_MS).toISOString();
    }
    if (scopes.length === 0) {
      setError('Give the key at least one scope.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const created = await stores.users.getState().createKey(hostId, user.id, {
        name: name.trim(),
        scopes,
        expiresAt,
        ...(requestsPerMinute !== null || concurrentStreams !== null
          ? {
              rateLimit: {
                ...(requestsPerMinute !== null ? { requestsPerMinute } : {}),
                ...(concurrentStreams !== null ? { concurrentStreams } : {}),
              },
            }
          : {}),
      });
      onCreated(created);
    } catch (err) {
      setBusy(false);
      const { fields, message } = formErrors(err, { name: 'Key name' });
      setNameError(fields.name ?? null);
      setError(message);
    }
  };

  return (
    <Dialog
      title={`New key for ${user.username}`}
      onClose={onClose}
      footer={<FormFooter form="key-form" busy={busy} label="Create key" busyLabel="Creating…" onCancel={onClose} />}
    >
      <form id="key-form" className="form" onSubmit={(event) => void submit(event)}>
        <Field
          label="Key name"
          hint="Where it is used, to recognise it later: “laptop”, “ci”, “slot alice”."
          error={nameError ?? undefined}
        >
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="laptop" autoFocus required />
        </Field>
        <Field label="Expires">
          <select value={expiry} onChange={(e) => setExpiry(e.target.value as Expiry)}>
            <option value="never">Never</option>
            <option value="30">In 30 days</option>
            <option value="90">In 90 days</option>
            <option value="365">In a year</option>
            <option value="date">On a date…</option>
          </select>
        </Field>
        {expiry === 'date' ? (
          <Field label="Expiry date" hint="The key stops working at the end of this day (UTC).">
            <input type="date" value={date} onChange={(e) => setDate(e.target.value)} required />
          </Field>
        ) : null}
        <fieldset className="checks">
          <legend className="field-label">Scopes</legend>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={scopes.includes('gateway')}
              onChange={(e) => toggle('gateway', e.target.checked)}
            />
            gateway: call Claude through the gateway
          </label>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={scopes.includes('self')}
              onChange={(e) => toggle('self', e.target.checked)}
            />
            self: read its own usage and quotas (/v1/me/usage)
          </label>
        </fieldset>
        <details className="advanced">
          <summary>Rate limits</summary>
          <div className="form-grid two">
            <Field label="Requests per minute" hint={defaults ? `Default: ${defaults.requestsPerMinute}` : undefined}>
              <input value={rpm} onChange={(e) => setRpm(e.target.value)} inputMode="numeric" placeholder="default" />
            </Field>
            <Field label="Concurrent streams" hint={defaults ? `Default: ${defaults.concurrentStreams}` : undefined}>
              <input
                value={streams}
                onChange={(e) => setStreams(e.target.value)}
                inputMode="numeric"
                placeholder="default"
              />
            </Field>
          </div>
        </details>
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}

/** The new key, shown this once, with the lines that point Claude Code or the SDK at the gateway. */
export function KeySecretDialog({
  user,
  created,
  rotatedFrom,
  gatewayUrl,
  onClose,
}: {
  user: User;
  created: CreatedKey;
  rotatedFrom?: ApiKey | undefined;
  gatewayUrl: string | null;
  onClose: () => void;
}) {
  const lines = `export ANTHROPIC_BASE_URL=${gatewayUrl ?? '<gateway URL>'}\nexport ANTHROPIC_API_KEY=${created.secret}`;
  return (
    <Dialog
      title={`Key “${created.key.name}” for ${user.username}`}
      onClose={onClose}
      width={620}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button primary" onClick={onClose}>
            I have copied it
          </button>
        </>
      }
    >
      <p className="warning">
        Copy the key now: this is the only time it is shown. Slotdeck keeps only a hash of it; a lost key is replaced by
        rotating it.
      </p>
      <div className="secret-row">
        <code className="secret" data-testid="new-key">
          {created.secret}
        </code>
        <CopyButton text={created.secret} label="Copy key" className="button small primary" />
      </div>
      {rotatedFrom ? (
        <p className="muted">
          The old key {rotatedFrom.prefix}… keeps working until its grace period ends (its expiry shows in the list),
          then stops.
        </p>
      ) : null}
      <p>For Claude Code or the Anthropic SDK, run these two lines in the shell that starts them:</p>
      <pre className="snippet" data-testid="env-lines">
        {lines}
      </pre>
      <div className="form-row">
        <CopyButton text={lines} label="Copy both lines" />
        {gatewayUrl ? null : (
          <span className="form-error">The gateway of this host is off: turn it on in its agent settings first.</span>
        )}
      </div>
    </Dialog>
  );
}

const GRACE: Array<[number, string]> = [
  [0, 'Stop the old key now'],
  [3600, '1 hour'],
  [86_400, '24 hours'],
  [7 * 86_400, '7 days'],
];

export function RotateKeyDialog({
  hostId,
  user,
  apiKey,
  onClose,
  onRotated,
}: {
  hostId: string;
  user: User;
  apiKey: ApiKey;
  onClose: () => void;
  onRotated: (created: CreatedKey) => void;
}) {
  const stores = useStores();
  const [grace, setGrace] = useState(3600);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const rotate = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      onRotated(await stores.users.getState().rotateKey(hostId, user.id, apiKey.id, grace));
    } catch (err) {
      setBusy(false);
      setError((err as Error).message);
    }
  };
  return (
    <Dialog
      title={`Rotate ${apiKey.name}?`}
      onClose={onClose}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="button primary" disabled={busy} onClick={() => void rotate()}>
            {busy ? 'Rotating…' : 'Rotate key'}
          </button>
        </>
      }
    >
      <p>
        A new key replaces {apiKey.prefix}… with the same name, scopes and limits. The old one keeps working for a grace
        period, so that its clients can move over.
      </p>
      <Field label="Grace period">
        <select value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
          {GRACE.map(([seconds, label]) => (
            <option key={seconds} value={seconds}>
              {label}
            </option>
          ))}
        </select>
      </Field>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
    </Dialog>
  );
}

/**
 * A key's rate limits (empty: the gateway's default) and its own quotas, saved together with one Save. Closing with
 * unsaved edits asks first instead of dropping them.
 */
export function KeyLimitsDialog({
  hostId,
  user,
  apiKey,
  defaults,
  onClose,
}: {
  hostId: string;
  user: User;
  apiKey: ApiKey;
  defaults: GatewayStatus['defaultRateLimit'] | null;
  onClose: () => void;
}) {
  const stores = useStores();
  const savedRpm = apiKey.rateLimit.requestsPerMinute?.toString() ?? '';
  const savedStreams = apiKey.rateLimit.concurrentStreams?.toString() ?? '';
  const [rpm, setRpm] = useState(savedRpm);
  const [streams, setStreams] = useState(savedStreams);
  // What the agent has now, once saved here (the key prop is the list's copy, refreshed later).
  const [baseline, setBaseline] = useState({ rpm: savedRpm, streams: savedStreams });
  const quotas = useQuotaDrafts({ hostId, subject: 'key', keyId: apiKey.id });
  const [note, setNote] = useState<{ error: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmingClose, setConfirmingClose] = useState(false);
  const rateDirty = rpm.trim() !== baseline.rpm || streams.trim() !== baseline.streams;
  const dirty = rateDirty || quotas.dirty;

  const requestClose = (): void => {
    if (dirty && !confirmingClose) {
      setConfirmingClose(true);
      return;
    }
    onClose();
  };

  const save = async (event?: FormEvent): Promise<void> => {
    event?.preventDefault();
    setConfirmingClose(false);
    const requestsPerMinute = optionalInt(rpm);
    const concurrentStreams = optionalInt(streams);
    if (Number.isNaN(requestsPerMinute) || Number.isNaN(concurrentStreams)) {
      setNote({ error: true, text: 'Rate limits are whole numbers above 0, or empty for the gateway’s default.' });
      return;
    }
    setBusy(true);
    setNote(null);
    try {
      if (rateDirty) {
        await stores.users
          .getState()
          .updateKey(hostId, user.id, apiKey.id, { rateLimit: { requestsPerMinute, concurrentStreams } });
        setBaseline({ rpm: rpm.trim(), streams: streams.trim() });
      }
      const quotaError = quotas.dirty ? await quotas.save() : null;
      setNote(
        quotaError
          ? { error: true, text: quotaError }
          : { error: false, text: 'Saved: the new limits apply to the next request.' },
      );
    } catch (err) {
      setNote({ error: true, text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      title={`Limits of ${apiKey.name} (${apiKey.prefix}…)`}
      onClose={requestClose}
      width={760}
      footer={
        confirmingClose ? (
          <>
            <span className="form-error unsaved-warning" role="alert">
              These limits have unsaved changes.
            </span>
            <span className="spacer" />
            <button type="button" className="button" onClick={onClose}>
              Discard changes
            </button>
            <button type="submit" form="key-limits-form" className="button primary" disabled={busy}>
              {busy ? 'Saving…' : 'Save limits'}
            </button>
          </>
        ) : (
          <>
            {note ? (
              <span className={note.error ? 'form-error' : 'muted'} role={note.error ? 'alert' : 'status'}>
                {note.text}
              </span>
            ) : null}
            <span className="spacer" />
            <button type="button" className="button" onClick={requestClose}>
              Close
            </button>
            <button type="submit" form="key-limits-form" className="button primary" disabled={busy || !dirty}>
              {busy ? 'Saving…' : 'Save limits'}
            </button>
          </>
        )
      }
    >
      <form id="key-limits-form" className="form" onSubmit={(event) => void save(event)}>
        <h4 className="subhead">Rate limits</h4>
        <div className="form-grid two">
          <Field
            label="Requests per minute"
            hint={defaults ? `Empty: the default, ${defaults.requestsPerMinute}` : 'Empty: the default'}
          >
            <input value={rpm} onChange={(e) => setRpm(e.target.value)} inputMode="numeric" placeholder="default" />
          </Field>
          <Field
            label="Concurrent streams"
            hint={defaults ? `Empty: the default, ${defaults.concurrentStreams}` : 'Empty: the default'}
          >
            <input
              value={streams}
              onChange={(e) => setStreams(e.target.value)}
              inputMode="numeric"
              placeholder="default"
            />
          </Field>
        </div>
        <h4 className="subhead">Quotas of this key</h4>
        <p className="muted">On top of {user.username}’s own quotas: whichever is used up first stops the key.</p>
        <QuotaTable drafts={quotas} />
      </form>
    </Dialog>
  );
}
