import { useEffect, useState } from 'react';
import type { ApiKey, User } from '../../../../shared/ipc/contract';
import { formatDateTime, formatRelative } from '../../lib/format';
import { useGateway, useHosts, useSignIn, useStores, useUsers } from '../../stores';
import { endUserGatewayUrl } from '../../lib/gateway-url';
import { keysKey, USERS_PAGE_SIZE } from '../../stores/users';
import { confirmDanger, useAction } from '../app/actions';
import { CreateKeyDialog, KeyLimitsDialog, KeySecretDialog, RotateKeyDialog, UserDialog } from './UserDialogs';
import { QuotaEditor } from './QuotaEditor';
import { RefusedRequests } from '../gateway/RefusedRequests';
import { UserSignIn } from '../signin/UserSignIn';
import type { CreatedKey } from '../../../../shared/ipc/contract';

export type UsersDialog =
  | { kind: 'create-user' }
  | { kind: 'edit-user'; user: User }
  | { kind: 'create-key'; user: User }
  | { kind: 'secret'; user: User; created: CreatedKey; rotatedFrom?: ApiKey }
  | { kind: 'rotate'; user: User; key: ApiKey }
  | { kind: 'limits'; user: User; key: ApiKey };

const SEARCH_DELAY_MS = 200;

const KEY_STATE_LABEL: Record<ApiKey['state'], string> = {
  active: 'active',
  rotating: 'rotating',
  expired: 'expired',
  revoked: 'revoked',
};

function userState(user: User): { label: string; tone: 'ok' | 'off' | 'danger' } {
  if (user.deleted) return { label: 'deleted', tone: 'danger' };
  if (!user.active) return { label: 'disabled', tone: 'off' };
  return { label: 'active', tone: 'ok' };
}

/** Users of a host, their keys and quotas: what the gateway lets in, and how much. */
export default function UsersView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const hostUsers = useUsers((s) => s.byHost[hostId]);
  const [search, setSearch] = useState(hostUsers?.search ?? '');
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [dialog, setDialog] = useState<UsersDialog | null>(null);
  const users = hostUsers?.users ?? [];
  // Users who signed up wait for approval: a badge in the list (Approve is in their details and in Sign-in).
  const pending = useSignIn((s) => s.byHost[hostId]?.pending);
  const pendingIds = new Set((pending ?? []).map((u) => u.id));
  const selected = users.find((u) => u.id === selectedId) ?? users[0] ?? null;
  // Switching users with unsaved quota edits asks first (in the quota editor) instead of dropping them.
  const [quotaDirty, setQuotaDirty] = useState(false);
  const [leavingTo, setLeavingTo] = useState<string | null>(null);
  const selectUser = (id: string): void => {
    if (id === selected?.id) setLeavingTo(null);
    else if (quotaDirty) setLeavingTo(id);
    else setSelectedId(id);
  };
  const leave = (): void => {
    setQuotaDirty(false);
    if (leavingTo !== null) setSelectedId(leavingTo);
    setLeavingTo(null);
  };

  useEffect(() => {
    const timer = setTimeout(() => void stores.users.getState().load(hostId, { search }), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [stores, hostId, search]);
  useEffect(() => {
    // The secret dialog shows the gateway URL to paste: have it ready.
    void stores.gateway.getState().refresh(hostId);
    void stores.signin.getState().load(hostId);
  }, [stores, hostId]);

  const offset = hostUsers?.offset ?? 0;
  const total = hostUsers?.total ?? 0;
  const page = (next: number): void => void stores.users.getState().load(hostId, { offset: next });

  return (
    <main className="workspace admin-view" aria-label="Users">
      <header className="view-header">
        <h2>Users</h2>
        <input
          type="search"
          className="search-input"
          placeholder="Search name or email"
          aria-label="Search users"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        <label className="checkbox inline">
          <input
            type="checkbox"
            checked={hostUsers?.includeDeleted ?? false}
            onChange={(e) => void stores.users.getState().load(hostId, { includeDeleted: e.target.checked, offset: 0 })}
          />
          Show deleted
        </label>
        <span className="spacer" />
        <button type="button" className="button primary" onClick={() => setDialog({ kind: 'create-user' })}>
          + User
        </button>
      </header>
      {hostUsers?.error ? (
        <div className="banner error" role="alert">
          {hostUsers.error.message}{' '}
          <button type="button" className="link-button" onClick={() => void stores.users.getState().load(hostId)}>
            Try again
          </button>
        </div>
      ) : null}
      <div className="split">
        <section className="list-pane" aria-label="User list">
          {users.length === 0 && hostUsers?.loadedAt && !hostUsers.loading ? (
            hostUsers.search ? (
              <p className="empty padded">No user matches “{hostUsers.search}”.</p>
            ) : (
              <div className="empty-block">
                <p>No users yet.</p>
                <p>
                  Create one with “+ User”, then give them an API key: they call Claude through this host’s gateway with
                  it.
                </p>
              </div>
            )
          ) : null}
          <ul className="user-list">
            {users.map((user) => {
              const state = userState(user);
              return (
                <li key={user.id}>
                  <button
                    type="button"
                    className={`user-row ${selected?.id === user.id ? 'active' : ''}`}
                    aria-current={selected?.id === user.id ? 'true' : undefined}
                    onClick={() => selectUser(user.id)}
                  >
                    <span className={`state-dot user-${state.tone}`} aria-hidden="true" />
                    <span className="user-names">
                      <span className="user-name">{user.username}</span>
                      <span className="user-sub">{user.displayName ?? user.email ?? user.role}</span>
                    </span>
                    <span className="user-meta">
                      {pendingIds.has(user.id) ? <span className="chip chip-busy">pending</span> : null}{' '}
                      {state.label !== 'active'
                        ? state.label
                        : `${user.activeKeys} key${user.activeKeys === 1 ? '' : 's'}`}
                    </span>
                  </button>
                </li>
              );
            })}
          </ul>
          {total > USERS_PAGE_SIZE ? (
            <div className="pager">
              <button
                type="button"
                className="button small"
                disabled={offset === 0}
                onClick={() => page(Math.max(0, offset - USERS_PAGE_SIZE))}
              >
                ‹ Previous
              </button>
              <span>
                {offset + 1}–{Math.min(total, offset + USERS_PAGE_SIZE)} of {total}
              </span>
              <button
                type="button"
                className="button small"
                disabled={offset + USERS_PAGE_SIZE >= total}
                onClick={() => page(offset + USERS_PAGE_SIZE)}
              >
                Next ›
              </button>
            </div>
          ) : null}
        </section>
        <section className="detail-pane" aria-label="User details">
          {selected ? (
            <UserDetail
              key={selected.id}
              hostId={hostId}
              user={selected}
              onDialog={setDialog}
              quotaGuard={{ onDirtyChange: setQuotaDirty, leaving: leavingTo !== null, onLeave: leave }}
            />
          ) : users.length > 0 ? (
            <p className="empty padded">Pick a user to see their keys and quotas.</p>
          ) : null}
        </section>
      </div>
      <Dialogs hostId={hostId} dialog={dialog} setDialog={setDialog} onCreated={selectUser} />
    </main>
  );
}

function Dialogs({
  hostId,
  dialog,
  setDialog,
  onCreated,
}: {
  hostId: string;
  dialog: UsersDialog | null;
  setDialog: (dialog: UsersDialog | null) => void;
  onCreated: (userId: string) => void;
}) {
  const gatewayStatus = useGateway((s) => s.byHost[hostId]?.status);
  const gatewayHost = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const gatewayUrl = endUserGatewayUrl(gatewayStatus, gatewayHost);
  const defaults = useGateway((s) => s.byHost[hostId]?.status?.defaultRateLimit ?? null);
  const close = (): void => setDialog(null);
  if (!dialog) return null;
  switch (dialog.kind) {
    case 'create-user':
      return (
        <UserDialog
          hostId={hostId}
          onClose={close}
          onSaved={(user) => {
            onCreated(user.id);
            close();
          }}
        />
      );
    case 'edit-user':
      return <UserDialog hostId={hostId} user={dialog.user} onClose={close} onSaved={close} />;
    case 'create-key':
      return (
        <CreateKeyDialog
          hostId={hostId}
          user={dialog.user}
          defaults={defaults}
          onClose={close}
          onCreated={(created) => setDialog({ kind: 'secret', user: dialog.user, created })}
        />
      );
    case 'secret':
      return (
        <KeySecretDialog
          user={dialog.user}
          created={dialog.created}
          rotatedFrom={dialog.rotatedFrom}
          gatewayUrl={gatewayUrl}
          onClose={close}
        />
      );
    case 'rotate':
      return (
        <RotateKeyDialog
          hostId={hostId}
          user={dialog.user}
          apiKey={dialog.key}
          onClose={close}
          onRotated={(created) => setDialog({ kind: 'secret', user: dialog.user, created, rotatedFrom: dialog.key })}
        />
      );
    case 'limits':
      return (
        <KeyLimitsDialog hostId={hostId} user={dialog.user} apiKey={dialog.key} defaults={defaults} onClose={close} />
      );
  }
}

function UserDetail({
  hostId,
  user,
  onDialog,
  quotaGuard,
}: {
  hostId: string;
  user: User;
  onDialog: (dialog: UsersDialog) => void;
  quotaGuard: { onDirtyChange: (dirty: boolean) => void; leaving: boolean; onLeave: () => void };
}) {
  const stores = useStores();
  const act = useAction();
  const keys = useUsers((s) => s.keys[keysKey(hostId, user.id)]);
  const state = userState(user);
  useEffect(() => {
    void stores.users.getState().loadKeys(hostId, user.id);
  }, [stores, hostId, user.id]);

  const setActive = (active: boolean): void => {
    if (active) {
      void act(() => stores.users.getState().update(hostId, user.id, { active: true }), hostId);
      return;
    }
    confirmDanger(
      stores,
      `Disable ${user.username}?`,
      `Every key of ${user.username} stops working at once; their usage history stays. You can enable them again later.`,
      'Disable user',
      () => stores.users.getState().update(hostId, user.id, { active: false }),
    );
  };

  const visibleKeys = (keys?.items ?? []).slice().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return (
    <div className="detail">
      <header className="detail-header">
        <div>
          <h3>
            {user.displayName ?? user.username} <span className={`chip chip-${state.tone}`}>{state.label}</span>
          </h3>
          <p className="muted">
            {user.username}
            {user.email ? ` · ${user.email}` : ''} · {user.role} · created {formatDateTime(user.createdAt)}
          </p>
        </div>
        {user.deleted ? null : (
          <div className="detail-actions">
            <button type="button" className="button small" onClick={() => onDialog({ kind: 'edit-user', user })}>
              Edit
            </button>
            <button type="button" className="button small" onClick={() => setActive(!user.active)}>
              {user.active ? 'Disable' : 'Enable'}
            </button>
            <button
              type="button"
              className="button small danger-outline"
              onClick={() =>
                confirmDanger(
                  stores,
                  `Delete ${user.username}?`,
                  `Their keys are revoked at once. Their usage history stays, attributed to ${user.username} (deleted). This cannot be undone.`,
                  'Delete user',
                  () => stores.users.getState().remove(hostId, user.id),
                )
              }
            >
              Delete
            </button>
          </div>
        )}
      </header>

      <section className="detail-section" aria-label="API keys">
        <div className="section-title">
          <h4>API keys</h4>
          {user.deleted ? null : (
            <button
              type="button"
              className="button small primary"
              disabled={!user.active}
              title={user.active ? 'Create a key' : 'Enable the user first'}
              onClick={() => onDialog({ kind: 'create-key', user })}
            >
              + Key
            </button>
          )}
        </div>
        {keys?.error ? (
          <p className="form-error" role="alert">
            {keys.error.message}
          </p>
        ) : null}
        {keys && visibleKeys.length === 0 && !keys.error ? (
          <p className="empty">
            No keys yet. Create one with “+ Key”: it is shown once, with the two lines to paste into a shell for Claude
            Code.
          </p>
        ) : null}
        {visibleKeys.length > 0 ? (
          <table className="data-table keys-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Scopes</th>
                <th>State</th>
                <th>Last used</th>
                <th>Expires</th>
                <th aria-label="Actions" />
              </tr>
            </thead>
            <tbody>
              {visibleKeys.map((key) => {
                const live = key.state === 'active' || key.state === 'rotating';
                return (
                  <tr key={key.id} className={live ? '' : 'dimmed'}>
                    <td>{key.name}</td>
                    <td>
                      <code>{key.prefix}…</code>
                    </td>
                    <td>{key.scopes.join(', ')}</td>
                    <td>
                      <span
                        className={`chip chip-${key.state === 'active' ? 'ok' : key.state === 'rotating' ? 'busy' : 'off'}`}
                      >
                        {KEY_STATE_LABEL[key.state]}
                      </span>
                    </td>
                    <td title={key.lastUsedAt ? formatDateTime(key.lastUsedAt) : undefined}>
                      {formatRelative(key.lastUsedAt)}
                    </td>
                    <td title={key.expiresAt ? formatDateTime(key.expiresAt) : undefined}>
                      {key.expiresAt ? formatRelative(key.expiresAt) : 'never'}
                    </td>
                    <td className="row-actions">
                      {live ? (
                        <>
                          <button
                            type="button"
                            className="button small"
                            onClick={() => onDialog({ kind: 'limits', user, key })}
                          >
                            Limits
                          </button>
                          {key.state === 'active' ? (
                            <button
                              type="button"
                              className="button small"
                              onClick={() => onDialog({ kind: 'rotate', user, key })}
                            >
                              Rotate
                            </button>
                          ) : null}
                          <button
                            type="button"
                            className="button small danger-outline"
                            onClick={() =>
                              confirmDanger(
                                stores,
                                `Revoke ${key.name}?`,
                                `Requests with ${key.prefix}… are refused within a second. This cannot be undone.`,
                                'Revoke key',
                                () => stores.users.getState().revokeKey(hostId, user.id, key.id),
                              )
                            }
                          >
                            Revoke
                          </button>
                        </>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
      </section>

      {user.deleted ? null : <UserSignIn hostId={hostId} user={user} />}

      {user.deleted ? null : (
        <section className="detail-section" aria-label={`Quotas of ${user.username}`}>
          <div className="section-title">
            <h4>Quotas of {user.username}</h4>
            <span className="muted">All their keys together. Empty fields mean no limit.</span>
          </div>
          <QuotaEditor owner={{ hostId, subject: 'user', userId: user.id }} {...quotaGuard} />
        </section>
      )}

      <RefusedRequests
        hostId={hostId}
        userId={user.id}
        keys={visibleKeys.map((key) => ({ id: key.id, name: key.name, prefix: key.prefix }))}
        label={`Refused requests of ${user.username}`}
      />
    </div>
  );
}
