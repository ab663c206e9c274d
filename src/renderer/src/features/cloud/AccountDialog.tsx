import { useEffect, useState, type FormEvent } from 'react';
import type { AwsAccount, AwsCredentialsInput, AwsProfiles } from '../../../../shared/ipc/contract';
import { Dialog, Field, FormFooter } from '../../components/Dialog';
import { formErrors, IpcClientError, type FormErrors } from '../../lib/ipc';
import { useStores } from '../../stores';
import { handleError } from '../app/actions';
import { regionChoices } from './regions';
import { Segmented } from '../../components/Segmented';

type Source = AwsCredentialsInput['source'];

/** The form's fields by the last part of main's schema paths, for errors under the right field. */
const ACCOUNT_FIELDS = {
  name: 'Name',
  regions: 'Regions',
  profile: 'Profile',
  accessKeyId: 'Access key ID',
  secretAccessKey: 'Secret access key',
  sessionToken: 'Session token',
};
const NO_ERRORS: FormErrors = { fields: {}, message: null };

const SOURCE_LABELS: Record<Source, string> = {
  profile: 'A profile from ~/.aws',
  environment: 'Environment variables',
  'access-key': 'Paste an access key',
};

/** Add an AWS account, or edit one: its name, regions and (only when asked) new credentials. */
export function AccountDialog({ account, onClose }: { account?: AwsAccount; onClose: () => void }) {
  const stores = useStores();
  const [name, setName] = useState(account?.name ?? '');
  const [regions, setRegions] = useState<string[]>(account?.regions ?? []);
  // Editing keeps the stored credentials unless the admin asks to replace them.
  const [changeCredentials, setChangeCredentials] = useState(!account);
  const [source, setSource] = useState<Source>(account?.source ?? 'profile');
  const [profile, setProfile] = useState(account?.profile ?? '');
  const [accessKeyId, setAccessKeyId] = useState('');
  const [secretAccessKey, setSecretAccessKey] = useState('');
  const [sessionToken, setSessionToken] = useState('');
  const [profiles, setProfiles] = useState<AwsProfiles | null>(null);
  const [profilesError, setProfilesError] = useState<string | null>(null);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let current = true;
    stores.cloud
      .getState()
      .loadProfiles()
      .then(
        (answer) => {
          if (!current) return;
          setProfiles(answer);
          // A new account starts on the first profile, in its region: what `aws` itself would use.
          if (!account) {
            const first = answer.profiles[0];
            if (first) {
              setProfile((p) => p || first.name);
              setRegions((r) => (r.length > 0 || !first.region ? r : [first.region]));
              setName((n) => n || first.name);
            } else if (answer.environment) setSource('environment');
            else setSource('access-key');
          }
        },
        (error: unknown) => current && setProfilesError((error as Error).message),
      );
    return () => {
      current = false;
    };
  }, [stores, account]);

  const pickProfile = (value: string): void => {
    setProfile(value);
    const picked = profiles?.profiles.find((p) => p.name === value);
    if (!account && picked?.region && regions.length === 0) setRegions([picked.region]);
  };
  const toggleRegion = (region: string, on: boolean): void =>
    setRegions(on ? [...new Set([...regions, region])] : regions.filter((r) => r !== region));

  const credentials = (): AwsCredentialsInput =>
    source === 'profile'
      ? { source, profile }
      : source === 'environment'
        ? { source }
        : {
            source,
            accessKeyId: accessKeyId.trim(),
            secretAccessKey: secretAccessKey.trim(),
            ...(sessionToken.trim() ? { sessionToken: sessionToken.trim() } : {}),
          };

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    setBusy(true);
    try {
      const cloud = stores.cloud.getState();
      const saved = account
        ? await cloud.updateAccount(account.id, {
            name,
            regions,
            ...(changeCredentials ? { credentials: credentials() } : {}),
          })
        : await cloud.createAccount({ name, regions, credentials: credentials() });
      // The pasted secret leaves this page's memory as soon as main has it.
      setSecretAccessKey('');
      setSessionToken('');
      stores.ui.getState().notify(account ? `${saved.name} saved.` : `AWS account ${saved.name} added.`);
      void cloud.refreshInstances(saved.id);
      onClose();
    } catch (error) {
      setBusy(false);
      if (error instanceof IpcClientError && error.code === 'SECRETS_LOCKED') {
        handleError(stores, error);
        return;
      }
      setErrors(formErrors(error, ACCOUNT_FIELDS));
    }
  };

  return (
    <Dialog
      title={account ? `Edit ${account.name}` : 'Add an AWS account'}
      onClose={onClose}
      width={640}
      footer={
        <FormFooter
          form="aws-account-form"
          busy={busy}
          label={account ? 'Save' : 'Add account'}
          busyLabel="Checking…"
          onCancel={onClose}
        />
      }
    >
      <form id="aws-account-form" className="form" onSubmit={(event) => void submit(event)}>
        <Field label="Name" hint="How this panel calls the account." error={errors.fields.name}>
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="work" autoFocus required />
        </Field>
        {account && !changeCredentials ? (
          <div className="form-row cloud-credentials-kept">
            <span>
              Credentials:{' '}
              <strong>
                {account.source === 'profile'
                  ? `profile ${account.profile ?? ''}`
                  : account.source === 'environment'
                    ? 'environment variables'
                    : `access key ${account.accessKeyHint ?? ''} (in the keychain)`}
              </strong>
            </span>
            <button type="button" className="link-button" onClick={() => setChangeCredentials(true)}>
              Change credentials
            </button>
          </div>
        ) : (
          <>
            <Segmented
              label="Credentials"
              name="aws-source"
              options={(['profile', 'environment', 'access-key'] as const).map((value) => ({
                value,
                label: SOURCE_LABELS[value],
              }))}
              value={source}
              onChange={(value) => setSource(value)}
            />
            {source === 'profile' ? (
              <Field
                label="Profile"
                error={errors.fields.profile}
                hint={
                  profilesError ??
                  (profiles && profiles.profiles.length === 0
                    ? `No profiles in ${profiles.configFile} or ${profiles.credentialsFile}. Run “aws configure” (or “aws configure sso”), or use another source.`
                    : 'SSO profiles work after “aws sso login”; Slotdeck reads the cached token, never your password.')
                }
              >
                <select value={profile} onChange={(e) => pickProfile(e.target.value)} required>
                  <option value="" disabled>
                    Pick a profile…
                  </option>
                  {profiles?.profiles.map((p) => (
                    <option key={p.name} value={p.name}>
                      {p.name} ({p.kind}
                      {p.region ? `, ${p.region}` : ''})
                    </option>
                  ))}
                </select>
              </Field>
            ) : null}
            {source === 'environment' ? (
              <p className={profiles && !profiles.environment ? 'warning' : 'hint'}>
                {profiles && !profiles.environment
                  ? 'Slotdeck was started without AWS_ACCESS_KEY_ID or AWS_PROFILE in its environment: set them and start it again, or use another source.'
                  : 'Uses AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) of the environment Slotdeck was started in.'}
              </p>
            ) : null}
            {source === 'access-key' ? (
              <>
                <div className="form-grid two">
                  <Field label="Access key ID" error={errors.fields.accessKeyId}>
                    <input
                      value={accessKeyId}
                      onChange={(e) => setAccessKeyId(e.target.value)}
                      placeholder="AKIA…"
                      spellCheck={false}
                      autoComplete="off"
                      required
                    />
                  </Field>
                  <Field label="Secret access key" error={errors.fields.secretAccessKey}>
                    <input
                      type="password"
                      value={secretAccessKey}
                      onChange={(e) => setSecretAccessKey(e.target.value)}
                      spellCheck={false}
                      autoComplete="off"
                      required
                    />
                  </Field>
                </div>
                <Field
                  label="Session token"
                  error={errors.fields.sessionToken}
                  hint="Only for temporary credentials (ASIA…). The key goes to the keychain and is never shown again."
                >
                  <input
                    type="password"
                    value={sessionToken}
                    onChange={(e) => setSessionToken(e.target.value)}
                    spellCheck={false}
                    autoComplete="off"
                  />
                </Field>
              </>
            ) : null}
          </>
        )}
        <Field
          label="Regions"
          hint="The instances of these regions are listed; launches go to one of them."
          error={errors.fields.regions}
        >
          <div className="cloud-regions" role="group">
            {regionChoices(account?.regions ?? []).map(([id, place]) => (
              <label key={id} className="checkbox inline">
                <input
                  type="checkbox"
                  checked={regions.includes(id)}
                  onChange={(e) => toggleRegion(id, e.target.checked)}
                />
                <span>
                  {id}
                  {place ? <span className="muted"> {place}</span> : null}
                </span>
              </label>
            ))}
          </div>
        </Field>
        {errors.message ? (
          <p className="form-error" role="alert">
            {errors.message}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}
