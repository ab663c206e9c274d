import { useState, type FormEvent, type ReactNode } from 'react';
import type { PortalPrefs } from '../../../../remote-agent/src/contract/portal';
import { usePortal } from '../context';
import { paths, PASSWORD_MIN_LENGTH } from '../endpoints';
import { type ThemeChoice } from '../theme';
import { CopyButton, ErrorNote, Field, useAction } from '../ui';

/** The secret of an otpauth:// URI, for typing into an app that cannot scan. */
export function totpSecret(uri: string): string | null {
  try {
    return new URL(uri).searchParams.get('secret');
  } catch {
    return null;
  }
}

export function SettingsPage(): ReactNode {
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <Appearance />
      <Sessions />
      <ChangePassword />
      <TwoFactor />
      <GitHub />
    </section>
  );
}

function Appearance(): ReactNode {
  const { api, prefs, setPrefs } = usePortal();
  const action = useAction();
  const save = (next: PortalPrefs): void => {
    const previous = prefs;
    setPrefs(next); // applied at once; put back if the agent refuses it
    void action.run(async () => {
      try {
        setPrefs(await api.send<PortalPrefs>('PUT', paths.prefs, next));
      } catch (error) {
        setPrefs(previous);
        throw error;
      }
    });
  };
  return (
    <div className="card">
      <h2>Appearance</h2>
      <fieldset className="choices">
        <legend>Theme</legend>
        {(['system', 'light', 'dark'] as ThemeChoice[]).map((theme) => (
          <label key={theme} className="choice">
            <input
              type="radio"
              name="theme"
              value={theme}
              checked={prefs.theme === theme}
              onChange={() => save({ ...prefs, theme })}
              data-testid={`theme-${theme}`}
            />
            {theme === 'system' ? 'Same as this device' : theme === 'light' ? 'Light' : 'Dark'}
          </label>
        ))}
      </fieldset>
      <label>
        Terminal font size
        <select
          value={prefs.terminalFontSize}
          onChange={(event) => save({ ...prefs, terminalFontSize: Number(event.target.value) })}
          data-testid="terminal-font-size"
        >
          {Array.from({ length: 15 }, (_, index) => index + 10).map((size) => (
            <option key={size} value={size}>
              {size} px
            </option>
          ))}
        </select>
      </label>
      <ErrorNote error={action.error} />
    </div>
  );
}

function Sessions(): ReactNode {
  const { api, refreshSession, navigate } = usePortal();
  const action = useAction();
  const leave = (path: string): void => {
    void action.run(async () => {
      await api.send('POST', path);
      await refreshSession();
      navigate({ name: 'sign-in' }, { replace: true });
    });
  };
  return (
    <div className="card">
      <h2>Sessions</h2>
      <div className="actions">
        <button type="button" className="secondary" onClick={() => leave(paths.signOut)} data-testid="sign-out">
          Sign out
        </button>
        <button
          type="button"
          className="danger"
          onClick={() => leave(paths.signOutEverywhere)}
          data-testid="sign-out-everywhere"
        >
          Sign out everywhere
        </button>
      </div>
      <p className="hint">
        Sign out everywhere ends every session of yours, on every device, and closes open terminals.
      </p>
      <ErrorNote error={action.error} />
    </div>
  );
}

function ChangePassword(): ReactNode {
  const { api } = usePortal();
  const [form, setForm] = useState({ currentPassword: '', newPassword: '', repeat: '' });
  const [done, setDone] = useState(false);
  const action = useAction();
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    setDone(false);
    if (form.newPassword !== form.repeat) {
      action.setError(new Error('The two new passwords differ. Type the same password twice.'));
      return;
    }
    void action.run(async () => {
      await api.send('POST', paths.changePassword, {
        currentPassword: form.currentPassword,
        newPassword: form.newPassword,
      });
      setForm({ currentPassword: '', newPassword: '', repeat: '' });
      setDone(true);
    });
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="password-title" data-testid="change-password-form">
      <h2 id="password-title">Password</h2>
      <Field
        label="Current password"
        type="password"
        autoComplete="current-password"
        required
        value={form.currentPassword}
        onValue={(value) => setForm({ ...form, currentPassword: value })}
      />
      <Field
        label="New password"
        type="password"
        autoComplete="new-password"
        required
        minLength={PASSWORD_MIN_LENGTH}
        aria-describedby="new-password-rule"
        value={form.newPassword}
        onValue={(value) => setForm({ ...form, newPassword: value })}
      />
      <Field
        label="Repeat the new password"
        type="password"
        autoComplete="new-password"
        required
        value={form.repeat}
        onValue={(value) => setForm({ ...form, repeat: value })}
      />
      <p className="hint" id="new-password-rule">
        At least {PASSWORD_MIN_LENGTH} characters, and not a common password. Your other sessions end.
      </p>
      <ErrorNote error={action.error} />
      {done ? (
        <p className="ok" role="status">
          Password changed.
        </p>
      ) : null}
      <button type="submit" disabled={action.busy}>
        Change password
      </button>
    </form>
  );
}

function TwoFactor(): ReactNode {
  const { api, session, refreshSession } = usePortal();
  const enabled = session.user?.twoFactorEnabled === true;
  const [password, setPassword] = useState('');
  const [enrollment, setEnrollment] = useState<{ totpUri: string; backupCodes: string[] } | null>(null);
  const [code, setCode] = useState('');
  const action = useAction();

  const start = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      // Turning it off takes a current code (or an unused backup code) as well as the password.
      const answer = enabled
        ? await api.send<{ totpUri: string; backupCodes: string[] }>('POST', paths.disableTwoFactor, {
            password,
            code: code.trim(),
          })
        : await api.send<{ totpUri: string; backupCodes: string[] }>('POST', paths.enrollTwoFactor, { password });
      setPassword('');
      setCode('');
      if (enabled) await refreshSession();
      else setEnrollment(answer);
    });
  };
  const confirm = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      await api.send('POST', paths.confirmTwoFactor, { code: code.trim() });
      setEnrollment(null);
      setCode('');
      await refreshSession();
    });
  };

  const secret = enrollment ? totpSecret(enrollment.totpUri) : null;
  return (
    <div className="card" data-testid="two-factor">
      <h2>Two-factor sign-in</h2>
      <p>{enabled ? 'On: sign-in asks for a code from your authenticator app.' : 'Off.'}</p>
      {enrollment ? (
        <form onSubmit={confirm}>
          <p>
            Add this account to your authenticator app: paste the link into an app that accepts otpauth links, or type
            the secret key.
          </p>
          <label>
            Setup link
            <input
              readOnly
              value={enrollment.totpUri}
              data-testid="totp-uri"
              onFocus={(event) => event.target.select()}
            />
          </label>
          {secret ? (
            <p>
              Secret key: <code data-testid="totp-secret">{secret}</code> <CopyButton text={secret} label="Copy" />
            </p>
          ) : null}
          <p>
            <strong>Backup codes</strong> (each works once if you lose the app; keep them somewhere safe, they are not
            shown again):
          </p>
          <pre className="code" data-testid="backup-codes">
            {enrollment.backupCodes.join('\n')}
          </pre>
          <CopyButton text={enrollment.backupCodes.join('\n')} label="Copy backup codes" />
          <Field
            label="Code from the app"
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            value={code}
            onValue={setCode}
            data-testid="totp-confirm-code"
          />
          <ErrorNote error={action.error} />
          <button type="submit" disabled={action.busy} data-testid="totp-confirm">
            Turn on
          </button>
        </form>
      ) : (
        <form onSubmit={start}>
          <Field
            label="Your password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onValue={setPassword}
            data-testid="two-factor-password"
          />
          {enabled ? (
            <Field
              label="Code from your app (or a backup code)"
              autoComplete="one-time-code"
              required
              value={code}
              onValue={(value) => setCode(value)}
              data-testid="two-factor-off-code"
            />
          ) : null}
          <ErrorNote error={action.error} />
          <button
            type="submit"
            className={enabled ? 'danger' : ''}
            disabled={action.busy}
            data-testid="two-factor-toggle"
          >
            {enabled ? 'Turn off two-factor sign-in' : 'Set up two-factor sign-in'}
          </button>
        </form>
      )}
    </div>
  );
}

function GitHub(): ReactNode {
  const { api, session } = usePortal();
  const action = useAction();
  if (!session.githubEnabled && !session.user?.githubLinked) return null;
  const link = (): void => {
    void action.run(async () => {
      const { url } = await api.send<{ url: string }>('POST', paths.githubLink, { returnTo: '/settings' });
      window.location.assign(url);
    });
  };
  return (
    <div className="card">
      <h2>GitHub</h2>
      {session.user?.githubLinked ? (
        <p data-testid="github-linked">Linked: you can sign in with GitHub.</p>
      ) : (
        <>
          <p>Link your GitHub account to sign in with it.</p>
          <button type="button" className="secondary" onClick={link} disabled={action.busy} data-testid="github-link">
            Link GitHub
          </button>
        </>
      )}
      <ErrorNote error={action.error} />
    </div>
  );
}
