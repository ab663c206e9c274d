import { useState, type FormEvent } from 'react';
import type { IpcInput, IpcOutput } from '../../../../shared/ipc/contract';
import { Dialog, Field, FormFooter } from '../../components/Dialog';
import { formErrors, IpcClientError, type FormErrors } from '../../lib/ipc';
import { useHosts, useStores, useUi } from '../../stores';
import type { Dialog as DialogState } from '../../stores/ui';
import { handleError } from '../app/actions';
import { InstanceLinkField, sameInstance } from '../cloud/InstanceLinkField';
import { HostAgentSettings } from '../deploy/HostAgent';
import { Segmented } from '../../components/Segmented';

type AuthMethod = 'paste' | 'file' | 'agent';

/** The host form's fields by the name main's schema gives them, for errors under the right field. */
const HOST_FIELDS = {
  name: 'Name',
  address: 'Address',
  port: 'SSH port',
  user: 'User',
  privateKey: 'Private key',
  keyPath: 'Key file',
  passphrase: 'Key passphrase',
  agentPort: 'Agent port',
  agentCommand: 'Agent command',
  adminToken: 'Admin token',
};
const ADVANCED_FIELDS = ['agentPort', 'agentCommand', 'adminToken'];
const NO_ERRORS: FormErrors = { fields: {}, message: null };
type SshConfigEntry = IpcOutput<'hosts:ssh-config'>['entries'][number];

/** Add or edit an SSH host; saving connects at once, so a wrong key or address shows up here, not later. */
export function HostDialog({ hostId }: { hostId?: string | undefined }) {
  const stores = useStores();
  const existing = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const [name, setName] = useState(existing?.name ?? '');
  const [address, setAddress] = useState(existing?.address ?? '');
  const [port, setPort] = useState(String(existing?.port ?? 22));
  const [user, setUser] = useState(existing?.user ?? 'root');
  const [method, setMethod] = useState<AuthMethod>(
    existing?.auth?.method === 'agent' ? 'agent' : existing?.auth?.keyPath ? 'file' : 'paste',
  );
  const [privateKey, setPrivateKey] = useState('');
  const [keyPath, setKeyPath] = useState(existing?.auth?.keyPath ?? '');
  const [passphrase, setPassphrase] = useState('');
  const [agentPort, setAgentPort] = useState(String(existing?.agentPort ?? 7420));
  const [agentCommand, setAgentCommand] = useState(existing?.agentCommand ?? 'slotdeck-agent');
  const [adminToken, setAdminToken] = useState('');
  const [instance, setInstance] = useState(existing?.instance ?? null);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const setError = (message: string | null): void => setErrors({ fields: {}, message });
  const fieldError = (field: keyof typeof HOST_FIELDS): string | undefined => errors.fields[field];
  const [busy, setBusy] = useState(false);
  const [sshConfig, setSshConfig] = useState<SshConfigEntry[] | null>(null);
  const close = (): void => stores.ui.getState().close();
  const editingAuth =
    !existing ||
    privateKey.trim() !== '' ||
    keyPath !== (existing.auth?.keyPath ?? '') ||
    method !== (existing.auth?.method === 'agent' ? 'agent' : existing.auth?.keyPath ? 'file' : 'paste') ||
    passphrase !== '';

  const importFromConfig = async (): Promise<void> => {
    try {
      const { entries, file } = await stores.ipc.invoke('hosts:ssh-config', {});
      setSshConfig(entries);
      if (entries.length === 0) setError(`No hosts found in ${file}.`);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const pick = (entry: SshConfigEntry): void => {
    setName((current) => current || entry.alias);
    setAddress(entry.address);
    setPort(String(entry.port));
    if (entry.user) setUser(entry.user);
    if (entry.keyPath) {
      setMethod('file');
      setKeyPath(entry.keyPath);
    }
    setSshConfig(null);
  };

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    setBusy(true);
    const auth: IpcInput<'hosts:create'>['auth'] =
      method === 'agent'
        ? { method: 'agent' }
        : {
            method: 'key',
            ...(method === 'paste' ? { privateKey } : { keyPath }),
            ...(passphrase ? { passphrase } : {}),
          };
    const settings = {
      name,
      address,
      port: Number(port),
      user,
      agentPort: Number(agentPort),
      agentCommand,
      ...(adminToken.trim() ? { adminToken: adminToken.trim() } : {}),
    };
    let id = hostId;
    try {
      if (existing)
        await stores.hosts.getState().update(existing.id, { ...settings, ...(editingAuth ? { auth } : {}) });
      else id = (await stores.hosts.getState().create({ ...settings, auth })).id;
      // Linked before connecting: the connection then takes its address from the instance.
      if (!sameInstance(instance, existing?.instance ?? null)) await stores.cloud.getState().linkHost(id!, instance);
    } catch (err) {
      setBusy(false);
      if (err instanceof IpcClientError && err.code === 'SECRETS_LOCKED') {
        handleError(stores, err);
        return;
      }
      setErrors(formErrors(err, HOST_FIELDS));
      return;
    }
    close();
    stores.ui.getState().select(id!);
    try {
      await stores.hosts.getState().connect(id!);
    } catch (err) {
      handleError(stores, err, id);
    }
  };

  return (
    <Dialog
      title={existing ? `Edit ${existing.name}` : 'Add an SSH host'}
      onClose={close}
      width={600}
      footer={
        <FormFooter
          form="host-form"
          busy={busy}
          label={existing ? 'Save and connect' : 'Add and connect'}
          busyLabel="Saving…"
          onCancel={close}
          start={
            existing ? (
              <button
                type="button"
                className="button danger-outline"
                onClick={() =>
                  stores.ui.getState().open({
                    kind: 'confirm',
                    title: `Remove ${existing.name}?`,
                    message:
                      'Slotdeck forgets this host, its pinned key and its stored secrets. Its slots keep running on the host.',
                    confirm: 'Remove host',
                    danger: true,
                    run: () => stores.hosts.getState().remove(existing.id),
                  })
                }
              >
                Remove…
              </button>
            ) : null
          }
        />
      }
    >
      <form id="host-form" className="form" onSubmit={(event) => void submit(event)}>
        {!existing ? (
          <div className="form-row">
            <button type="button" className="link-button" onClick={() => void importFromConfig()}>
              Import from ~/.ssh/config
            </button>
            {sshConfig && sshConfig.length > 0 ? (
              <select
                aria-label="Host from ~/.ssh/config"
                defaultValue=""
                onChange={(event) => pick(sshConfig[Number(event.target.value)]!)}
              >
                <option value="" disabled>
                  Pick a host…
                </option>
                {sshConfig.map((entry, index) => (
                  <option key={entry.alias} value={index}>
                    {entry.alias} ({entry.user ? `${entry.user}@` : ''}
                    {entry.address}:{entry.port})
                  </option>
                ))}
              </select>
            ) : null}
          </div>
        ) : null}
        <Field label="Name" error={fieldError('name')}>
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="prod-claude" autoFocus required />
        </Field>
        <div className="form-grid">
          <Field label="Address" error={fieldError('address')}>
            <input
              value={address}
              onChange={(e) => setAddress(e.target.value)}
              placeholder="ec2-1-2-3-4.compute.amazonaws.com"
              required
            />
          </Field>
          <Field label="SSH port" error={fieldError('port')}>
            <input value={port} onChange={(e) => setPort(e.target.value)} inputMode="numeric" required />
          </Field>
          <Field label="User" error={fieldError('user')}>
            <input value={user} onChange={(e) => setUser(e.target.value)} required />
          </Field>
        </div>
        <Segmented
          label="Authentication"
          name="auth"
          options={[
            { value: 'paste', label: 'Paste a private key' },
            { value: 'file', label: 'Use a key file' },
            { value: 'agent', label: 'Use the SSH agent' },
          ]}
          value={method}
          onChange={(value) => setMethod(value)}
        />
        {method === 'paste' ? (
          <Field
            label="Private key"
            error={fieldError('privateKey')}
            hint={
              existing?.auth?.storedKey
                ? 'A key is stored; paste a new one to replace it.'
                : 'Kept only in the keychain (or the encrypted secrets file).'
            }
          >
            <textarea
              value={privateKey}
              onChange={(e) => setPrivateKey(e.target.value)}
              rows={5}
              spellCheck={false}
              placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"
              required={!existing?.auth?.storedKey}
            />
          </Field>
        ) : null}
        {method === 'file' ? (
          <Field label="Key file" hint="Read from this computer at each connection." error={fieldError('keyPath')}>
            <input
              value={keyPath}
              onChange={(e) => setKeyPath(e.target.value)}
              placeholder="~/.ssh/id_ed25519"
              required
            />
          </Field>
        ) : null}
        {method !== 'agent' ? (
          <Field
            label="Key passphrase"
            error={fieldError('passphrase')}
            hint={
              existing?.auth?.storedPassphrase
                ? 'A passphrase is stored; enter a new one to replace it.'
                : 'Only if the key is encrypted.'
            }
          >
            <input
              type="password"
              value={passphrase}
              onChange={(e) => setPassphrase(e.target.value)}
              autoComplete="off"
            />
          </Field>
        ) : (
          <p className="hint">Uses the SSH agent of the user running Slotdeck (SSH_AUTH_SOCK).</p>
        )}
        <details className="advanced" open={Boolean(instance) || undefined}>
          <summary>EC2 instance{instance ? `: ${instance.instanceId}` : ''}</summary>
          <InstanceLinkField
            hostId={existing && sameInstance(instance, existing.instance) ? existing.id : undefined}
            value={instance}
            onChange={setInstance}
          />
        </details>
        {/* Opened when one of its fields is what failed: an error under a closed section would go unseen. */}
        <details className="advanced" open={ADVANCED_FIELDS.some((field) => errors.fields[field]) || undefined}>
          <summary>Agent on the host</summary>
          <div className="form-grid two">
            <Field label="Agent port" hint="On the host's loopback." error={fieldError('agentPort')}>
              <input value={agentPort} onChange={(e) => setAgentPort(e.target.value)} inputMode="numeric" />
            </Field>
            <Field
              label="Agent command"
              hint="Runs as “<command> token” to read the admin token."
              error={fieldError('agentCommand')}
            >
              <input value={agentCommand} onChange={(e) => setAgentCommand(e.target.value)} />
            </Field>
          </div>
          <Field
            label="Admin token"
            error={fieldError('adminToken')}
            hint={
              existing?.storedAdminToken
                ? 'A token is stored. Leave empty to keep it.'
                : 'Leave empty: Slotdeck reads it over SSH.'
            }
          >
            <input
              type="password"
              value={adminToken}
              onChange={(e) => setAdminToken(e.target.value)}
              autoComplete="off"
            />
          </Field>
        </details>
        {errors.message ? (
          <p className="form-error" role="alert">
            {errors.message}
          </p>
        ) : null}
      </form>
      {existing ? <HostAgentSettings hostId={existing.id} host={existing} /> : null}
    </Dialog>
  );
}

/** The host key question: first contact (confirm the fingerprint) or a changed key (blocked, with an explicit replace). */
export function TrustKeyDialog({
  hostId,
  algorithm,
  fingerprint,
  pinnedFingerprint,
  onTrusted,
}: {
  hostId: string;
  algorithm: string;
  fingerprint: string;
  pinnedFingerprint?: string | undefined;
  onTrusted?: (() => void) | undefined;
}) {
  const stores = useStores();
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const [busy, setBusy] = useState(false);
  const close = (): void => stores.ui.getState().close();
  const mismatch = Boolean(pinnedFingerprint);
  const trust = async (): Promise<void> => {
    setBusy(true);
    close();
    try {
      await stores.hosts.getState().trustKey(hostId, fingerprint, mismatch);
    } catch (error) {
      // The key is pinned unless the refusal was about the key; what follows (a deploy's retry) says the rest.
      const keyRefused = error instanceof IpcClientError && /^HOST_KEY_/.test(error.code);
      if (!onTrusted || keyRefused) {
        handleError(stores, error, hostId);
        return;
      }
    }
    onTrusted?.();
  };
  return (
    <Dialog
      title={mismatch ? `The host key of ${host?.name ?? 'this host'} changed` : `Trust ${host?.name ?? 'this host'}?`}
      onClose={close}
      tone={mismatch ? 'danger' : 'normal'}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={close} autoFocus>
            {mismatch ? 'Keep blocked' : 'Cancel'}
          </button>
          <button
            type="button"
            className={`button ${mismatch ? 'danger' : 'primary'}`}
            disabled={busy}
            onClick={() => void trust()}
          >
            {mismatch ? 'Replace pinned key' : 'Trust and connect'}
          </button>
        </>
      }
    >
      {mismatch ? (
        <div className="warning" role="alert">
          <strong>The connection is blocked.</strong> {host?.address} presents a different key than the one you pinned.
          This happens when the host was rebuilt, or when someone is intercepting the connection. Replace the pinned key
          only if you know why it changed.
        </div>
      ) : (
        <p>
          This is the first connection to <strong>{host?.address}</strong>. Compare the fingerprint below with the one
          the host shows (<code>ssh-keygen -lf /etc/ssh/ssh_host_{algorithm.replace(/^ssh-|-.*$/g, '')}_key.pub</code>{' '}
          on the host). Slotdeck pins it and refuses any other key later.
        </p>
      )}
      <dl className="fingerprints">
        {mismatch ? (
          <>
            <dt>Pinned</dt>
            <dd>
              <code>{pinnedFingerprint}</code>
            </dd>
          </>
        ) : null}
        <dt>{mismatch ? 'Presented now' : algorithm}</dt>
        <dd>
          <code className="fingerprint" data-testid="fingerprint">
            {fingerprint}
          </code>
        </dd>
      </dl>
    </Dialog>
  );
}

/** Secrets without a keychain: set (first time) or enter the passphrase of the encrypted secrets file. */
export function SecretsDialog({ next }: { next?: DialogState | undefined }) {
  const stores = useStores();
  const secrets = useUi((s) => s.info?.secrets);
  const [passphrase, setPassphrase] = useState('');
  const [again, setAgain] = useState('');
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const close = (): void => stores.ui.getState().close();
  const creating = secrets?.state === 'uninitialized';
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    if (creating && passphrase !== again) {
      setErrors({ fields: { again: 'The two passphrases differ: type the same one twice.' }, message: null });
      return;
    }
    setErrors(NO_ERRORS);
    try {
      const status = await stores.ipc.invoke('secrets:unlock', { passphrase });
      stores.ui.getState().setSecrets(status);
      stores.ui
        .getState()
        .notify(
          creating ? 'Secrets file created: host keys and tokens are kept in it, encrypted.' : 'Secrets unlocked.',
        );
      if (next) stores.ui.getState().open(next);
      else close();
    } catch (err) {
      const found = formErrors(err, { passphrase: 'Passphrase' });
      // A wrong passphrase is about the one field there is.
      setErrors(
        err instanceof IpcClientError && err.code === 'SECRETS_PASSPHRASE_WRONG'
          ? { fields: { passphrase: err.message }, message: null }
          : found,
      );
    }
  };
  return (
    <Dialog
      title={creating ? 'Choose a passphrase for secrets' : 'Unlock secrets'}
      onClose={close}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" form="secrets-form" className="button primary">
            {creating ? 'Create secrets file' : 'Unlock'}
          </button>
        </>
      }
    >
      <form id="secrets-form" className="form" onSubmit={(event) => void submit(event)}>
        <p>{secrets?.detail}</p>
        {next ? <p className="hint">Hosts keep their SSH keys and tokens there, so this comes first.</p> : null}
        <Field
          label="Passphrase"
          hint={
            creating
              ? 'At least 8 characters. Slotdeck cannot recover it: keep it somewhere safe.'
              : 'The passphrase chosen when the secrets file was created (at least 8 characters).'
          }
          error={errors.fields.passphrase}
        >
          <input
            type="password"
            value={passphrase}
            onChange={(e) => setPassphrase(e.target.value)}
            autoFocus
            minLength={8}
            required
          />
        </Field>
        {creating ? (
          <Field label="Passphrase again" error={errors.fields.again}>
            <input type="password" value={again} onChange={(e) => setAgain(e.target.value)} minLength={8} required />
          </Field>
        ) : null}
        {errors.message ? (
          <p className="form-error" role="alert">
            {errors.message}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}
