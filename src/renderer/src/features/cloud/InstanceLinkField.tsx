import { useEffect, useState } from 'react';
import type { InstanceRef, SshAccess } from '../../../../shared/ipc/contract';
import { useCloud, useStores } from '../../stores';

export const sameInstance = (a: InstanceRef | null, b: InstanceRef | null): boolean =>
  a === b ||
  (a !== null && b !== null && a.accountId === b.accountId && a.region === b.region && a.instanceId === b.instanceId);

/**
 * The EC2 instance an SSH host profile is linked to (its address is then looked up from the instance at every
 * connect): account, region and instance, or not linked. For a saved linked host, also whether the instance's
 * security groups let this computer's SSH in.
 */
export function InstanceLinkField({
  hostId,
  value,
  onChange,
}: {
  /** The saved host, when editing one: its SSH access is checked. */
  hostId?: string | undefined;
  value: InstanceRef | null;
  onChange: (value: InstanceRef | null) => void;
}) {
  const stores = useStores();
  const accounts = useCloud((s) => s.accounts);
  const loaded = useCloud((s) => s.accountsLoaded);
  const accountsError = useCloud((s) => s.accountsError);
  const [accountId, setAccountId] = useState(value?.accountId ?? '');
  const [region, setRegion] = useState(value?.region ?? '');
  const list = useCloud((s) => (accountId ? s.byAccount[accountId] : undefined));
  const account = accounts.find((a) => a.id === accountId);

  useEffect(() => {
    void stores.cloud.getState().loadAccounts();
  }, [stores]);
  useEffect(() => {
    if (accountId) void stores.cloud.getState().refreshInstances(accountId);
  }, [stores, accountId]);

  const pickAccount = (id: string): void => {
    setAccountId(id);
    const first = accounts.find((a) => a.id === id)?.regions[0] ?? '';
    setRegion(first);
    onChange(null);
  };
  const pickRegion = (next: string): void => {
    setRegion(next);
    onChange(null);
  };
  const instances = (list?.instances ?? []).filter((i) => i.region === region && i.state !== 'terminated');

  if (loaded && accounts.length === 0) {
    return (
      <p className="hint">
        {accountsError
          ? `AWS accounts could not be read: ${accountsError.message}`
          : 'Not linked. To link this host to an EC2 instance, add an AWS account in Cloud first.'}
      </p>
    );
  }
  return (
    <div className="cloud-link-field">
      <div className="form-grid cloud-link-grid">
        <label className="field">
          <span className="field-label">AWS account</span>
          <select value={accountId} onChange={(e) => pickAccount(e.target.value)} aria-label="AWS account">
            <option value="">Not linked</option>
            {accounts.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span className="field-label">Region</span>
          <select
            value={region}
            onChange={(e) => pickRegion(e.target.value)}
            disabled={!account}
            aria-label="Instance region"
          >
            {(account?.regions ?? []).map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span className="field-label">Instance</span>
          <select
            value={value?.instanceId ?? ''}
            disabled={!account || !region}
            aria-label="EC2 instance"
            onChange={(e) => onChange(e.target.value ? { accountId, region, instanceId: e.target.value } : null)}
          >
            <option value="">{account ? (list?.fetchedAt ? 'Pick an instance…' : 'Reading…') : '—'}</option>
            {/* A linked instance not in the list (terminated, or the list not read yet) stays selectable. */}
            {value && value.region === region && !instances.some((i) => i.instanceId === value.instanceId) ? (
              <option value={value.instanceId}>{value.instanceId}</option>
            ) : null}
            {instances.map((i) => (
              <option key={i.instanceId} value={i.instanceId}>
                {i.name ? `${i.name} (${i.instanceId})` : i.instanceId} · {i.state}
              </option>
            ))}
          </select>
        </label>
      </div>
      {list?.error ? <p className="field-error">{list.error.message}</p> : null}
      {hostId && value ? <SshAccessNote hostId={hostId} instance={value} /> : null}
    </div>
  );
}

/** Whether the linked instance's security groups let this computer in on SSH (checked for the saved link). */
function SshAccessNote({ hostId, instance }: { hostId: string; instance: InstanceRef }) {
  const stores = useStores();
  const key = `${instance.accountId}/${instance.region}/${instance.instanceId}`;
  // Kept with the link it is about: a picked other instance shows nothing until its own answer is in.
  const [answer, setAnswer] = useState<{ key: string; access: SshAccess | null } | null>(null);
  useEffect(() => {
    let current = true;
    stores.cloud
      .getState()
      .sshAccess(hostId)
      .then(
        (access) => current && setAnswer({ key, access }),
        // Not knowing is no warning: the connection itself says what failed.
        () => current && setAnswer({ key, access: null }),
      );
    return () => {
      current = false;
    };
  }, [stores, hostId, key]);
  const access = answer?.key === key ? answer.access : null;
  if (!access) return null;
  if (access.allowed === false)
    return (
      <p className="warning" role="alert" data-testid="ssh-access-warning">
        {access.detail}
      </p>
    );
  return <p className="hint">{access.detail}</p>;
}
