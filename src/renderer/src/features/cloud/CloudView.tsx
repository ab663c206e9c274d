import { useEffect, useState } from 'react';
import type { AwsAccount, Ec2Instance, InstanceAction } from '../../../../shared/ipc/contract';
import { useCloud, useHosts, useStores } from '../../stores';
import { INSTANCES_POLL_MS, instanceKey, PHASE_LABELS, type InstanceOperation } from '../../stores/cloud';
import { AccountDialog } from './AccountDialog';
import { HostProfileDialog } from './HostProfileDialog';
import { LaunchDialog } from './LaunchDialog';
import { ProgressSteps } from './Progress';

type CloudDialog =
  | { kind: 'add-account' }
  | { kind: 'edit-account'; account: AwsAccount }
  | { kind: 'launch'; account: AwsAccount }
  | { kind: 'create-host'; instance: Ec2Instance }
  | { kind: 'link-host'; instance: Ec2Instance };

/** How each state reads and which dot colour it gets (the sidebar's: ok, busy, off, danger). */
const STATE_TONE: Record<Ec2Instance['state'], string> = {
  pending: 'busy',
  running: 'ok',
  'shutting-down': 'busy',
  terminated: 'danger',
  stopping: 'busy',
  stopped: 'off',
};

const sourceLabel = (account: AwsAccount): string =>
  account.source === 'profile'
    ? `profile ${account.profile ?? ''}`
    : account.source === 'environment'
      ? 'environment variables'
      : `access key ${account.accessKeyHint ?? ''}`;

/** AWS accounts and their EC2 instances: start, stop, reboot, link to host profiles, launch new hosts. */
export default function CloudView() {
  const stores = useStores();
  const accounts = useCloud((s) => s.accounts);
  const loaded = useCloud((s) => s.accountsLoaded);
  const error = useCloud((s) => s.accountsError);
  const launch = useCloud((s) => s.launch);
  const [dialog, setDialog] = useState<CloudDialog | null>(null);
  const close = (): void => setDialog(null);

  useEffect(() => {
    void stores.cloud.getState().loadAccounts();
  }, [stores]);
  const accountIds = accounts.map((a) => a.id).join(',');
  // Instances change under the admin's feet (the console, other people, idle stops): read them again while visible.
  useEffect(() => {
    const ids = accountIds ? accountIds.split(',') : [];
    const tick = (): void => {
      if (document.visibilityState === 'hidden') return;
      for (const id of ids) void stores.cloud.getState().refreshInstances(id);
    };
    tick();
    const timer = setInterval(tick, INSTANCES_POLL_MS);
    document.addEventListener('visibilitychange', tick);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', tick);
    };
  }, [stores, accountIds]);

  const refresh = (): void => {
    void stores.cloud.getState().loadAccounts();
    for (const account of accounts) void stores.cloud.getState().refreshInstances(account.id);
  };

  return (
    <main className="workspace admin-view" aria-label="Cloud">
      <header className="view-header">
        <h2>Cloud</h2>
        <span className="muted">AWS accounts and their EC2 instances</span>
        <span className="spacer" />
        <button type="button" className="button small" onClick={refresh}>
          Refresh
        </button>
        <button type="button" className="button primary" onClick={() => setDialog({ kind: 'add-account' })}>
          + AWS account
        </button>
      </header>
      {error ? (
        <div className="banner error" role="alert">
          {error.message}{' '}
          <button type="button" className="link-button" onClick={refresh}>
            Try again
          </button>
        </div>
      ) : null}
      {launch && dialog?.kind !== 'launch' ? (
        <div className={`banner ${launch.state === 'failed' ? 'error' : 'warning'}`} role="status">
          Launch of <strong>{launch.name}</strong>:{' '}
          {launch.state === 'running'
            ? (launch.events[launch.events.length - 1]?.message ?? 'starting…')
            : launch.state === 'done'
              ? 'ready.'
              : launch.state === 'cancelled'
                ? 'no longer followed.'
                : launch.error?.message}{' '}
          <button
            type="button"
            className="link-button"
            onClick={() => {
              const account = accounts.find((a) => a.id === launch.accountId);
              if (account) setDialog({ kind: 'launch', account });
            }}
          >
            Show
          </button>
        </div>
      ) : null}
      <div className="view-body">
        {loaded && !error && accounts.length === 0 ? (
          <div className="empty-block">
            <p>
              <strong>No AWS account yet.</strong>
            </p>
            <p>
              Add one with “+ AWS account”: a profile from ~/.aws (SSO included, after <code>aws sso login</code>), the
              environment’s credentials, or an access key kept in the keychain. Then pick, start or launch the EC2
              instances your hosts run on.
            </p>
          </div>
        ) : null}
        {accounts.map((account) => (
          <AccountSection
            key={account.id}
            account={account}
            onEdit={() => setDialog({ kind: 'edit-account', account })}
            onLaunch={() => setDialog({ kind: 'launch', account })}
            onHost={(kind, instance) => setDialog({ kind, instance })}
          />
        ))}
      </div>
      {dialog?.kind === 'add-account' ? <AccountDialog onClose={close} /> : null}
      {dialog?.kind === 'edit-account' ? <AccountDialog account={dialog.account} onClose={close} /> : null}
      {dialog?.kind === 'launch' ? <LaunchDialog account={dialog.account} onClose={close} /> : null}
      {dialog?.kind === 'create-host' || dialog?.kind === 'link-host' ? (
        <HostProfileDialog
          mode={dialog.kind === 'create-host' ? 'create' : 'link'}
          instance={dialog.instance}
          onClose={close}
        />
      ) : null}
    </main>
  );
}

function AccountSection({
  account,
  onEdit,
  onLaunch,
  onHost,
}: {
  account: AwsAccount;
  onEdit: () => void;
  onLaunch: () => void;
  onHost: (kind: 'create-host' | 'link-host', instance: Ec2Instance) => void;
}) {
  const stores = useStores();
  const list = useCloud((s) => s.byAccount[account.id]);
  const remove = (): void =>
    stores.ui.getState().open({
      kind: 'confirm',
      title: `Remove ${account.name}?`,
      message: `Slotdeck forgets this AWS account${account.source === 'access-key' ? ' and deletes its access key from the keychain' : ''}. Nothing changes in AWS: its instances keep running, and host profiles linked to them stay (they connect to the address they had last).`,
      confirm: 'Remove account',
      danger: true,
      run: () => stores.cloud.getState().removeAccount(account.id),
    });
  return (
    <section className="cloud-account" aria-label={`AWS account ${account.name}`}>
      <div className="cloud-account-header">
        <div>
          <h3>{account.name}</h3>
          <p className="muted">
            {sourceLabel(account)} · {account.regions.join(', ')}
            {list?.fetchedAt ? ` · read ${new Date(list.fetchedAt).toLocaleTimeString()}` : ''}
          </p>
        </div>
        <span className="spacer" />
        <button type="button" className="button small primary" onClick={onLaunch}>
          Launch a host…
        </button>
        <button type="button" className="button small" onClick={onEdit}>
          Edit
        </button>
        <button type="button" className="button small danger-outline" onClick={remove}>
          Remove…
        </button>
      </div>
      {list?.error ? (
        <p className="warning" role="alert">
          {list.error.message}
        </p>
      ) : null}
      {list?.regionErrors.map((regionError) => (
        <p key={regionError.region} className="warning" role="alert">
          <strong>{regionError.region}:</strong> {regionError.message}
        </p>
      ))}
      {!list || (!list.fetchedAt && list.loading) ? (
        <p className="empty padded">Reading instances…</p>
      ) : list.fetchedAt && list.instances.length === 0 ? (
        <p className="empty padded">
          No instances in {account.regions.join(', ')}. Launch one with “Launch a host…”, or add regions with Edit.
        </p>
      ) : list.instances.length > 0 ? (
        <div className="cloud-table-wrap">
          <table className="data-table cloud-instances" aria-label={`Instances of ${account.name}`}>
            <thead>
              <tr>
                <th>Name</th>
                <th>State</th>
                <th>Type</th>
                <th>Address</th>
                <th>Launched</th>
                <th>Host profile</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.instances.map((instance) => (
                <InstanceRows
                  key={`${instance.region}/${instance.instanceId}`}
                  instance={instance}
                  onHost={(kind) => onHost(kind, instance)}
                />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

const COLUMNS = 7;

const OPERATION_TITLES: Record<InstanceAction, Record<InstanceOperation['state'], string>> = {
  start: { running: 'Starting', done: 'Started', failed: 'Start failed', cancelled: 'Start not followed' },
  stop: { running: 'Stopping', done: 'Stopped', failed: 'Stop failed', cancelled: 'Stop not followed' },
  // EC2 reports no reboot progress: "requested" is all the panel can truthfully say.
  reboot: {
    running: 'Requesting reboot',
    done: 'Reboot requested',
    failed: 'Reboot failed',
    cancelled: 'Reboot not followed',
  },
};

const shortDateTime = (iso: string): string =>
  new Date(iso).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

function InstanceRows({
  instance,
  onHost,
}: {
  instance: Ec2Instance;
  onHost: (kind: 'create-host' | 'link-host') => void;
}) {
  const stores = useStores();
  const ref = { accountId: instance.accountId, region: instance.region, instanceId: instance.instanceId };
  const operation = useCloud((s) => s.operations[instanceKey(ref)]);
  const hosts = useHosts((s) => s.hosts);
  const linked = instance.linkedHostIds.map((id) => ({ id, name: hosts.find((h) => h.id === id)?.name ?? id }));
  const busy = operation?.state === 'running';
  const label = instance.name ?? instance.instanceId;
  const act = (action: InstanceAction): void => {
    if (action === 'start') {
      void stores.cloud.getState().act(ref, action);
      return;
    }
    stores.ui.getState().open({
      kind: 'confirm',
      title: action === 'stop' ? `Stop ${label}?` : `Reboot ${label}?`,
      message:
        action === 'stop'
          ? 'Every slot on it stops with the machine, and its consoles close. Its disk is kept; a new public address comes with the next start (linked host profiles find it by themselves).'
          : 'Every slot on it stops while the machine restarts, and its consoles reconnect once the agent is back.',
      confirm: action === 'stop' ? 'Stop instance' : 'Reboot instance',
      danger: true,
      // The dialog closes at once; the row shows the progress.
      run: () => {
        void stores.cloud.getState().act(ref, action);
        return Promise.resolve();
      },
    });
  };
  return (
    <>
      <tr className={instance.state === 'terminated' ? 'dimmed' : ''} data-instance-id={instance.instanceId}>
        <td className="cloud-name">
          <span className="cloud-name-text">{instance.name ?? <span className="muted">(no name)</span>}</span>
          <code className="muted">{instance.instanceId}</code>
        </td>
        <td className="cloud-state">
          <span className={`state-dot ec2-${STATE_TONE[instance.state]}`} aria-hidden="true" />
          <span data-testid="instance-state">{instance.state}</span>
          {instance.state === 'running' && instance.statusChecks && instance.statusChecks !== 'ok' ? (
            <span className="chip chip-busy">
              {instance.statusChecks === 'initializing' ? 'checks…' : instance.statusChecks}
            </span>
          ) : null}
        </td>
        <td className="cloud-type">
          {instance.type}
          <span className="muted">{instance.zone ?? instance.region}</span>
        </td>
        <td className="cloud-address">
          {instance.publicIp ?? <span className="muted">no public IP</span>}
          {instance.privateIp ? <span className="muted">{instance.privateIp}</span> : null}
        </td>
        <td
          className="cloud-launched"
          title={instance.launchTime ? new Date(instance.launchTime).toString() : undefined}
        >
          {instance.launchTime ? shortDateTime(instance.launchTime) : '—'}
        </td>
        <td>
          {linked.length > 0 ? (
            <span className="cloud-linked">
              {linked.map((host) => (
                <button
                  key={host.id}
                  type="button"
                  className="link-button"
                  title={`Settings of ${host.name}`}
                  onClick={() => stores.ui.getState().open({ kind: 'edit-host', hostId: host.id })}
                >
                  {host.name}
                </button>
              ))}
            </span>
          ) : instance.state === 'terminated' ? null : (
            <span className="cloud-host-actions">
              <button
                type="button"
                className="link-button"
                title="Create a host profile for this instance"
                aria-label="Create host profile"
                onClick={() => onHost('create-host')}
              >
                + Profile
              </button>
              <button
                type="button"
                className="link-button"
                title="Link an existing host profile to this instance"
                aria-label="Link to a host"
                onClick={() => onHost('link-host')}
              >
                Link…
              </button>
            </span>
          )}
        </td>
        <td className="row-actions">
          {instance.state === 'stopped' ? (
            <button type="button" className="button small" disabled={busy} onClick={() => act('start')}>
              Start
            </button>
          ) : null}
          {instance.state === 'running' ? (
            <>
              <button type="button" className="button small" disabled={busy} onClick={() => act('stop')}>
                Stop
              </button>
              <button type="button" className="button small" disabled={busy} onClick={() => act('reboot')}>
                Reboot
              </button>
            </>
          ) : null}
        </td>
      </tr>
      {operation ? (
        <tr className="cloud-progress-row">
          <td colSpan={COLUMNS}>
            <div className="cloud-progress-line">
              <strong>{OPERATION_TITLES[operation.action][operation.state]}</strong>
              <ProgressSteps kind={operation.action} events={operation.events} state={operation.state} />
              <span className="spacer" />
              {busy ? (
                <button type="button" className="button small" onClick={() => stores.cloud.getState().cancel(ref)}>
                  Cancel
                </button>
              ) : (
                <button type="button" className="button small" onClick={() => stores.cloud.getState().dismiss(ref)}>
                  Dismiss
                </button>
              )}
            </div>
            {operation.state === 'failed' && operation.error ? (
              <p className="form-error" role="alert">
                {operation.error.message}
              </p>
            ) : null}
            {operation.state === 'cancelled' && operation.events[operation.events.length - 1]?.phase !== 'cancelled' ? (
              <p className="muted">
                No longer followed: AWS still carries out the {operation.action} (the list shows where it got,{' '}
                {PHASE_LABELS[operation.events[operation.events.length - 1]?.phase ?? 'requested'].toLowerCase()} last).
              </p>
            ) : null}
          </td>
        </tr>
      ) : null}
    </>
  );
}
