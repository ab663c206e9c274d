import { useEffect, useState, type FormEvent } from 'react';
import type { Host, IdleStatus } from '../../../../shared/ipc/contract';
import { useHosts, useStores } from '../../stores';
import { deployStoreOf, idleSecondsLeft, useDeploy, type HostIdle } from '../../stores/deploy';
import { handleError, useAction } from '../app/actions';
import { formatClock, formatCountdown } from './format';

/** How often the panel asks each connected host for its idle countdown (the countdown ticks here in between). */
export const IDLE_POLL_MS = 15_000;
/** Open consoles of a host warn in its last minutes before the idle stop. */
export const IDLE_WARNING_SECONDS = 5 * 60;

/** This computer's clock, re-read every `intervalMs` (null: not ticking). */
export function useNow(intervalMs: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (intervalMs === null) return;
    // Started late (a job began running after mount): catch up at once, not a tick later.
    const first = setTimeout(() => setNow(Date.now()), 0);
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => {
      clearTimeout(first);
      clearInterval(timer);
    };
  }, [intervalMs]);
  return now;
}

/** Asks every connected SSH host for its idle countdown now and every 15 s while the page is visible. */
export function useIdlePolling(): void {
  const stores = useStores();
  const connected = useHosts((s) =>
    s.hosts
      .filter((h) => h.kind === 'ssh' && h.status.state === 'connected')
      .map((h) => h.id)
      .join(','),
  );
  useEffect(() => {
    const ids = connected ? connected.split(',') : [];
    if (ids.length === 0) return;
    const deploy = deployStoreOf(stores);
    const tick = (): void => {
      if (document.visibilityState === 'hidden') return;
      for (const id of ids) void deploy.getState().refreshIdle(id);
    };
    tick();
    const timer = setInterval(tick, IDLE_POLL_MS);
    document.addEventListener('visibilitychange', tick);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', tick);
    };
  }, [connected, stores]);
}

/** The idle state in a few words for the sidebar ("stops in 42 min"), or null when the policy is off. */
export function idleSummary(
  idle: HostIdle | undefined,
  at: number,
): { text: string; tone: 'normal' | 'soon' | 'failed'; title: string } | null {
  const status = idle?.status;
  if (!status || !status.policy.enabled) return null;
  const policy = `Stops after ${formatCountdown(status.policy.minutes * 60)} without terminal input, gateway requests or admin changes.`;
  if (status.state === 'stopping') return { text: 'stopping (idle)', tone: 'soon', title: policy };
  if (status.state === 'failed')
    return {
      text: 'idle stop failed',
      tone: 'failed',
      title: `${status.stopCommand} failed${status.lastStop?.exitCode != null ? ` (exit ${status.lastStop.exitCode})` : ''}: ${status.lastStop?.output ?? ''}`,
    };
  const left = idleSecondsLeft(idle, at);
  if (left === null) return null;
  const awake = status.keepAwakeUntil && Date.parse(status.keepAwakeUntil) > Date.parse(status.lastActivityAt);
  return {
    text: `stops in ${formatCountdown(left)}`,
    tone: left <= IDLE_WARNING_SECONDS ? 'soon' : 'normal',
    title: awake ? `${policy} Kept awake until ${new Date(status.keepAwakeUntil!).toLocaleTimeString()}.` : policy,
  };
}

/** The sidebar's countdown chip for a host whose idle policy is on. */
export function IdleCountdown({ hostId }: { hostId: string }) {
  const idle = useDeploy((s) => s.idle[hostId]);
  const counting = idle?.status?.policy.enabled ?? false;
  const now = useNow(counting ? 1000 : null);
  const summary = idleSummary(idle, now);
  if (!summary) return null;
  return (
    <span className={`idle-chip ${summary.tone}`} title={summary.title} data-testid="idle-countdown">
      {summary.text}
    </span>
  );
}

/** The last minutes before the idle stop, over each open console of that host, with the way to postpone it. */
export function IdleConsoleWarning({ hostId }: { hostId: string }) {
  const stores = useStores();
  const act = useAction();
  const idle = useDeploy((s) => s.idle[hostId]);
  const hostName = useHosts((s) => s.hosts.find((h) => h.id === hostId)?.name ?? hostId);
  const now = useNow(idle?.status?.state === 'counting' ? 1000 : null);
  const left = idleSecondsLeft(idle, now);
  if (left === null || left > IDLE_WARNING_SECONDS) return null;
  return (
    <div className="console-banner idle-warning" role="alert">
      <span>
        {hostName} stops in <strong>{formatClock(left)}</strong>: nobody has used it for{' '}
        {formatCountdown(idle!.status!.policy.minutes * 60)} (idle auto-stop). Typing here keeps it running.
      </span>
      <button
        type="button"
        className="button small"
        onClick={() => void act(() => deployStoreOf(stores).getState().keepAwake(hostId, 60), hostId)}
      >
        Keep awake for 1 h
      </button>
    </div>
  );
}

/** "Stopped by idle policy at …", with Start and connect when the host is linked to an EC2 instance. */
export function IdleStoppedNote({ host }: { host: Host }) {
  const stores = useStores();
  const act = useAction();
  const [busy, setBusy] = useState(false);
  if (!host.idleStoppedAt || host.status.state === 'connected') return null;
  const at = new Date(host.idleStoppedAt);
  return (
    <div className="host-note idle-stopped" data-testid="idle-stopped">
      <p>
        Stopped by idle policy at {at.toLocaleTimeString()}
        {at.toDateString() === new Date().toDateString() ? '' : ` on ${at.toLocaleDateString()}`}.
        {host.instance ? '' : ' Start the machine, then connect.'}
      </p>
      {host.instance ? (
        <button
          type="button"
          className="button small primary"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            void act(() => deployStoreOf(stores).getState().startAndConnect(host.id), host.id).finally(() =>
              setBusy(false),
            );
          }}
        >
          {busy ? 'Starting…' : 'Start and connect'}
        </button>
      ) : null}
    </div>
  );
}

function describeIdle(status: IdleStatus, left: number | null): string {
  if (!status.policy.enabled) return 'Off: this host runs until someone stops it.';
  if (status.state === 'stopping') return 'The agent is stopping the machine now.';
  if (status.state === 'failed')
    return `The last stop failed (${status.stopCommand}${status.lastStop?.exitCode != null ? `, exit ${status.lastStop.exitCode}` : ''}); the clock started again.`;
  const last = `Last activity ${new Date(status.lastActivityAt).toLocaleTimeString()} (${status.lastActivity}).`;
  return left === null ? last : `Stops in ${formatCountdown(left)} if nobody uses it. ${last}`;
}

/**
 * On a single-user host the agent runs as the login user, who has no passwordless sudo (else the deploy would have
 * isolated it): the default stop command `sudo -n shutdown` then fails every time. Said when the policy is on.
 */
export function singleUserStopWarning(
  mode: 'isolated' | 'single-user' | null | undefined,
  status: IdleStatus | null,
  enabled: boolean,
  user: string | null | undefined,
): string | null {
  if (mode !== 'single-user' || !enabled || !status || !/^sudo -n shutdown\b/.test(status.stopCommand)) return null;
  return `This host runs the agent in single-user mode: its stop command (${status.stopCommand}) needs passwordless sudo for shutdown${user ? ` for ${user}` : ''}. Without it the stop fails and the machine keeps running. Add a sudoers line for shutdown, or set idle.stopCommand in the agent's config.`;
}

/** The host settings' idle auto-stop section (the policy lives in the agent, so it needs the host connected). */
export function HostIdleSettings({ hostId }: { hostId: string }) {
  const stores = useStores();
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const idle = useDeploy((s) => s.idle[hostId]);
  const connected = host?.status.state === 'connected';
  const status = idle?.status ?? null;
  const [enabled, setEnabled] = useState<boolean | null>(null);
  const [minutes, setMinutes] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const now = useNow(status?.policy.enabled ? 1000 : null);
  const mode = useDeploy((s) => s.byHost[hostId]?.status?.host?.mode ?? null);
  const knowsMode = useDeploy((s) => Boolean(s.byHost[hostId]?.status || s.byHost[hostId]?.loadingStatus));
  useEffect(() => {
    if (connected) void deployStoreOf(stores).getState().refreshIdle(hostId);
  }, [connected, hostId, stores]);
  useEffect(() => {
    // Single-user or isolated (the stop command's needs differ): the host's release status says.
    if (connected && !knowsMode) void deployStoreOf(stores).getState().loadStatus(hostId);
  }, [connected, knowsMode, hostId, stores]);
  if (!host || host.kind !== 'ssh') return null;
  const shownEnabled = enabled ?? status?.policy.enabled ?? false;
  const shownMinutes = minutes ?? String(status?.policy.minutes ?? 60);
  const changed =
    status !== null && (shownEnabled !== status.policy.enabled || Number(shownMinutes) !== status.policy.minutes);
  const save = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const value = Number(shownMinutes);
    if (!Number.isInteger(value) || value < 1 || value > 10080) {
      setError('Enter a whole number of minutes from 1 to 10080 (a week).');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await deployStoreOf(stores).getState().setIdle(hostId, { enabled: shownEnabled, minutes: value });
      setEnabled(null);
      setMinutes(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="host-settings-section idle-settings" aria-label="Idle auto-stop">
      <h3>Idle auto-stop</h3>
      {!connected ? (
        <p className="field-hint">Connect to this host to see or change its idle policy (the agent keeps it).</p>
      ) : idle?.error && !status ? (
        <p className="field-hint">{idle.error.message}</p>
      ) : !status ? (
        <p className="field-hint">Asking the agent…</p>
      ) : (
        <form className="idle-form" onSubmit={(event) => void save(event)}>
          <label className="checkbox inline">
            <input type="checkbox" checked={shownEnabled} onChange={(event) => setEnabled(event.target.checked)} />
            Stop the machine after
          </label>
          <input
            className="idle-minutes"
            aria-label="Idle minutes"
            inputMode="numeric"
            value={shownMinutes}
            disabled={!shownEnabled}
            onChange={(event) => setMinutes(event.target.value)}
          />
          <span>idle minutes</span>
          <span className="spacer" />
          <button type="submit" className="button small primary" disabled={busy || !changed}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </form>
      )}
      {connected && singleUserStopWarning(mode, status, shownEnabled, host.user) ? (
        <p className="warning" role="note" data-testid="idle-sudo-warning">
          {singleUserStopWarning(mode, status, shownEnabled, host.user)}
        </p>
      ) : null}
      {connected && status ? (
        <div className="idle-status">
          <p className="field-hint" data-testid="idle-status">
            {describeIdle(status, idleSecondsLeft(idle, now))} Stop command: <code>{status.stopCommand}</code>
          </p>
          {status.policy.enabled ? (
            <button
              type="button"
              className="button small"
              onClick={() =>
                void deployStoreOf(stores)
                  .getState()
                  .keepAwake(hostId, 60)
                  .catch((err: unknown) => handleError(stores, err, hostId))
              }
            >
              Keep awake for 1 h
            </button>
          ) : null}
        </div>
      ) : null}
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
    </section>
  );
}
