import { useEffect, useState, type FormEvent } from 'react';
import type { CreatedShare, Share } from '../../../../shared/ipc/contract';
import { CopyButton } from '../../components/CopyButton';
import { Dialog, Field } from '../../components/Dialog';
import { Segmented } from '../../components/Segmented';
import { formatDateTime, formatRelative } from '../../lib/format';
import { formErrors } from '../../lib/ipc';
import { useShares, useSlots, useStores, useUsers } from '../../stores';
import { sharesKey } from '../../stores/shares';
import {
  EMPTY_SHARE_DRAFT,
  EXPIRY_PRESETS,
  shareCopies,
  shareRequest,
  type ShareDraft,
  type ShareProblems,
} from './share-form';

/** One empty list for selectors: a new [] on every read would make React render without end. */
const NONE: never[] = [];

const SHARE_FIELDS = {
  expiresInMinutes: 'expiry',
  maxViewers: 'maxViewers',
  allowedUserIds: 'allowedUserIds',
  frameAncestors: 'origins',
  label: 'label',
} as const;

/**
 * Share a slot: a link others open in a browser (or embed in another site's page), read-only or writable, expiring.
 * The link is shown once, right after it is made; below, every share of the slot with its viewers and Revoke.
 */
export function ShareDialog({ hostId, slotId, onClose }: { hostId: string; slotId: string; onClose: () => void }) {
  const stores = useStores();
  const slot = useSlots((s) => s.byHost[hostId]?.slots.find((x) => x.id === slotId));
  const [created, setCreated] = useState<CreatedShare | null>(null);
  const name = slot?.name ?? slotId;
  useEffect(() => {
    void stores.shares.getState().load(hostId, slotId);
  }, [stores, hostId, slotId]);
  return (
    <Dialog title={`Share ${name}`} onClose={onClose} width={680}>
      {created ? (
        <CreatedShareView created={created} onAnother={() => setCreated(null)} />
      ) : (
        <ShareForm hostId={hostId} slotId={slotId} onCreated={setCreated} />
      )}
      <ShareList hostId={hostId} slotId={slotId} highlight={created?.share.id ?? null} />
    </Dialog>
  );
}

function ShareForm({
  hostId,
  slotId,
  onCreated,
}: {
  hostId: string;
  slotId: string;
  onCreated: (created: CreatedShare) => void;
}) {
  const stores = useStores();
  const [draft, setDraft] = useState<ShareDraft>(EMPTY_SHARE_DRAFT);
  const [problems, setProblems] = useState<ShareProblems>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const users = useUsers((s) => s.byHost[hostId]?.users) ?? NONE;
  useEffect(() => {
    if (draft.signInRequired) void stores.users.getState().load(hostId);
  }, [stores, hostId, draft.signInRequired]);
  const change = (patch: Partial<ShareDraft>): void => setDraft((d) => ({ ...d, ...patch }));
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setFailure(null);
    const request = shareRequest(draft);
    if ('problems' in request) {
      setProblems(request.problems);
      return;
    }
    setProblems({});
    setBusy(true);
    try {
      onCreated(await stores.shares.getState().create(hostId, slotId, request.body));
    } catch (error) {
      const { fields, message } = formErrors(error, SHARE_FIELDS);
      const byField: ShareProblems = {};
      for (const [key, text] of Object.entries(fields)) byField[SHARE_FIELDS[key as keyof typeof SHARE_FIELDS]] = text;
      setProblems(byField);
      setFailure(message);
    } finally {
      setBusy(false);
    }
  };
  const activeUsers = users.filter((u) => u.active && !u.deleted);
  return (
    <form className="form share-form" onSubmit={(event) => void submit(event)} noValidate>
      <div className="field">
        <span className="field-label">Viewers may</span>
        <Segmented
          label="Viewers may"
          name="share-mode"
          value={draft.mode}
          onChange={(mode) => change({ mode })}
          options={[
            { value: 'read', label: 'Watch (read-only)' },
            { value: 'write', label: 'Type (writable)' },
          ]}
        />
        {draft.mode === 'write' ? (
          <span className="field-hint warning">Anyone with the link can type into this slot, as its user.</span>
        ) : null}
      </div>
      <div className={`field ${problems.expiry ? 'has-error' : ''}`}>
        <span className="field-label">Link works for</span>
        <Segmented
          label="Link works for"
          name="share-expiry"
          value={draft.expiry}
          onChange={(expiry) => change({ expiry })}
          options={EXPIRY_PRESETS}
        />
        {draft.expiry === 'custom' ? (
          <div className="form-row">
            <input
              aria-label="How long"
              inputMode="numeric"
              value={draft.customAmount}
              onChange={(e) => change({ customAmount: e.target.value })}
              placeholder="12"
              size={6}
            />
            <select
              aria-label="Unit"
              value={draft.customUnit}
              onChange={(e) => change({ customUnit: e.target.value as ShareDraft['customUnit'] })}
            >
              <option value="minutes">minutes</option>
              <option value="hours">hours</option>
              <option value="days">days</option>
            </select>
          </div>
        ) : null}
        <span className={problems.expiry ? 'field-error' : 'field-hint'} role={problems.expiry ? 'alert' : undefined}>
          {problems.expiry ?? 'Required; 30 days at most. You can revoke it any time before.'}
        </span>
      </div>
      <Field label="Viewer limit" hint="Optional: at most this many viewers at once." error={problems.maxViewers}>
        <input
          inputMode="numeric"
          value={draft.maxViewers}
          onChange={(e) => change({ maxViewers: e.target.value })}
          placeholder="no limit"
        />
      </Field>
      <div className={`field ${problems.allowedUserIds ? 'has-error' : ''}`}>
        <label className="checkbox">
          <input
            type="checkbox"
            checked={draft.signInRequired}
            onChange={(e) => change({ signInRequired: e.target.checked })}
          />
          Sign-in required: only these users, signed in to the portal, may open it
        </label>
        {draft.signInRequired ? (
          <fieldset className="user-picks" aria-label="Users who may open it">
            {activeUsers.length === 0 ? <p className="muted">No active users on this host yet.</p> : null}
            {activeUsers.map((user) => (
              <label key={user.id} className="checkbox">
                <input
                  type="checkbox"
                  checked={draft.allowedUserIds.includes(user.id)}
                  onChange={(e) =>
                    change({
                      allowedUserIds: e.target.checked
                        ? [...draft.allowedUserIds, user.id]
                        : draft.allowedUserIds.filter((id) => id !== user.id),
                    })
                  }
                />
                {user.username}
                {user.displayName ? <span className="muted"> ({user.displayName})</span> : null}
              </label>
            ))}
          </fieldset>
        ) : null}
        {problems.allowedUserIds ? (
          <span className="field-error" role="alert">
            {problems.allowedUserIds}
          </span>
        ) : null}
      </div>
      <Field
        label="Sites that may embed it"
        hint="Optional: one origin a line, such as https://docs.example.com. None: the link opens only as its own page."
        error={problems.origins}
      >
        <textarea
          rows={2}
          spellCheck={false}
          value={draft.origins}
          onChange={(e) => change({ origins: e.target.value })}
          placeholder="https://docs.example.com"
        />
      </Field>
      <Field label="Label" hint="Optional: for you, in the list below (viewers do not see it)." error={problems.label}>
        <input value={draft.label} onChange={(e) => change({ label: e.target.value })} placeholder="demo for Ada" />
      </Field>
      {failure ? (
        <p className="form-error" role="alert">
          {failure}
        </p>
      ) : null}
      <div className="form-row">
        <span className="spacer" />
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create link'}
        </button>
      </div>
    </form>
  );
}

function CreatedShareView({ created, onAnother }: { created: CreatedShare; onAnother: () => void }) {
  const { share } = created;
  return (
    <section className="share-created" aria-label="New share link">
      <p>
        <strong>Copy the link now: it is shown only this once.</strong> Anyone who has it can{' '}
        {share.mode === 'write' ? 'watch and type' : 'watch'} until {formatDateTime(share.expiresAt)}, unless you revoke
        it.
      </p>
      <div className="secret-row">
        <code className="secret" data-testid="share-link">
          {created.link}
        </code>
      </div>
      <div className="form-row">
        {shareCopies(created).map((copy, index) => (
          <CopyButton
            key={copy.label}
            text={copy.text}
            label={copy.label}
            className={index === 0 ? 'button small primary' : 'button small'}
          />
        ))}
        <span className="spacer" />
        <button type="button" className="button small" onClick={onAnother}>
          Another link
        </button>
      </div>
      <pre className="snippet" data-testid="share-iframe">
        {created.iframeSnippet}
      </pre>
      {share.frameAncestors.length === 0 ? (
        <p className="muted">
          No site may embed this link (you listed none): the snippet works only once you make a link that names the
          site’s origin.
        </p>
      ) : (
        <p className="muted">May be embedded by {share.frameAncestors.join(', ')}.</p>
      )}
    </section>
  );
}

const STATE_TONE: Record<Share['state'], string> = { active: 'ok', expired: 'off', revoked: 'off' };

function ShareList({ hostId, slotId, highlight }: { hostId: string; slotId: string; highlight: string | null }) {
  const stores = useStores();
  const entry = useShares((s) => s.bySlot[sharesKey(hostId, slotId)]);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const revoke = async (shareId: string): Promise<void> => {
    setError(null);
    try {
      await stores.shares.getState().revoke(hostId, slotId, shareId);
      setConfirming(null);
      stores.ui.getState().notify('Share link revoked: its viewers were disconnected.');
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const shares = entry?.shares ?? [];
  return (
    <section className="detail-section share-list" aria-label="Share links of this slot">
      <div className="section-title">
        <h4>Share links of this slot</h4>
        <button
          type="button"
          className="button small"
          onClick={() => void stores.shares.getState().load(hostId, slotId)}
        >
          Refresh
        </button>
      </div>
      {entry?.error ? (
        <p className="form-error" role="alert">
          {entry.error.message}
        </p>
      ) : null}
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {entry?.loadedAt && shares.length === 0 ? <p className="empty">No share links yet.</p> : null}
      {shares.length > 0 ? (
        <table className="data-table shares-table">
          <thead>
            <tr>
              <th>Link</th>
              <th>State</th>
              <th>Viewers now</th>
              <th>Last opened</th>
              <th>Opens</th>
              <th>Expires</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {shares.map((share) => (
              <tr
                key={share.id}
                className={`${share.state === 'active' ? '' : 'dimmed'} ${share.id === highlight ? 'highlight' : ''}`}
                data-share-id={share.id}
              >
                <td>
                  {share.label ?? <span className="muted">{share.id}</span>}
                  <div className="muted">
                    {share.mode === 'write' ? 'writable' : 'read-only'}
                    {share.signInRequired ? ' · sign-in' : ''}
                    {share.maxViewers ? ` · max ${share.maxViewers}` : ''}
                    {share.frameAncestors.length ? ` · embeddable (${share.frameAncestors.length})` : ''}
                  </div>
                </td>
                <td>
                  <span className={`chip chip-${STATE_TONE[share.state]}`}>{share.state}</span>
                </td>
                <td>{share.viewersNow}</td>
                <td title={share.lastOpenedAt ? formatDateTime(share.lastOpenedAt) : undefined}>
                  {share.lastOpenedAt ? formatRelative(share.lastOpenedAt) : 'never'}
                </td>
                <td>{share.opens}</td>
                <td title={formatDateTime(share.expiresAt)}>{formatRelative(share.expiresAt)}</td>
                <td className="row-actions">
                  {share.state !== 'active' ? null : confirming === share.id ? (
                    <>
                      <button
                        type="button"
                        className="button small danger"
                        onClick={() => void revoke(share.id)}
                        title="The link stops working and its viewers are disconnected at once"
                      >
                        Revoke now
                      </button>
                      <button type="button" className="button small" onClick={() => setConfirming(null)}>
                        Keep
                      </button>
                    </>
                  ) : (
                    <button
                      type="button"
                      className="button small danger-outline"
                      onClick={() => setConfirming(share.id)}
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
