import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import type { AuthSettings, KeyScope } from '../../../../shared/ipc/contract';
import { CopyButton } from '../../components/CopyButton';
import { Field } from '../../components/Dialog';
import { formatDateTime } from '../../lib/format';
import { endUserGatewayUrl } from '../../lib/gateway-url';
import { useGateway, useHosts, useSignIn, useStores } from '../../stores';
import { useAction } from '../app/actions';
import { githubClientIdProblem, githubSecretProblem, isLoopbackUrl, keyLimit, sessionExpiry } from './signin-form';

/** One empty list for selectors: a new [] on every read would make React render without end. */
const NONE: never[] = [];

type Note = { error: boolean; text: string } | null;

function NoteLine({ note }: { note: Note }) {
  if (!note) return null;
  return (
    <span className={note.error ? 'form-error' : 'muted'} role={note.error ? 'alert' : 'status'}>
      {note.text}
    </span>
  );
}

/**
 * Where the agent's own address shows a loopback URL for a host reached over SSH, end users use the host's address
 * instead (as for the gateway).
 */
function usePublicAddress(hostId: string, url: string | null): string | null {
  const status = useGateway((s) => s.byHost[hostId]?.status);
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  if (!url) return null;
  if (!status?.url) return url;
  const gateway = new URL(status.url).origin;
  if (!url.startsWith(gateway)) return url;
  const outside = endUserGatewayUrl(status, host);
  return outside ? `${outside}${url.slice(gateway.length)}` : url;
}

/** A host's end-user sign-in: the portal's address, sign-up and approvals, sessions, portal keys, GitHub. */
export default function SignInView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const entry = useSignIn((s) => s.byHost[hostId]);
  useEffect(() => {
    void stores.signin.getState().load(hostId);
    void stores.gateway.getState().refresh(hostId);
  }, [stores, hostId]);
  const settings = entry?.settings;
  return (
    <main className="workspace admin-view" aria-label="Sign-in">
      <header className="view-header">
        <h2>Sign-in</h2>
        <span className="muted">How end users sign in to this host’s portal and what they may do there.</span>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => void stores.signin.getState().load(hostId)}>
          Refresh
        </button>
      </header>
      {entry?.error ? (
        <div className="banner error" role="alert">
          {entry.error.message}
        </div>
      ) : null}
      {!settings ? (
        entry?.error ? null : (
          <p className="empty padded">Loading…</p>
        )
      ) : (
        <div className="cards">
          <PortalCard hostId={hostId} settings={settings} />
          <SignUpCard hostId={hostId} settings={settings} />
          <SessionsCard
            key={`s${settings.sessionIdleMinutes}-${settings.sessionAbsoluteHours}`}
            hostId={hostId}
            settings={settings}
          />
          <PortalKeysCard
            key={`k${settings.portalKeyLimit}-${settings.portalKeyScopes.join()}`}
            hostId={hostId}
            settings={settings}
          />
          <GithubCard hostId={hostId} settings={settings} />
        </div>
      )}
    </main>
  );
}

function Card({ label, children }: { label: string; children: ReactNode }) {
  return (
    <section className="card" aria-label={label}>
      <h3>{label}</h3>
      {children}
    </section>
  );
}

function PortalCard({ hostId, settings }: { hostId: string; settings: AuthSettings }) {
  const url = usePublicAddress(hostId, settings.publicUrl);
  return (
    <Card label="Portal address">
      {url ? (
        <>
          <p>End users sign in, open their slots, make keys and see their usage at:</p>
          <div className="secret-row">
            <code className="secret" data-testid="portal-url">
              {url}
            </code>
          </div>
          <div className="form-row">
            <a className="button small" href={url} target="_blank" rel="noopener noreferrer">
              Open
            </a>
            <CopyButton text={url} />
          </div>
          {isLoopbackUrl(url) ? (
            <p className="muted">
              Only this machine can open it. For others, set <code>portal.publicUrl</code> in the agent’s config (the
              https address in front of the gateway) and restart the agent.
            </p>
          ) : url.startsWith('http:') ? (
            <p className="warning">Plain HTTP: put TLS in front of it before it faces the internet.</p>
          ) : null}
        </>
      ) : (
        <p className="form-error">
          The portal is off on this host: it runs on the gateway’s listener. Turn the gateway on in the agent’s settings
          (gateway.enabled) and restart it.
        </p>
      )}
    </Card>
  );
}

function SignUpCard({ hostId, settings }: { hostId: string; settings: AuthSettings }) {
  const stores = useStores();
  const act = useAction();
  const pending = useSignIn((s) => s.byHost[hostId]?.pending) ?? NONE;
  const set = (on: boolean): void => {
    if (!on) {
      void act(() => stores.signin.getState().update(hostId, { signUpEnabled: false }), hostId);
      return;
    }
    stores.ui.getState().open({
      kind: 'confirm',
      title: 'Let people sign up?',
      message:
        'Anyone who can open the portal can then ask for an account. New accounts wait, disabled, until you approve them here.',
      confirm: 'Turn sign-up on',
      run: async () => {
        await stores.signin.getState().update(hostId, { signUpEnabled: true });
      },
    });
  };
  return (
    <Card label="Sign-up">
      <p className="muted">Off: only users you invite (Users → a user → Invite link) or link to GitHub can sign in.</p>
      <label className="switch">
        <input type="checkbox" role="switch" checked={settings.signUpEnabled} onChange={(e) => set(e.target.checked)} />
        Sign-up {settings.signUpEnabled ? 'on: new accounts wait for approval' : 'off'}
      </label>
      <h4>
        Waiting for approval <span className="chip chip-busy">{pending.length}</span>
      </h4>
      {pending.length === 0 ? (
        <p className="empty">Nobody is waiting.</p>
      ) : (
        <ul className="pending-list" aria-label="Users waiting for approval">
          {pending.map((user) => (
            <li key={user.id} className="form-row">
              <span>
                <strong>{user.username}</strong>
                {user.email ? <span className="muted"> · {user.email}</span> : null}
                <span className="muted"> · asked {formatDateTime(user.createdAt)}</span>
              </span>
              <span className="spacer" />
              <button
                type="button"
                className="button small primary"
                onClick={() =>
                  void act(async () => {
                    await stores.signin.getState().approve(hostId, user.id);
                    stores.ui.getState().notify(`${user.username} approved: they can sign in now.`);
                  }, hostId)
                }
              >
                Approve
              </button>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

function SessionsCard({ hostId, settings }: { hostId: string; settings: AuthSettings }) {
  const stores = useStores();
  const [idle, setIdle] = useState(String(settings.sessionIdleMinutes));
  const [absolute, setAbsolute] = useState(String(settings.sessionAbsoluteHours));
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [note, setNote] = useState<Note>(null);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const checked = sessionExpiry(idle, absolute);
    if ('problems' in checked) {
      setProblems(checked.problems);
      return;
    }
    setProblems({});
    try {
      await stores.signin.getState().update(hostId, checked.value);
      setNote({ error: false, text: 'Saved: sessions follow these limits from their next request.' });
    } catch (err) {
      setNote({ error: true, text: (err as Error).message });
    }
  };
  return (
    <Card label="Sessions">
      <p className="muted">
        A session ends after this long without a request, and in any case this long after sign-in. Each user’s sessions,
        with Revoke, are under Users.
      </p>
      <form className="form" onSubmit={(event) => void submit(event)} noValidate>
        <div className="form-grid two">
          <Field label="Idle expiry (minutes)" error={problems.idle}>
            <input value={idle} onChange={(e) => setIdle(e.target.value)} inputMode="numeric" />
          </Field>
          <Field label="Absolute expiry (hours)" error={problems.absolute}>
            <input value={absolute} onChange={(e) => setAbsolute(e.target.value)} inputMode="numeric" />
          </Field>
        </div>
        <div className="form-row">
          <button type="submit" className="button small primary">
            Save expiry
          </button>
          <NoteLine note={note} />
        </div>
      </form>
    </Card>
  );
}

function PortalKeysCard({ hostId, settings }: { hostId: string; settings: AuthSettings }) {
  const stores = useStores();
  const act = useAction();
  const [limit, setLimit] = useState(String(settings.portalKeyLimit));
  const [scopes, setScopes] = useState<KeyScope[]>(settings.portalKeyScopes);
  const [problem, setProblem] = useState<string | null>(null);
  const [note, setNote] = useState<Note>(null);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const portalKeyLimit = keyLimit(limit);
    if (typeof portalKeyLimit === 'string') {
      setProblem(portalKeyLimit);
      return;
    }
    setProblem(null);
    try {
      await stores.signin.getState().update(hostId, { portalKeyLimit, portalKeyScopes: scopes });
      setNote({ error: false, text: 'Saved.' });
    } catch (err) {
      setNote({ error: true, text: (err as Error).message });
    }
  };
  const toggle = (scope: KeyScope, on: boolean): void =>
    setScopes((current) => (on ? [...current.filter((s) => s !== scope), scope] : current.filter((s) => s !== scope)));
  return (
    <Card label="End users’ keys and sharing">
      <form className="form" onSubmit={(event) => void submit(event)} noValidate>
        <Field label="Keys a user may make" hint="In the portal, for themselves; 0: none." error={problem ?? undefined}>
          <input value={limit} onChange={(e) => setLimit(e.target.value)} inputMode="numeric" />
        </Field>
        <fieldset className="checkbox-row" aria-label="Scopes their keys may have">
          <span className="field-label">Scopes their keys may have</span>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={scopes.includes('gateway')}
              onChange={(e) => toggle('gateway', e.target.checked)}
            />
            gateway (call Claude)
          </label>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={scopes.includes('self')}
              onChange={(e) => toggle('self', e.target.checked)}
            />
            self (read their own usage)
          </label>
        </fieldset>
        <div className="form-row">
          <button type="submit" className="button small primary">
            Save key limits
          </button>
          <NoteLine note={note} />
        </div>
      </form>
      <label className="switch">
        <input
          type="checkbox"
          role="switch"
          checked={settings.ownersMayShare}
          onChange={(e) =>
            void act(() => stores.signin.getState().update(hostId, { ownersMayShare: e.target.checked }), hostId)
          }
        />
        Slot owners may make share links of their slots in the portal
      </label>
    </Card>
  );
}

function GithubCard({ hostId, settings }: { hostId: string; settings: AuthSettings }) {
  const stores = useStores();
  const { github } = settings;
  const callbackUrl = usePublicAddress(hostId, github.callbackUrl);
  const [clientId, setClientId] = useState(github.clientId ?? '');
  const [secret, setSecret] = useState('');
  const [enabled, setEnabled] = useState(github.enabled || !github.clientId);
  const [problems, setProblems] = useState<{ clientId?: string; secret?: string }>({});
  const [note, setNote] = useState<Note>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const next: { clientId?: string; secret?: string } = {};
    const idProblem = githubClientIdProblem(clientId);
    if (idProblem) next.clientId = idProblem;
    if (secret.trim()) {
      const secretProblem = githubSecretProblem(secret);
      if (secretProblem) next.secret = secretProblem;
    } else if (!github.secretConfigured && enabled) next.secret = 'paste the client secret (needed once)';
    setProblems(next);
    if (Object.keys(next).length > 0) return;
    setBusy(true);
    try {
      await stores.signin.getState().setGithub(hostId, {
        clientId: clientId.trim(),
        ...(secret.trim() ? { clientSecret: secret.trim() } : {}),
        enabled,
      });
      setSecret('');
      setNote({ error: false, text: 'Saved. The secret is kept encrypted on the host and never shown again.' });
    } catch (err) {
      setNote({ error: true, text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };
  const remove = async (): Promise<void> => {
    try {
      await stores.signin.getState().setGithub(hostId, { clientId: null, clientSecret: null, enabled: false });
      setClientId('');
      setNote({ error: false, text: 'GitHub sign-in removed.' });
    } catch (err) {
      setNote({ error: true, text: (err as Error).message });
    }
  };
  return (
    <Card label="GitHub sign-in">
      <p className="muted">
        Users you link to a GitHub account (Users → a user → Link GitHub account) can sign in with it. Make an OAuth app
        in GitHub (Settings → Developer settings → OAuth Apps) with this Authorization callback URL:
      </p>
      <div className="secret-row">
        <code className="secret" data-testid="github-callback-url">
          {callbackUrl}
        </code>
        {callbackUrl ? <CopyButton text={callbackUrl} label="Copy callback URL" /> : null}
      </div>
      <p>
        {github.enabled ? <span className="chip chip-ok">on</span> : <span className="chip chip-off">off</span>}{' '}
        {github.secretConfigured ? <span className="chip chip-ok">secret configured</span> : null}
      </p>
      <form className="form" onSubmit={(event) => void submit(event)} noValidate>
        <Field label="Client ID" error={problems.clientId}>
          <input
            value={clientId}
            onChange={(e) => setClientId(e.target.value)}
            spellCheck={false}
            autoComplete="off"
            placeholder="Ov23li…"
          />
        </Field>
        <Field
          label="Client secret"
          hint={
            github.secretConfigured
              ? 'Configured. Type a new one only to replace it; it is never shown back.'
              : 'Typed once; kept encrypted on the host, never shown back.'
          }
          error={problems.secret}
        >
          <input
            type="password"
            value={secret}
            onChange={(e) => setSecret(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            placeholder={github.secretConfigured ? '•••••••• (configured)' : ''}
          />
        </Field>
        <label className="checkbox">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          Offer “Sign in with GitHub” on the portal
        </label>
        <div className="form-row">
          <button type="submit" className="button small primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save GitHub app'}
          </button>
          {github.clientId ? (
            <button type="button" className="button small danger-outline" onClick={() => void remove()}>
              Remove
            </button>
          ) : null}
          <NoteLine note={note} />
        </div>
      </form>
    </Card>
  );
}
