import { useState, type FormEvent } from 'react';
import type { Ec2Instance, IpcInput } from '../../../../shared/ipc/contract';
import { Dialog, Field } from '../../components/Dialog';
import { formErrors, IpcClientError, type FormErrors } from '../../lib/ipc';
import { useHosts, useStores } from '../../stores';
import { handleError } from '../app/actions';
import { openDeployDialog } from '../deploy/DeployDialog';
import { Segmented } from '../../components/Segmented';

const PROFILE_FIELDS = { name: 'Name', user: 'User', keyPath: 'Key file', privateKey: 'Private key', hostId: 'Host' };
const NO_ERRORS: FormErrors = { fields: {}, message: null };
type AuthMethod = 'file' | 'paste' | 'agent';

/** A host name from an instance's Name tag (host names allow fewer characters than tags). */
const profileName = (instance: Ec2Instance): string =>
  (instance.name ?? instance.instanceId).replace(/[^A-Za-z0-9 ._-]/g, '-').slice(0, 64);

/**
 * A host profile for an instance: a new one (its address is looked up from the instance at every connect), or an
 * existing profile linked to it. The SSH user is the image's usual one, editable.
 */
export function HostProfileDialog({
  mode,
  instance,
  onClose,
}: {
  mode: 'create' | 'link';
  instance: Ec2Instance;
  onClose: () => void;
}) {
  const stores = useStores();
  // The list itself is selected (a filtered copy would be a new value at every store read, and never settle).
  const hosts = useHosts((s) => s.hosts);
  const sshHosts = hosts.filter((h) => h.kind === 'ssh');
  const [name, setName] = useState(profileName(instance));
  const [user, setUser] = useState(instance.suggestedUser);
  const [method, setMethod] = useState<AuthMethod>(instance.keyName ? 'file' : 'agent');
  const [keyPath, setKeyPath] = useState(instance.keyName ? `~/.ssh/${instance.keyName}.pem` : '');
  const [privateKey, setPrivateKey] = useState('');
  const [hostId, setHostId] = useState(sshHosts[0]?.id ?? '');
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const ref = { accountId: instance.accountId, region: instance.region, instanceId: instance.instanceId };
  const label = instance.name ?? instance.instanceId;

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    setBusy(true);
    try {
      if (mode === 'create') {
        const auth: IpcInput<'hosts:create'>['auth'] =
          method === 'agent'
            ? { method: 'agent' }
            : { method: 'key', ...(method === 'paste' ? { privateKey } : { keyPath: keyPath.trim() }) };
        const host = await stores.hosts.getState().create({
          name: name.trim(),
          // Replaced by the instance's address at every connect; a stopped instance has none yet.
          address: instance.publicIp ?? instance.publicDns ?? instance.privateIp ?? instance.instanceId,
          port: 22,
          user: user.trim(),
          auth,
        });
        await stores.cloud.getState().linkHost(host.id, ref);
        setPrivateKey('');
        setCreated(host.id);
        stores.ui.getState().notify(`Host profile ${host.name} created, linked to ${instance.instanceId}.`);
      } else {
        const host = sshHosts.find((h) => h.id === hostId);
        if (!host) {
          setErrors({ fields: { hostId: 'Pick a host profile.' }, message: null });
          setBusy(false);
          return;
        }
        if (user.trim() !== host.user) await stores.hosts.getState().update(host.id, { user: user.trim() });
        await stores.cloud.getState().linkHost(host.id, ref);
        stores.ui.getState().notify(`${host.name} is linked to ${label}: its address now comes from the instance.`);
        onClose();
      }
    } catch (error) {
      if (error instanceof IpcClientError && error.code === 'SECRETS_LOCKED') handleError(stores, error);
      else setErrors(formErrors(error, PROFILE_FIELDS));
    } finally {
      setBusy(false);
    }
  };

  const title = mode === 'create' ? `Host profile for ${label}` : `Link ${label} to a host`;
  if (created) {
    return (
      <Dialog
        title={title}
        onClose={onClose}
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="button" onClick={onClose}>
              Close
            </button>
            <button
              type="button"
              className="button primary"
              onClick={() => {
                onClose();
                openDeployDialog(stores, created, 'deploy');
              }}
            >
              Deploy the agent
            </button>
          </>
        }
      >
        <p>
          <strong>{name}</strong> is linked to <code>{instance.instanceId}</code>. If the instance has no agent yet,
          deploy it now; otherwise connect it from the host list.
        </p>
      </Dialog>
    );
  }

  return (
    <Dialog
      title={title}
      onClose={onClose}
      width={560}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="instance-host-form" className="button primary" disabled={busy}>
            {busy ? 'Saving…' : mode === 'create' ? 'Create host profile' : 'Link'}
          </button>
        </>
      }
    >
      <form id="instance-host-form" className="form" onSubmit={(event) => void submit(event)}>
        {mode === 'create' ? (
          <Field label="Name" error={errors.fields.name}>
            <input value={name} onChange={(e) => setName(e.target.value)} autoFocus required />
          </Field>
        ) : (
          <Field label="Host" error={errors.fields.hostId}>
            <select value={hostId} onChange={(e) => setHostId(e.target.value)} required>
              {sshHosts.length === 0 ? <option value="">No SSH host profile yet</option> : null}
              {sshHosts.map((h) => (
                <option key={h.id} value={h.id}>
                  {h.name} ({h.user}@{h.address})
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field
          label="User"
          hint={`${instance.suggestedUser} is the usual user of this instance’s image.`}
          error={errors.fields.user}
        >
          <input value={user} onChange={(e) => setUser(e.target.value)} required spellCheck={false} />
        </Field>
        {mode === 'create' ? (
          <>
            <Segmented
              label="Authentication"
              name="instance-auth"
              options={[
                { value: 'file', label: 'Key file' },
                { value: 'paste', label: 'Paste a private key' },
                { value: 'agent', label: 'SSH agent' },
              ]}
              value={method}
              onChange={(value) => setMethod(value)}
            />
            {method === 'file' ? (
              <Field
                label="Key file"
                hint={instance.keyName ? `The private key of the key pair ${instance.keyName}.` : undefined}
                error={errors.fields.keyPath}
              >
                <input value={keyPath} onChange={(e) => setKeyPath(e.target.value)} spellCheck={false} required />
              </Field>
            ) : null}
            {method === 'paste' ? (
              <Field label="Private key" hint="Kept only in the keychain." error={errors.fields.privateKey}>
                <textarea
                  value={privateKey}
                  onChange={(e) => setPrivateKey(e.target.value)}
                  rows={5}
                  spellCheck={false}
                  placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"
                  required
                />
              </Field>
            ) : null}
          </>
        ) : null}
        <p className="hint">
          Connecting looks up the instance’s address each time (a stopped and started instance gets a new public IP);
          the host key is pinned at the first connection, as for any host.
        </p>
        {errors.message ? (
          <p className="form-error" role="alert">
            {errors.message}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}
