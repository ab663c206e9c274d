import { useEffect, useState, type FormEvent } from 'react';
import type { AwsAccount, LaunchImage, LaunchOptions } from '../../../../shared/ipc/contract';
import { Dialog, Field } from '../../components/Dialog';
import { formErrors, IpcClientError, type FormErrors } from '../../lib/ipc';
import { useCloud, useStores } from '../../stores';
import { openDeployDialog } from '../deploy/DeployDialog';
import { ProgressSteps } from './Progress';
import { Segmented } from '../../components/Segmented';

const LAUNCH_FIELDS = {
  name: 'Name',
  region: 'Region',
  instanceType: 'Instance type',
  image: 'Image',
  diskGb: 'Disk',
  'keyPair.name': 'Key pair',
  keyPath: 'Private key file',
  idleStopMinutes: 'Idle stop',
};
const NO_ERRORS: FormErrors = { fields: {}, message: null };
const FALLBACK_IMAGES: Array<{ key: LaunchImage; label: string }> = [
  { key: 'al2023', label: 'Amazon Linux 2023' },
  { key: 'ubuntu-24.04', label: 'Ubuntu 24.04 LTS' },
];
const DEFAULT_TYPES = ['t3.small', 't3.medium', 't3.large', 't4g.medium', 'm7i.large'];

/** Launch a new host: a short form, then its progress, then "Deploy the agent". */
export function LaunchDialog({ account, onClose }: { account: AwsAccount; onClose: () => void }) {
  const stores = useStores();
  const launch = useCloud((s) => (s.launch?.accountId === account.id ? s.launch : null));
  const [name, setName] = useState('');
  const [region, setRegion] = useState(account.regions[0] ?? '');
  const [instanceType, setInstanceType] = useState('t3.medium');
  const [image, setImage] = useState<LaunchImage>('al2023');
  const [diskGb, setDiskGb] = useState('30');
  const [keyMode, setKeyMode] = useState<'create' | 'existing'>('create');
  const [keyName, setKeyName] = useState('');
  const [existingKey, setExistingKey] = useState('');
  const [keyPath, setKeyPath] = useState('');
  const [idleStop, setIdleStop] = useState(true);
  const [idleMinutes, setIdleMinutes] = useState('60');
  // Each region's images and key pairs, kept with the region they are about.
  const [loaded, setLoaded] = useState<{ region: string; options: LaunchOptions | null; error: string | null } | null>(
    null,
  );
  const options = loaded?.region === region ? loaded.options : null;
  const optionsError = loaded?.region === region ? loaded.error : null;
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);

  useEffect(() => {
    if (!region) return;
    let current = true;
    stores.cloud
      .getState()
      .launchOptions(account.id, region)
      .then(
        (answer) => {
          if (!current) return;
          setLoaded({ region, options: answer, error: null });
          setExistingKey((k) => (answer.keyPairs.includes(k) ? k : (answer.keyPairs[0] ?? '')));
        },
        (error: unknown) => current && setLoaded({ region, options: null, error: (error as Error).message }),
      );
    return () => {
      current = false;
    };
  }, [stores, account.id, region]);

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    const disk = Number(diskGb);
    const minutes = Number(idleMinutes);
    if (idleStop && !(Number.isInteger(minutes) && minutes > 0)) {
      setErrors({ fields: { idleStopMinutes: 'Idle minutes are a whole number above 0.' }, message: null });
      return;
    }
    void stores.cloud.getState().startLaunch({
      accountId: account.id,
      region,
      name: name.trim(),
      instanceType: instanceType.trim(),
      image,
      diskGb: Number.isFinite(disk) ? disk : 0,
      keyPair:
        keyMode === 'create'
          ? { mode: 'create', name: keyName.trim() || `slotdeck-${name.trim().replace(/\s+/g, '-')}` }
          : { mode: 'existing', name: existingKey },
      ...(keyMode === 'existing' && keyPath.trim() ? { keyPath: keyPath.trim() } : {}),
      idleStopMinutes: idleStop ? minutes : null,
    });
  };
  // A launch refused as invalid comes back to the form, its problems under the fields.
  const refused = launch?.state === 'failed' && launch.error?.code === 'IPC_INPUT_INVALID';
  const shownErrors =
    errors === NO_ERRORS && refused && launch.error
      ? formErrors(new IpcClientError(launch.error), LAUNCH_FIELDS)
      : errors;
  const showForm = !launch || refused;
  const images = options?.images.length ? options.images : FALLBACK_IMAGES;
  const types = options?.instanceTypes.length ? options.instanceTypes : DEFAULT_TYPES;

  const footer = showForm ? (
    <>
      <span className="spacer" />
      <button
        type="button"
        className="button"
        onClick={() => {
          stores.cloud.getState().clearLaunch();
          onClose();
        }}
      >
        Cancel
      </button>
      <button type="submit" form="launch-form" className="button primary">
        Launch
      </button>
    </>
  ) : launch.state === 'running' ? (
    <>
      <span className="spacer" />
      <button type="button" className="button" onClick={onClose}>
        Hide
      </button>
      <button type="button" className="button danger-outline" onClick={() => stores.cloud.getState().cancelLaunch()}>
        Cancel
      </button>
    </>
  ) : (
    <>
      <span className="spacer" />
      <button
        type="button"
        className="button"
        onClick={() => {
          stores.cloud.getState().clearLaunch();
          onClose();
        }}
      >
        Close
      </button>
      {launch.state === 'done' && launch.hostId ? (
        <button
          type="button"
          className="button primary"
          onClick={() => {
            const hostId = launch.hostId!;
            stores.cloud.getState().clearLaunch();
            onClose();
            openDeployDialog(stores, hostId, 'deploy');
          }}
        >
          Deploy the agent
        </button>
      ) : null}
      {launch.state === 'failed' || launch.state === 'cancelled' ? (
        <button type="button" className="button primary" onClick={() => stores.cloud.getState().clearLaunch()}>
          Back to the form
        </button>
      ) : null}
    </>
  );

  return (
    <Dialog title={`Launch a host in ${account.name}`} onClose={onClose} width={640} footer={footer}>
      {showForm ? (
        <form id="launch-form" className="form" onSubmit={submit}>
          <div className="form-grid two">
            <Field
              label="Name"
              hint="The host profile’s name and the instance’s Name tag."
              error={shownErrors.fields.name}
            >
              <input value={name} onChange={(e) => setName(e.target.value)} placeholder="claude-1" autoFocus required />
            </Field>
            <Field label="Region" error={shownErrors.fields.region}>
              <select value={region} onChange={(e) => setRegion(e.target.value)} required>
                {account.regions.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Instance type" error={shownErrors.fields.instanceType}>
              <input
                value={instanceType}
                onChange={(e) => setInstanceType(e.target.value)}
                list="launch-instance-types"
                spellCheck={false}
                required
              />
            </Field>
            <Field label="Disk (GB)" error={shownErrors.fields.diskGb}>
              <input value={diskGb} onChange={(e) => setDiskGb(e.target.value)} inputMode="numeric" required />
            </Field>
          </div>
          <datalist id="launch-instance-types">
            {types.map((type) => (
              <option key={type} value={type} />
            ))}
          </datalist>
          <Segmented
            label="Image"
            name="launch-image"
            options={images.map((entry) => ({ value: entry.key, label: entry.label }))}
            value={image}
            onChange={(value) => setImage(value)}
          />
          <Segmented
            label="Key pair"
            name="launch-key"
            options={[
              { value: 'create', label: 'New key pair' },
              { value: 'existing', label: 'Existing key pair' },
            ]}
            value={keyMode}
            onChange={(value) => setKeyMode(value)}
          />
          {keyMode === 'create' ? (
            <Field
              label="Key pair"
              hint="Its private key goes straight to this computer’s keychain; AWS keeps only the public half."
              error={shownErrors.fields['keyPair.name']}
            >
              <input
                value={keyName}
                onChange={(e) => setKeyName(e.target.value)}
                placeholder={`slotdeck-${name.trim().replace(/\s+/g, '-') || 'host'}`}
                spellCheck={false}
              />
            </Field>
          ) : (
            <div className="form-grid two">
              <Field label="Key pair" error={shownErrors.fields['keyPair.name']}>
                <select value={existingKey} onChange={(e) => setExistingKey(e.target.value)} required>
                  <option value="" disabled>
                    {options
                      ? options.keyPairs.length
                        ? 'Pick a key pair…'
                        : 'No key pairs in this region'
                      : 'Loading…'}
                  </option>
                  {options?.keyPairs.map((key) => (
                    <option key={key} value={key}>
                      {key}
                    </option>
                  ))}
                </select>
              </Field>
              <Field label="Private key file" hint="On this computer." error={shownErrors.fields.keyPath}>
                <input
                  value={keyPath}
                  onChange={(e) => setKeyPath(e.target.value)}
                  placeholder={`~/.ssh/${existingKey || 'key'}.pem`}
                  spellCheck={false}
                />
              </Field>
            </div>
          )}
          <div className="form-row cloud-idle">
            <label className="checkbox inline">
              <input type="checkbox" checked={idleStop} onChange={(e) => setIdleStop(e.target.checked)} />
              Stop the instance after
            </label>
            <input
              className="cloud-minutes"
              aria-label="Idle minutes"
              value={idleMinutes}
              onChange={(e) => setIdleMinutes(e.target.value)}
              inputMode="numeric"
              disabled={!idleStop}
            />
            <span className="muted">
              minutes without terminal input, gateway requests or admin calls (set on the host when the agent is
              deployed there).
            </span>
          </div>
          {shownErrors.fields.idleStopMinutes ? (
            <p className="field-error">{shownErrors.fields.idleStopMinutes}</p>
          ) : null}
          <p className="hint cloud-launch-address" data-testid="launch-address">
            {optionsError
              ? optionsError
              : !options
                ? 'Reading this region’s images and key pairs…'
                : options.myAddress
                  ? `SSH will be allowed only from ${options.myAddress} (this computer’s address as AWS sees it), in the security group named after the host (slotdeck-…): made now in the default VPC, or reused if Slotdeck made it for this name before and it lets in nothing wider.`
                  : 'Could not tell this computer’s public address, and the launch needs it (SSH is let in from that address only): it will fail until the address can be looked up. Check the network connection, then reopen this form.'}
          </p>
          {shownErrors.message ? (
            <p className="form-error" role="alert">
              {shownErrors.message}
            </p>
          ) : null}
        </form>
      ) : (
        <div className="cloud-launch-run">
          <p>
            <strong>{launch.name}</strong> in {launch.region}
            {launch.instanceId ? (
              <>
                {' '}
                · <code>{launch.instanceId}</code>
              </>
            ) : null}
          </p>
          <ProgressSteps kind="launch" events={launch.events} state={launch.state} />
          {launch.state === 'failed' && launch.error ? (
            <p className="form-error" role="alert">
              {launch.error.message}
            </p>
          ) : null}
          {launch.state === 'cancelled' ? (
            <p className="muted">
              No longer followed. Nothing already made in AWS is undone: the message above says what exists.
            </p>
          ) : null}
          {launch.state === 'done' ? (
            <p data-testid="launch-done">
              Host profile <strong>{launch.name}</strong> is ready and linked to the instance. Next: deploy the agent to
              it.
            </p>
          ) : null}
        </div>
      )}
    </Dialog>
  );
}
