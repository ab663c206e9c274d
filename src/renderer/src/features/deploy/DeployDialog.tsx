import { useEffect, useState } from 'react';
import type { DeployAction, DeployJob, DeployStatus, DeployStep, Host } from '../../../../shared/ipc/contract';
import { compareVersions, MAX_AGENT_CONTRACT } from '../../../../shared/agent-compat';
import { Dialog } from '../../components/Dialog';
import { useHosts, useStores, type AppStores } from '../../stores';
import { deployStoreOf, useDeploy, type HostDeploy } from '../../stores/deploy';
import { handleError } from '../app/actions';
import {
  ACTION_TITLE,
  formatElapsed,
  JOB_STATE_LABEL,
  jobTitle,
  STEP_ICON,
  STEP_STATE_LABEL,
  stepElapsedMs,
} from './format';
import { useIdlePolling, useNow } from './idle';

/**
 * Opens the deploy dialog on a host. `deploy` and `upgrade` start at once (the step list shows them); `rollback` and
 * `uninstall` ask first; without an action it shows the host's agent and its running or last job.
 */
export function openDeployDialog(stores: AppStores, hostId: string, action?: DeployAction): void {
  const deploy = deployStoreOf(stores).getState();
  if (action === 'rollback' || action === 'uninstall') {
    deploy.openDialog(hostId, action);
    return;
  }
  deploy.openDialog(hostId);
  // A job already running there is shown, not started twice.
  if (action && deploy.byHost[hostId]?.job?.state !== 'running') void deploy.run(hostId, action);
}

/** A job that failed on the host's SSH key (a new instance's, or a changed one): the key to review, else null. */
export function hostKeyToReview(
  job: DeployJob | null,
): { fingerprint: string; algorithm: string; pinned?: string } | null {
  const error = job?.state === 'failed' ? job.error : null;
  if (!error || (error.code !== 'HOST_KEY_UNKNOWN' && error.code !== 'HOST_KEY_MISMATCH')) return null;
  const fingerprint = error.details?.fingerprint;
  if (!fingerprint) return null;
  return {
    fingerprint,
    algorithm: error.details?.algorithm ?? 'unknown',
    ...(error.details?.pinnedFingerprint ? { pinned: error.details.pinnedFingerprint } : {}),
  };
}

/** Opens the app's host key dialog for a job that failed on the key; once the key is pinned, the job runs again. */
export function reviewHostKey(stores: AppStores, hostId: string, job: DeployJob): void {
  const key = hostKeyToReview(job);
  if (!key) return;
  stores.ui.getState().open({
    kind: 'trust-key',
    hostId,
    algorithm: key.algorithm,
    fingerprint: key.fingerprint,
    pinnedFingerprint: key.pinned,
    onTrusted: () => void deployStoreOf(stores).getState().retry(hostId),
  });
}

/** The host refused as newer than this Slotdeck speaks (update Slotdeck, or roll the agent back). */
export function agentTooNew(host: Host): boolean {
  const error = host.status.error;
  if (error?.code !== 'AGENT_INCOMPATIBLE') return false;
  return Number(error.details?.contractVersion ?? 0) > MAX_AGENT_CONTRACT;
}

/** What the host has and what this Slotdeck could do with it. */
export function agentActions(host: Host, entry: HostDeploy | undefined) {
  const status = entry?.status ?? null;
  // The connected agent's own word first: the releases read from the host are older after a job ended.
  const current = host.status.agent?.version ?? status?.host?.current ?? null;
  const bundled = status?.bundled.version ?? null;
  const code = host.status.error?.code;
  // Only what the host said counts as "no agent": a host that could not be asked may well have one.
  const noAgent = status?.host?.current === null || code === 'AGENT_NOT_RUNNING' || code === 'AGENT_TOKEN_UNREADABLE';
  return {
    current,
    bundled,
    previous: status?.host?.previous ?? null,
    canDeploy: noAgent && !current,
    canUpgrade:
      current !== null &&
      (host.status.agent?.update === 'available' ||
        (bundled !== null && compareVersions(bundled, current) > 0) ||
        (code === 'AGENT_INCOMPATIBLE' && !agentTooNew(host))),
    canRollback: Boolean(status?.host?.previous),
    // Only a deployed agent (one with releases under its root) can be uninstalled from here.
    canUninstall: Boolean(status?.host?.current || status?.host?.releases.length),
  };
}

function StepRow({ step, now }: { step: DeployStep; now: number }) {
  const elapsed = stepElapsedMs(step, now);
  const percent =
    step.progress && step.progress.total > 0
      ? Math.min(100, Math.round((step.progress.done / step.progress.total) * 100))
      : null;
  return (
    // Steps the host's release command reported (activate.health...) sit under the step that ran it.
    <li
      className={`deploy-step step-${step.state} ${step.id.includes('.') ? 'sub-step' : ''}`}
      data-step={step.id}
      data-state={step.state}
    >
      <span className="deploy-step-icon" role="img" aria-label={STEP_STATE_LABEL[step.state]}>
        {STEP_ICON[step.state]}
      </span>
      <div className="deploy-step-main">
        <div className="deploy-step-line">
          <span className="deploy-step-label">{step.label}</span>
          {elapsed !== null ? <span className="deploy-step-elapsed">{formatElapsed(elapsed)}</span> : null}
        </div>
        {step.detail ? <p className="deploy-step-detail">{step.detail}</p> : null}
        {percent !== null && step.state === 'running' ? (
          <div
            className="deploy-progress"
            role="progressbar"
            aria-label={`${step.label} progress`}
            aria-valuenow={percent}
            aria-valuemin={0}
            aria-valuemax={100}
          >
            <span style={{ width: `${percent}%` }} />
          </div>
        ) : null}
        {step.state === 'failed' && step.output ? (
          <pre className="deploy-output" tabIndex={0} aria-label={`Output of ${step.label}`}>
            {step.output}
          </pre>
        ) : null}
      </div>
    </li>
  );
}

/** A job's steps, each with its state, elapsed time (ticking while it runs), detail and, on failure, its output. */
export function JobSteps({ job }: { job: DeployJob }) {
  const running = job.state === 'running';
  const now = useNow(running ? 1000 : null);
  const tone =
    job.state === 'succeeded'
      ? 'ok'
      : job.state === 'failed'
        ? 'failed'
        : job.state === 'rolled-back'
          ? 'warning'
          : job.state === 'cancelled'
            ? 'muted'
            : 'running';
  const message = job.message ?? job.error?.message ?? null;
  return (
    <div className="deploy-job" data-job-state={job.state}>
      <div className="deploy-job-header">
        <strong>{jobTitle(job)}</strong>
        <span className={`deploy-chip ${tone}`}>{JOB_STATE_LABEL[job.state]}</span>
      </div>
      <ol className="deploy-steps" aria-label="Steps">
        {job.steps.map((step) => (
          <StepRow key={step.id} step={step} now={now} />
        ))}
      </ol>
      {message && !running ? (
        <p className={`deploy-message ${tone}`} role={tone === 'failed' ? 'alert' : 'status'}>
          {message}
        </p>
      ) : null}
    </div>
  );
}

function AgentSummary({ host, status, entry }: { host: Host; status: DeployStatus | null; entry: HostDeploy }) {
  const { current, bundled, previous } = agentActions(host, entry);
  const release = status?.host ?? null;
  return (
    <dl className="deploy-summary">
      <dt>On the host</dt>
      <dd data-testid="agent-version">
        {current
          ? `agent ${current}`
          : entry.loadingStatus && !status
            ? 'checking…'
            : release || host.status.error?.code === 'AGENT_NOT_RUNNING'
              ? 'no agent'
              : 'unknown (connect to the host to read its releases)'}
        {release && !release.agent.running && current ? ' (not running)' : ''}
      </dd>
      {bundled ? (
        <>
          <dt>This Slotdeck bundles</dt>
          <dd>agent {bundled}</dd>
        </>
      ) : null}
      {release && release.releases.length > 0 ? (
        <>
          <dt>Releases kept</dt>
          <dd>
            {release.releases.map((r) => r.version).join(', ')}
            {previous ? ` (Rollback goes to ${previous})` : ''}
          </dd>
          <dt>Mode</dt>
          <dd>
            {release.mode === 'isolated'
              ? 'isolated: each slot runs as an account of its own'
              : 'single-user: slots run as the agent’s account and can reach its files (no sudo on the host)'}
          </dd>
          <dt>At boot</dt>
          <dd>
            {release.boot === 'systemd' ? 'started by systemd' : 'not started by systemd (see the docs for cron)'}
          </dd>
        </>
      ) : null}
      {entry.loadingStatus && !release ? (
        <>
          <dt>Releases</dt>
          <dd className="deploy-muted">reading them on the host…</dd>
        </>
      ) : null}
      {entry.statusError ? (
        <>
          <dt>Host</dt>
          <dd className="deploy-muted">{entry.statusError.message}</dd>
        </>
      ) : null}
    </dl>
  );
}

function RollbackConfirm({ host, entry }: { host: Host; entry: HostDeploy }) {
  const stores = useStores();
  const deploy = deployStoreOf(stores);
  const { current, previous } = agentActions(host, entry);
  const back = (): void => deploy.getState().openDialog(host.id);
  return (
    <Dialog
      title={`Roll back the agent on ${host.name}?`}
      onClose={() => deploy.getState().closeDialog()}
      width={560}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={back} autoFocus>
            Cancel
          </button>
          <button
            type="button"
            className="button primary"
            disabled={!previous}
            onClick={() => {
              back();
              void deploy.getState().run(host.id, 'rollback');
            }}
          >
            {previous ? `Roll back to ${previous}` : 'Roll back'}
          </button>
        </>
      }
    >
      {previous ? (
        <p>
          The agent {current ?? ''} stops and <strong>{previous}</strong> starts again, with the database as it was when{' '}
          {current ?? 'the current release'} was installed if {previous} cannot read the newer one (the job then says
          what was lost). Slots keep running; consoles and the gateway reconnect by themselves.
        </p>
      ) : entry.loadingStatus ? (
        <p>Reading the host’s releases…</p>
      ) : (
        <p>There is no earlier release on {host.name} to go back to.</p>
      )}
    </Dialog>
  );
}

/** The agent's own account in a profile's agent command (`sudo -n -u NAME ...`): isolated mode; null otherwise. */
export function agentAccountOf(agentCommand: string | null | undefined): string | null {
  return agentCommand ? (/sudo\s+-n\s+-u\s+([a-z_][a-z0-9_-]*)\s/.exec(agentCommand)?.[1] ?? null) : null;
}

/** Exactly what an uninstall removes from the host, as the confirmation lists it. */
export function uninstallRemoves(root: string, account: string | null, deleteData: boolean): string[] {
  const removed = [`The agent's files: its releases, database backups and the Node it installed (${root}).`];
  if (!deleteData) return removed;
  removed.push('Every slot, user, API key and all usage records (the agent’s database).');
  if (account) {
    removed.push(
      `Every slot account of ${account} and its home under /home/${account}-slots.`,
      `The sudoers line /etc/sudoers.d/slotdeck-${account} and the helper config /etc/slotdeck/agents/${account}.conf.`,
      'The slot helper (/usr/local/libexec/slotdeck) when no other agent account on the host uses it.',
    );
  }
  return removed;
}

/** Uninstalling is one click; deleting the agent's data too needs the host's name typed. */
export function uninstallConfirmed(deleteData: boolean, typed: string, hostName: string): boolean {
  return !deleteData || typed.trim() === hostName;
}

function UninstallConfirm({ host, entry }: { host: Host; entry: HostDeploy }) {
  const stores = useStores();
  const deploy = deployStoreOf(stores);
  const [deleteData, setDeleteData] = useState(false);
  const [typed, setTyped] = useState('');
  const root = entry.status?.host?.root ?? '~/.slotdeck-agent';
  const confirmed = uninstallConfirmed(deleteData, typed, host.name);
  const back = (): void => deploy.getState().openDialog(host.id);
  return (
    <Dialog
      title={`Uninstall the agent from ${host.name}?`}
      onClose={() => deploy.getState().closeDialog()}
      tone="danger"
      width={580}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={back} autoFocus>
            Cancel
          </button>
          <button
            type="button"
            className="button danger"
            disabled={!confirmed}
            onClick={() => {
              back();
              void deploy.getState().run(host.id, 'uninstall', { deleteData });
            }}
          >
            {deleteData ? 'Uninstall and delete data' : 'Uninstall'}
          </button>
        </>
      }
    >
      <p>What will be lost:</p>
      <ul className="deploy-loss">
        <li>Every slot’s program stops, and with it what runs in its console.</li>
        {uninstallRemoves(root, agentAccountOf(host.agentCommand), deleteData).map((line) => (
          <li key={line}>{line}</li>
        ))}
        <li>Slotdeck cannot reach {host.name} until you deploy the agent again.</li>
        {deleteData ? null : (
          <li>Slots, users, API keys and usage stay on the host and come back with the next deploy.</li>
        )}
      </ul>
      <label className="checkbox">
        <input type="checkbox" checked={deleteData} onChange={(event) => setDeleteData(event.target.checked)} />
        Also delete every slot and all users, keys and usage
      </label>
      {deleteData ? (
        <div className="field deploy-typed">
          <label className="field-label" htmlFor="deploy-typed-name">
            Type {host.name} to confirm
          </label>
          <input
            id="deploy-typed-name"
            value={typed}
            onChange={(event) => setTyped(event.target.value)}
            autoComplete="off"
            spellCheck={false}
          />
        </div>
      ) : null}
    </Dialog>
  );
}

function DeployDialog({ hostId }: { hostId: string }) {
  const stores = useStores();
  const deploy = deployStoreOf(stores);
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const entry = useDeploy((s) => s.byHost[hostId]);
  const confirm = useDeploy((s) => s.dialog?.confirm ?? null);
  const loaded = useHosts((s) => s.loaded);
  useEffect(() => {
    // The host was removed (here or in another window) while its dialog was open or remembered.
    if (loaded && !host) deploy.getState().closeDialog();
  }, [loaded, host, deploy]);
  if (!host) return null;
  const current = entry ?? {
    status: null,
    statusError: null,
    loadingStatus: true,
    job: null,
    runError: null,
    lastRun: null,
  };
  if (confirm === 'rollback') return <RollbackConfirm host={host} entry={current} />;
  if (confirm === 'uninstall') return <UninstallConfirm host={host} entry={current} />;
  const job = current.job;
  const running = job?.state === 'running';
  const actions = agentActions(host, current);
  const close = (): void => deploy.getState().closeDialog();
  const run = (action: DeployAction): void => void deploy.getState().run(host.id, action);
  const retry = (): void => void deploy.getState().retry(host.id);
  const cancel = (): void =>
    void deploy
      .getState()
      .cancel(host.id)
      .catch((error: unknown) => handleError(stores, error, host.id));
  const failed = job && (job.state === 'failed' || job.state === 'cancelled' || job.state === 'rolled-back');
  return (
    <Dialog
      title={job ? `${ACTION_TITLE[job.action]} on ${host.name}` : `Agent on ${host.name}`}
      onClose={close}
      width={640}
      footer={
        running ? (
          <>
            <span className="deploy-muted">Closing this leaves the job running.</span>
            <span className="spacer" />
            <button type="button" className="button danger-outline" onClick={cancel}>
              Cancel {job.action === 'upgrade' ? 'update' : job.action}
            </button>
            <button type="button" className="button" onClick={close}>
              Close
            </button>
          </>
        ) : (
          <>
            {actions.canRollback ? (
              <button
                type="button"
                className="button"
                onClick={() => deploy.getState().openDialog(host.id, 'rollback')}
              >
                Roll back…
              </button>
            ) : null}
            {actions.canUninstall ? (
              <button
                type="button"
                className="button danger-outline"
                onClick={() => deploy.getState().openDialog(host.id, 'uninstall')}
              >
                Uninstall…
              </button>
            ) : null}
            <span className="spacer" />
            <button type="button" className="button" onClick={close}>
              Close
            </button>
            {failed && job && hostKeyToReview(job) ? (
              <button type="button" className="button primary" onClick={() => reviewHostKey(stores, host.id, job)}>
                Review host key…
              </button>
            ) : failed ? (
              <button type="button" className="button primary" onClick={retry}>
                Retry
              </button>
            ) : actions.canDeploy ? (
              <button type="button" className="button primary" onClick={() => run('deploy')}>
                Deploy agent
              </button>
            ) : actions.canUpgrade ? (
              <button type="button" className="button primary" onClick={() => run('upgrade')}>
                {actions.bundled ? `Update to ${actions.bundled}` : 'Update agent'}
              </button>
            ) : null}
          </>
        )
      }
    >
      <AgentSummary host={host} status={current.status} entry={current} />
      {current.runError ? (
        <p className="form-error" role="alert">
          {current.runError.message}
        </p>
      ) : null}
      {job ? <JobSteps job={job} /> : null}
    </Dialog>
  );
}

/**
 * Mounted once with the sidebar: the deploy dialog (from any view, also back after a reload) and the idle
 * countdown's polling of connected hosts.
 */
export function DeployLayer() {
  const dialogHost = useDeploy((s) => s.dialog?.hostId ?? null);
  useIdlePolling();
  return dialogHost ? <DeployDialog key={dialogHost} hostId={dialogHost} /> : null;
}
