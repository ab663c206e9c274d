import type { Host } from '../../../../shared/ipc/contract';
import { useStores } from '../../stores';
import { useDeploy } from '../../stores/deploy';
import { agentTooNew, openDeployDialog } from './DeployDialog';
import { HostIdleSettings, IdleCountdown } from './idle';

const BUSY_LABEL = {
  deploy: 'deploying',
  upgrade: 'updating',
  rollback: 'rolling back',
  uninstall: 'uninstalling',
} as const;

/**
 * The sidebar's line under a host: its agent's version (opens the agent dialog), "Update agent" when this Slotdeck
 * bundles a newer one, a running deploy job, and the idle countdown.
 */
export function HostAgentLine({ host }: { host: Host }) {
  const stores = useStores();
  const job = useDeploy((s) => s.byHost[host.id]?.job ?? null);
  const agent = host.status.state === 'connected' ? host.status.agent : undefined;
  const running = job?.state === 'running';
  if (host.kind !== 'ssh' || (!agent && !running && host.status.state !== 'connected')) return null;
  const step = running ? job.steps.find((s) => s.state === 'running') : undefined;
  return (
    <div className="host-agent-line">
      {running ? (
        <button
          type="button"
          className="agent-chip busy"
          title="Show the steps"
          onClick={() => openDeployDialog(stores, host.id)}
        >
          {BUSY_LABEL[job.action]}
          {step ? `: ${step.label}` : '…'}
        </button>
      ) : agent ? (
        <button
          type="button"
          className="agent-chip"
          data-testid="agent-badge"
          title={`Agent ${agent.version} (contract ${agent.contractVersion}). Update, roll back or uninstall it here.`}
          onClick={() => openDeployDialog(stores, host.id)}
        >
          agent {agent.version}
        </button>
      ) : null}
      {!running && agent?.update === 'available' ? (
        <button
          type="button"
          className="agent-chip update"
          title="This Slotdeck bundles a newer agent: install it (slots keep running)"
          onClick={() => openDeployDialog(stores, host.id, 'upgrade')}
        >
          Update agent
        </button>
      ) : null}
      {agent?.update === 'newer-than-panel' ? (
        <span className="agent-chip muted" title="The agent is newer than the one this Slotdeck bundles">
          newer than Slotdeck
        </span>
      ) : null}
      <IdleCountdown hostId={host.id} />
    </div>
  );
}

/** What to do about a connection that failed because of the agent: deploy it, update it, or update Slotdeck. */
export function AgentErrorActions({ host }: { host: Host }) {
  const stores = useStores();
  const busy = useDeploy((s) => s.byHost[host.id]?.job?.state === 'running');
  const code = host.status.error?.code;
  // While a job runs, the sidebar's line shows it (and opens its steps) instead.
  if (host.kind !== 'ssh' || busy) return null;
  if (code === 'AGENT_NOT_RUNNING' || code === 'AGENT_TOKEN_UNREADABLE')
    return (
      <button
        type="button"
        className="button small"
        title="Install Node if needed, the agent and its boot unit on this host over SSH, then connect"
        onClick={() => openDeployDialog(stores, host.id, 'deploy')}
      >
        Deploy the agent
      </button>
    );
  if (code === 'AGENT_INCOMPATIBLE') {
    const tooNew = agentTooNew(host);
    return (
      <div className="agent-error-actions">
        {tooNew ? (
          <>
            <p className="host-note">
              Update Slotdeck on this computer, or roll the agent back to a release this Slotdeck speaks.
            </p>
            <button
              type="button"
              className="button small"
              onClick={() => openDeployDialog(stores, host.id, 'rollback')}
            >
              Roll back the agent…
            </button>
          </>
        ) : (
          <button
            type="button"
            className="button small primary"
            onClick={() => openDeployDialog(stores, host.id, 'upgrade')}
          >
            Update agent
          </button>
        )}
      </div>
    );
  }
  return null;
}

/** The host settings' agent and idle sections (shown when editing an SSH host). */
export function HostAgentSettings({ hostId, host }: { hostId: string; host: Host | undefined }) {
  const stores = useStores();
  if (!host || host.kind !== 'ssh') return null;
  const agent = host.status.state === 'connected' ? host.status.agent : undefined;
  return (
    <div className="host-agent-settings">
      <section className="host-settings-section" aria-label="Agent">
        <h3>Agent</h3>
        <div className="form-row">
          <span className="field-hint">
            {agent
              ? `Version ${agent.version}${agent.update === 'available' ? ' (an update is available)' : ''}.`
              : 'Deploy, update, roll back or uninstall the agent over SSH.'}
          </span>
          <span className="spacer" />
          <button
            type="button"
            className="button small"
            onClick={() => {
              stores.ui.getState().close();
              openDeployDialog(stores, hostId);
            }}
          >
            Manage agent…
          </button>
        </div>
      </section>
      <HostIdleSettings hostId={hostId} />
    </div>
  );
}
