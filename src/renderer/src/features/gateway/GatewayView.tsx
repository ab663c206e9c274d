import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { UpstreamTestResult } from '../../../../shared/ipc/contract';
import { CopyButton } from '../../components/CopyButton';
import { Field } from '../../components/Dialog';
import { endUserGatewayUrl, gatewayIsLocalOnly } from '../../lib/gateway-url';
import { useGateway, useHosts, useStores, useUsers } from '../../stores';
import { useAction } from '../app/actions';
import { RefusedRequests } from './RefusedRequests';

/** One empty list for hosts whose users are not loaded: a new [] on each read would re-render without end. */
const NO_USERS: never[] = [];

const DAY_MS = 86_400_000;

/** The gateway of a host: where end users point Claude Code, the upstream key, legacy mode and default limits. */
export default function GatewayView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const gateway = useGateway((s) => s.byHost[hostId]);
  useEffect(() => {
    void stores.gateway.getState().refresh(hostId);
  }, [stores, hostId]);
  const status = gateway?.status;
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const url = endUserGatewayUrl(status, host);
  const refusedList = useRef<HTMLDivElement>(null);
  const [refusedToday, setRefusedToday] = useState<number | null>(null);
  /** Bumped by Refresh: the list below loads again too. */
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    const from = new Date(Date.now() - DAY_MS).toISOString();
    stores.gateway
      .getState()
      .refusalCount(hostId, { from })
      .then(
        (count) => current && setRefusedToday(count.refusals),
        // An agent older than the request log has no count: the card shows a dash.
        () => current && setRefusedToday(null),
      );
    return () => {
      current = false;
    };
  }, [stores, hostId, generation]);
  const refresh = (): void => {
    void stores.gateway.getState().refresh(hostId);
    setGeneration((g) => g + 1);
  };

  return (
    <main className="workspace admin-view" aria-label="Gateway">
      <header className="view-header">
        <h2>Gateway</h2>
        <span className="spacer" />
        <button type="button" className="button small" onClick={refresh}>
          Refresh
        </button>
      </header>
      {gateway?.error ? (
        <div className="banner error" role="alert">
          {gateway.error.message}
        </div>
      ) : null}
      {!status ? (
        gateway?.error ? null : (
          <p className="empty padded">Loading…</p>
        )
      ) : (
        <div className="cards">
          <section className="card" aria-label="Address">
            <h3>Address</h3>
            {url ? (
              <>
                <p>End users set ANTHROPIC_BASE_URL to:</p>
                <div className="secret-row">
                  <code className="secret" data-testid="gateway-url">
                    {url}
                  </code>
                  <CopyButton text={url} />
                </div>
                <p className="muted">
                  Listening on {status.listen?.host}:{status.listen?.port}
                  {gatewayIsLocalOnly(status)
                    ? host?.kind === 'ssh'
                      ? ' (this host only: its slots reach it; set gateway.host to 0.0.0.0 for others)'
                      : ' (this machine only)'
                    : url.startsWith('http:')
                      ? ' (plain HTTP: put TLS in front of it before it faces the internet)'
                      : ''}{' '}
                  · {status.inFlight} request
                  {status.inFlight === 1 ? '' : 's'} in flight
                </p>
              </>
            ) : (
              <p className="form-error">
                The gateway is off on this host. Turn it on in the agent’s settings (gateway.enabled) and restart it.
              </p>
            )}
          </section>
          <UpstreamCard hostId={hostId} baseUrl={status.upstream.baseUrl} configured={status.upstream.keyConfigured} />
          <LegacyCard hostId={hostId} enabled={status.legacyMode.enabled} userId={status.legacyMode.userId} />
          <DefaultsCard
            hostId={hostId}
            rpm={status.defaultRateLimit.requestsPerMinute}
            streams={status.defaultRateLimit.concurrentStreams}
          />
          {url ? <ConnectCard url={url} /> : null}
          <section className="card" aria-label="Refused requests, last 24 hours">
            <h3>Refused requests</h3>
            <dl className="totals">
              <div className="total">
                <dt>Last 24 hours</dt>
                <dd data-testid="refused-24h">{refusedToday === null ? '—' : refusedToday.toLocaleString('en-US')}</dd>
              </div>
            </dl>
            <p className="muted">
              Calls the gateway turned away: bad or revoked keys, used-up quotas, rate limits. Each with its reason.
            </p>
            <button
              type="button"
              className="button small"
              onClick={() => refusedList.current?.scrollIntoView({ block: 'start' })}
            >
              See the list
            </button>
          </section>
          {status.unpricedModels?.length ? <UnpricedCard models={status.unpricedModels} /> : null}
        </div>
      )}
      {status ? (
        <div className="detail" ref={refusedList}>
          <RefusedRequests key={generation} hostId={hostId} label="Refused requests" />
        </div>
      ) : null}
    </main>
  );
}

function UpstreamCard({ hostId, baseUrl, configured }: { hostId: string; baseUrl: string; configured: boolean }) {
  const stores = useStores();
  const [editing, setEditing] = useState(false);
  const [apiKey, setApiKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [testing, setTesting] = useState(false);
  const [tested, setTested] = useState<UpstreamTestResult | null>(null);
  const test = async (): Promise<void> => {
    setTesting(true);
    try {
      setTested(await stores.gateway.getState().testUpstream(hostId));
    } catch (err) {
      setTested({
        ok: false,
        baseUrl,
        status: null,
        latencyMs: null,
        problem: null,
        message: (err as Error).message,
        testedAt: new Date().toISOString(),
      });
    } finally {
      setTesting(false);
    }
  };
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await stores.gateway.getState().setUpstreamKey(hostId, apiKey.trim());
      setApiKey('');
      setEditing(false);
      setTested(null);
      stores.ui.getState().notify('Upstream key saved. It is not shown again.');
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-label="Upstream">
      <h3>Upstream</h3>
      <p>
        Requests go on to <code>{baseUrl}</code> with the organisation’s key.
      </p>
      {configured && !editing ? (
        <>
          <div className="form-row">
            <span className="chip chip-ok">key configured</span>
            <button type="button" className="button small" onClick={() => setEditing(true)}>
              Replace key
            </button>
            <button type="button" className="button small" disabled={testing} onClick={() => void test()}>
              {testing ? 'Testing…' : 'Test upstream'}
            </button>
          </div>
          {tested ? (
            <p className={tested.ok ? 'muted' : 'form-error'} role="status" data-testid="upstream-test-result">
              {tested.ok ? <span className="chip chip-ok">ok</span> : null} {tested.message}
            </p>
          ) : null}
        </>
      ) : (
        <form className="form" onSubmit={(event) => void submit(event)}>
          {configured ? null : (
            <p className="warning">No upstream key yet: the gateway refuses every request until one is set.</p>
          )}
          <Field label="Organisation API key" hint="Kept by the agent on the host; never shown again, never logged.">
            <input
              type="password"
              autoComplete="off"
              spellCheck={false}
              value={apiKey}
              onChange={(e) => setApiKey(e.target.value)}
              placeholder="sk-ant-…"
              required
            />
          </Field>
          <div className="form-row">
            <button type="submit" className="button small primary" disabled={busy}>
              {busy ? 'Saving…' : 'Save upstream key'}
            </button>
            {configured ? (
              <button type="button" className="button small" onClick={() => setEditing(false)}>
                Cancel
              </button>
            ) : null}
            {error ? (
              <span className="form-error" role="alert">
                {error}
              </span>
            ) : null}
          </div>
        </form>
      )}
    </section>
  );
}

function LegacyCard({ hostId, enabled, userId }: { hostId: string; enabled: boolean; userId: string | null }) {
  const stores = useStores();
  const act = useAction();
  const users = useUsers((s) => s.byHost[hostId]?.users ?? NO_USERS);
  const [chosen, setChosen] = useState(userId ?? '');
  useEffect(() => {
    void stores.users.getState().load(hostId);
  }, [stores, hostId]);
  const pick = chosen || users.find((u) => u.active && !u.deleted)?.id || '';
  const set = (on: boolean): void => {
    if (!on) {
      void act(
        () => stores.gateway.getState().update(hostId, { legacyMode: { enabled: false, userId: null } }),
        hostId,
      );
      return;
    }
    stores.ui.getState().open({
      kind: 'confirm',
      title: 'Turn legacy mode on?',
      message:
        'Anyone who can reach the gateway can then use it with any key string, and every such request is billed to the chosen user. Use it only while moving a single-user setup over.',
      confirm: 'Turn legacy mode on',
      danger: true,
      run: async () => {
        await stores.gateway.getState().update(hostId, { legacyMode: { enabled: true, userId: pick } });
      },
    });
  };
  const activeUsers = users.filter((u) => u.active && !u.deleted);
  return (
    <section className={`card ${enabled ? 'card-warning' : ''}`} aria-label="Legacy mode">
      <h3>Legacy mode</h3>
      <p>
        For single-user setups moving over: any key string is accepted and attributed to one user. Off, only the keys
        made in Users work.
      </p>
      {enabled ? (
        <p className="warning">On: the gateway accepts any key string. Turn it off once everyone has their own key.</p>
      ) : null}
      <div className="form-row">
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={enabled}
            disabled={!enabled && !pick}
            onChange={(e) => set(e.target.checked)}
          />
          Legacy mode {enabled ? 'on' : 'off'}
        </label>
        <select
          aria-label="Bill legacy requests to"
          value={pick}
          disabled={enabled || activeUsers.length === 0}
          onChange={(e) => setChosen(e.target.value)}
        >
          {activeUsers.length === 0 ? <option value="">Create a user first</option> : null}
          {activeUsers.map((u) => (
            <option key={u.id} value={u.id}>
              bill to {u.username}
            </option>
          ))}
        </select>
      </div>
    </section>
  );
}

function DefaultsCard({ hostId, rpm, streams }: { hostId: string; rpm: number; streams: number }) {
  const stores = useStores();
  const [requests, setRequests] = useState(String(rpm));
  const [concurrent, setConcurrent] = useState(String(streams));
  const [note, setNote] = useState<{ error: boolean; text: string } | null>(null);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const requestsPerMinute = Number(requests);
    const concurrentStreams = Number(concurrent);
    if (![requestsPerMinute, concurrentStreams].every((n) => Number.isInteger(n) && n > 0)) {
      setNote({ error: true, text: 'Both limits are whole numbers above 0.' });
      return;
    }
    try {
      await stores.gateway.getState().update(hostId, { defaultRateLimit: { requestsPerMinute, concurrentStreams } });
      setNote({ error: false, text: 'Saved: keys without their own limits use these from the next request.' });
    } catch (err) {
      setNote({ error: true, text: (err as Error).message });
    }
  };
  return (
    <section className="card" aria-label="Default rate limits">
      <h3>Default rate limits</h3>
      <p className="muted">For every key without limits of its own (set those in Users → a key → Limits).</p>
      <form className="form" onSubmit={(event) => void submit(event)}>
        <div className="form-grid two">
          <Field label="Requests per minute">
            <input value={requests} onChange={(e) => setRequests(e.target.value)} inputMode="numeric" />
          </Field>
          <Field label="Concurrent streams">
            <input value={concurrent} onChange={(e) => setConcurrent(e.target.value)} inputMode="numeric" />
          </Field>
        </div>
        <div className="form-row">
          <button type="submit" className="button small primary">
            Save defaults
          </button>
          {note ? (
            <span className={note.error ? 'form-error' : 'muted'} role={note.error ? 'alert' : 'status'}>
              {note.text}
            </span>
          ) : null}
        </div>
      </form>
    </section>
  );
}

/** Models used without a price: metered at $0, and refused to users and keys with a cost quota. */
function UnpricedCard({ models }: { models: string[] }) {
  return (
    <section className="card" aria-label="Unpriced models">
      <h3>Unpriced models</h3>
      <p className="warning">
        These models were used but have no price: their usage counts at $0, and users or keys with a cost quota are
        refused them. Add each to <code>gateway.prices</code> in the agent’s config (or a default price under{' '}
        <code>&quot;*&quot;</code>) and restart the agent.
      </p>
      <ul>
        {models.map((model) => (
          <li key={model}>
            <code>{model}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** What an end user runs to use Claude Code through this gateway, with their own key in place of the placeholder. */
export function connectSnippet(url: string): { shell: string; statusLine: string; settings: string } {
  const statusLine = `curl -s "$ANTHROPIC_BASE_URL/v1/me/usage?format=line" -H "x-api-key: $ANTHROPIC_API_KEY"`;
  return {
    shell: [
      `export ANTHROPIC_BASE_URL=${url}`,
      `export ANTHROPIC_API_KEY="<the user's key: sk_user_…>"`,
      'claude',
    ].join('\n'),
    statusLine,
    settings: JSON.stringify({ statusLine: { type: 'command', command: statusLine } }, null, 2),
  };
}

function ConnectCard({ url }: { url: string }) {
  const snippet = connectSnippet(url);
  return (
    <section className="card" aria-label="Connect Claude Code">
      <h3>Connect Claude Code</h3>
      <p>Each end user runs this with their own key (Users → a user → + Key), in the shell that starts Claude Code:</p>
      <pre className="snippet" data-testid="connect-snippet">
        {snippet.shell}
      </pre>
      <div className="form-row">
        <CopyButton text={snippet.shell} label="Copy the lines" />
      </div>
      <p>
        Their usage and what is left of their quota, as one line (for Claude Code’s status line, add it to{' '}
        <code>~/.claude/settings.json</code>):
      </p>
      <pre className="snippet" data-testid="status-line-snippet">
        {snippet.settings}
      </pre>
      <div className="form-row">
        <CopyButton text={snippet.settings} label="Copy the setting" />
        <CopyButton text={snippet.statusLine} label="Copy the command" />
      </div>
    </section>
  );
}
