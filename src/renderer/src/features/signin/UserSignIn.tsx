import { useEffect, useState, type FormEvent } from 'react';
import type { CreatedInvite, User } from '../../../../shared/ipc/contract';
import { CopyButton } from '../../components/CopyButton';
import { Field } from '../../components/Dialog';
import { formatDateTime, formatRelative } from '../../lib/format';
import { useSignIn, useStores } from '../../stores';
import { userKey } from '../../stores/signin';
import { confirmDanger, useAction } from '../app/actions';
import { browserLabel } from '../audit/audit-filter';
import { githubUserId } from './signin-form';

const INVITE_HOURS = [
  { hours: 24, label: '1 day' },
  { hours: 72, label: '3 days' },
  { hours: 168, label: '7 days' },
];

/** A user's way into the portal: invite link, GitHub link, approval, lockout, and their sessions with Revoke. */
export function UserSignIn({ hostId, user }: { hostId: string; user: User }) {
  const stores = useStores();
  const act = useAction();
  const entry = useSignIn((s) => s.byUser[userKey(hostId, user.id)]);
  const [invite, setInvite] = useState<CreatedInvite | null>(null);
  const [inviteHours, setInviteHours] = useState(72);
  const [linking, setLinking] = useState(false);
  useEffect(() => {
    void stores.signin.getState().loadUser(hostId, user.id);
  }, [stores, hostId, user.id]);
  const status = entry?.status;
  const sessions = entry?.sessions ?? [];
  const makeInvite = (): void =>
    void act(async () => {
      setInvite(await stores.signin.getState().invite(hostId, user.id, inviteHours));
    }, hostId);

  return (
    <section className="detail-section" aria-label={`Sign-in of ${user.username}`}>
      <div className="section-title">
        <h4>Sign-in</h4>
        {status ? (
          <span className="chips">
            {status.pendingApproval ? <span className="chip chip-busy">pending approval</span> : null}
            <span className={`chip chip-${status.hasPassword ? 'ok' : 'off'}`}>
              {status.hasPassword ? 'password set' : 'no password yet'}
            </span>
            {status.twoFactorEnabled ? <span className="chip chip-ok">two-factor</span> : null}
            {status.githubId !== null ? <span className="chip chip-ok">GitHub {status.githubId}</span> : null}
            {status.locked ? <span className="chip chip-danger">locked</span> : null}
          </span>
        ) : null}
      </div>
      {entry?.error ? (
        <p className="form-error" role="alert">
          {entry.error.message}
        </p>
      ) : null}
      <div className="form-row">
        {status?.pendingApproval ? (
          <button
            type="button"
            className="button small primary"
            onClick={() =>
              void act(async () => {
                await stores.signin.getState().approve(hostId, user.id);
                await stores.users.getState().load(hostId);
                stores.ui.getState().notify(`${user.username} approved: they can sign in now.`);
              }, hostId)
            }
          >
            Approve
          </button>
        ) : null}
        <select
          aria-label="Invite link works for"
          value={inviteHours}
          onChange={(e) => setInviteHours(Number(e.target.value))}
        >
          {INVITE_HOURS.map((option) => (
            <option key={option.hours} value={option.hours}>
              link works {option.label}
            </option>
          ))}
        </select>
        <button
          type="button"
          className="button small"
          disabled={!user.active && !status?.pendingApproval}
          title={user.active ? 'A single-use link to set a password' : 'Enable the user first'}
          onClick={makeInvite}
        >
          Invite link
        </button>
        <button type="button" className="button small" onClick={() => setLinking((v) => !v)}>
          {status?.githubId !== null && status?.githubId !== undefined ? 'GitHub account…' : 'Link GitHub account'}
        </button>
        {status?.locked ? (
          <button
            type="button"
            className="button small"
            onClick={() => void act(() => stores.signin.getState().unlock(hostId, user.id), hostId)}
          >
            Unlock sign-in
          </button>
        ) : null}
      </div>
      {invite ? <InviteShown invite={invite} username={user.username} onDone={() => setInvite(null)} /> : null}
      {linking ? (
        <GithubLink hostId={hostId} user={user} linkedId={status?.githubId ?? null} onDone={() => setLinking(false)} />
      ) : null}
      <div className="section-title">
        <h5>Sessions{sessions.length ? ` (${sessions.length})` : ''}</h5>
        {sessions.length > 0 ? (
          <button
            type="button"
            className="button small danger-outline"
            onClick={() =>
              confirmDanger(
                stores,
                `Sign ${user.username} out everywhere?`,
                `Every session of ${user.username} ends at once, and their open terminals in the portal close. They can sign in again.`,
                'Revoke all',
                () => stores.signin.getState().revokeAllSessions(hostId, user.id),
              )
            }
          >
            Revoke all
          </button>
        ) : null}
      </div>
      {entry && !entry.error && sessions.length === 0 ? <p className="empty">Not signed in anywhere.</p> : null}
      {sessions.length > 0 ? (
        <table className="data-table sessions-table" aria-label={`Sessions of ${user.username}`}>
          <thead>
            <tr>
              <th>Created</th>
              <th>Last seen</th>
              <th>Address</th>
              <th>Browser</th>
              <th>Ends</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {sessions.map((session) => (
              <tr key={session.id}>
                <td>{formatDateTime(session.createdAt)}</td>
                <td title={formatDateTime(session.lastSeenAt)}>{formatRelative(session.lastSeenAt)}</td>
                <td>{session.ipAddress ?? '—'}</td>
                <td title={session.userAgent ?? undefined}>{browserLabel(session.userAgent)}</td>
                <td title={formatDateTime(session.expiresAt)}>{formatRelative(session.expiresAt)}</td>
                <td className="row-actions">
                  <button
                    type="button"
                    className="button small danger-outline"
                    onClick={() =>
                      void act(() => stores.signin.getState().revokeSession(hostId, user.id, session.id), hostId)
                    }
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

/** The invite link, this once: the agent keeps only its hash, and the panel keeps nothing. */
export function InviteShown({
  invite,
  username,
  onDone,
}: {
  invite: CreatedInvite;
  username: string;
  onDone: () => void;
}) {
  return (
    <div className="share-created" role="region" aria-label="Invite link">
      <p>
        <strong>Send this link to {username} now: it is shown only this once.</strong> It works once, until{' '}
        {formatDateTime(invite.invite.expiresAt)}, to set their password.
      </p>
      <div className="secret-row">
        <code className="secret" data-testid="invite-link">
          {invite.link}
        </code>
      </div>
      <div className="form-row">
        <CopyButton text={invite.link} label="Copy invite link" className="button small primary" />
        <button type="button" className="button small" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

function GithubLink({
  hostId,
  user,
  linkedId,
  onDone,
}: {
  hostId: string;
  user: User;
  linkedId: number | null;
  onDone: () => void;
}) {
  const stores = useStores();
  const [text, setText] = useState(linkedId === null ? '' : String(linkedId));
  const [problem, setProblem] = useState<string | null>(null);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const id = githubUserId(text);
    if (typeof id === 'string') {
      setProblem(id);
      return;
    }
    try {
      await stores.signin.getState().linkGithub(hostId, user.id, id);
      stores.ui.getState().notify(`${user.username} can now sign in with GitHub account ${id}.`);
      onDone();
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  const unlink = async (): Promise<void> => {
    try {
      await stores.signin.getState().unlinkGithub(hostId, user.id);
      onDone();
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <form className="form inset" onSubmit={(event) => void submit(event)} noValidate>
      <Field
        label="GitHub user id"
        hint={
          <>
            The number, not the login or email: a login can be renamed and taken by someone else, and an email can be
            added to another account, but the id never changes hands. Find it at{' '}
            <code>https://api.github.com/users/&lt;login&gt;</code> (the “id” field).
          </>
        }
        error={problem ?? undefined}
      >
        <input value={text} onChange={(e) => setText(e.target.value)} inputMode="numeric" placeholder="583231" />
      </Field>
      <div className="form-row">
        <button type="submit" className="button small primary">
          Link
        </button>
        {linkedId !== null ? (
          <button type="button" className="button small danger-outline" onClick={() => void unlink()}>
            Unlink
          </button>
        ) : null}
        <button type="button" className="button small" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
