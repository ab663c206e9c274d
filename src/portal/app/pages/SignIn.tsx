import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import type { SignedIn } from '../../../../remote-agent/src/contract/auth';
import { ApiError } from '../../lib/api';
import { usePortal } from '../context';
import { paths, PASSWORD_MIN_LENGTH } from '../endpoints';
import { safeReturnPath, parseRoute } from '../routes';
import { ErrorNote, Field, useAction } from '../ui';

/** Messages for `?error=CODE` when GitHub sign-in came back failed (the agent redirects to /sign-in). */
const GITHUB_ERRORS: Record<string, string> = {
  AUTH_GITHUB_NOT_LINKED:
    'This GitHub account is not linked to a Slotdeck user. Sign in with your password and link GitHub in Settings, or ask the admin.',
  AUTH_GITHUB_FAILED: 'GitHub sign-in did not complete. Try again.',
  AUTH_GITHUB_NOT_CONFIGURED: 'GitHub sign-in is not set up on this agent. Sign in with your password.',
  AUTH_USER_DISABLED: 'Your account is disabled. Ask the admin.',
  AUTH_APPROVAL_PENDING: 'Your account is waiting for the admin’s approval.',
};

export function githubErrorMessage(code: string | null): string | null {
  if (!code) return null;
  return GITHUB_ERRORS[code] ?? 'Sign-in with GitHub failed. Try again, or sign in with your password.';
}

export function SignInPage(): ReactNode {
  const { api, session, refreshSession, navigate } = usePortal();
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const params = new URLSearchParams(window.location.search);
  // GitHub's sign-in of an account with two-factor on lands here for the code (?step=two-factor).
  const [step, setStep] = useState<'password' | 'two-factor'>(
    params.get('step') === 'two-factor' ? 'two-factor' : 'password',
  );
  const action = useAction();
  const githubError = githubErrorMessage(params.get('error'));

  const finish = async (): Promise<void> => {
    await refreshSession();
    const next = safeReturnPath(params.get('next'));
    navigate(next ? parseRoute(next) : { name: 'slots' }, { replace: true });
  };

  const submitPassword = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      try {
        await api.send<SignedIn>('POST', paths.signIn, { login: login.trim(), password });
      } catch (error) {
        if (error instanceof ApiError && error.code === 'AUTH_TWO_FACTOR_REQUIRED') {
          setStep('two-factor');
          return;
        }
        throw error;
      }
      await finish();
    });
  };

  const submitCode = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      await api.send<SignedIn>('POST', paths.verifyTwoFactor, { code: code.trim() });
      await finish();
    });
  };

  const github = (): void => {
    void action.run(async () => {
      const returnTo = safeReturnPath(params.get('next')) ?? '/';
      const { url } = await api.send<{ url: string }>('POST', paths.githubSignIn, { returnTo });
      window.location.assign(url);
    });
  };

  return (
    <section className="card narrow" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in to Slotdeck</h1>
      {githubError && !action.error ? (
        <p className="error" role="alert" data-testid="error">
          {githubError}
        </p>
      ) : null}
      {step === 'password' ? (
        <form onSubmit={submitPassword} data-testid="sign-in-form">
          <Field
            label="Username or email"
            name="login"
            autoComplete="username"
            required
            value={login}
            onValue={setLogin}
            data-testid="sign-in-login"
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onValue={setPassword}
            data-testid="sign-in-password"
          />
          <ErrorNote error={action.error} />
          <button type="submit" disabled={action.busy} data-testid="sign-in-submit">
            {action.busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      ) : (
        <form onSubmit={submitCode} data-testid="two-factor-form">
          <p>Enter the 6-digit code from your authenticator app, or one of your backup codes.</p>
          <Field
            label="Code"
            name="code"
            inputMode="text"
            autoComplete="one-time-code"
            required
            autoFocus
            value={code}
            onValue={setCode}
            data-testid="two-factor-code"
          />
          <ErrorNote error={action.error} />
          <button type="submit" disabled={action.busy} data-testid="two-factor-submit">
            Verify
          </button>
          <button type="button" className="link" onClick={() => setStep('password')}>
            Back
          </button>
        </form>
      )}
      {session.githubEnabled && step === 'password' ? (
        <>
          <div className="or">or</div>
          <button type="button" className="secondary wide" onClick={github} data-testid="sign-in-github">
            Continue with GitHub
          </button>
        </>
      ) : null}
      {session.signUpEnabled ? (
        <p className="muted">
          No account?{' '}
          <a
            href="/sign-up"
            onClick={(event) => {
              event.preventDefault();
              navigate({ name: 'sign-up' });
            }}
          >
            Ask for one
          </a>
        </p>
      ) : null}
    </section>
  );
}

function PasswordRule(): ReactNode {
  return (
    <p className="hint" id="password-rule">
      At least {PASSWORD_MIN_LENGTH} characters, and not a common password.
    </p>
  );
}

export function SignUpPage(): ReactNode {
  const { api, session, navigate } = usePortal();
  const [form, setForm] = useState({ username: '', email: '', password: '' });
  const [done, setDone] = useState(false);
  const action = useAction();
  if (!session.signUpEnabled) {
    return (
      <section className="card narrow">
        <h1>Sign-up is closed</h1>
        <p>Accounts on this Slotdeck are made by its admin. Ask them for an invite link.</p>
        <button type="button" onClick={() => navigate({ name: 'sign-in' })}>
          Back to sign-in
        </button>
      </section>
    );
  }
  if (done) {
    return (
      <section className="card narrow" data-testid="sign-up-pending">
        <h1>Waiting for approval</h1>
        <p>Your account was created. The admin has to approve it before you can sign in.</p>
        <button type="button" onClick={() => navigate({ name: 'sign-in' })}>
          Back to sign-in
        </button>
      </section>
    );
  }
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    void action.run(async () => {
      await api.send('POST', paths.signUp, form);
      setDone(true);
    });
  };
  return (
    <section className="card narrow" aria-labelledby="sign-up-title">
      <h1 id="sign-up-title">Ask for an account</h1>
      <form onSubmit={submit}>
        <Field
          label="Username"
          autoComplete="username"
          required
          value={form.username}
          onValue={(value) => setForm({ ...form, username: value })}
        />
        <Field
          label="Email"
          type="email"
          autoComplete="email"
          required
          value={form.email}
          onValue={(value) => setForm({ ...form, email: value })}
        />
        <Field
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          minLength={PASSWORD_MIN_LENGTH}
          aria-describedby="password-rule"
          value={form.password}
          onValue={(value) => setForm({ ...form, password: value })}
        />
        <PasswordRule />
        <ErrorNote error={action.error} />
        <button type="submit" disabled={action.busy}>
          Ask for an account
        </button>
      </form>
    </section>
  );
}

export function InvitePage({ token }: { token: string }): ReactNode {
  const { api, refreshSession, navigate } = usePortal();
  const [info, setInfo] = useState<{ username: string; expiresAt: string } | null>(null);
  const [invalid, setInvalid] = useState<unknown>(null);
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const action = useAction();

  useEffect(() => {
    api.get<{ username: string; expiresAt: string }>(paths.inviteInfo(token)).then(setInfo, setInvalid);
  }, [api, token]);

  if (invalid) {
    return (
      <section className="card narrow" data-testid="invite-invalid">
        <h1>This invite link does not work</h1>
        <ErrorNote error={invalid} />
        <p>Invite links work once and expire. Ask the admin for a new one.</p>
      </section>
    );
  }
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    if (password !== repeat) {
      action.setError(new Error('The two passwords differ. Type the same password twice.'));
      return;
    }
    void action.run(async () => {
      await api.send('POST', paths.acceptInvite, { token, password });
      await refreshSession();
      navigate({ name: 'slots' }, { replace: true });
    });
  };
  return (
    <section className="card narrow" aria-labelledby="invite-title">
      <h1 id="invite-title">Set your password</h1>
      {info ? (
        <p>
          For <strong data-testid="invite-username">{info.username}</strong>. Then you are signed in.
        </p>
      ) : (
        <p role="status">Checking the invite…</p>
      )}
      <form onSubmit={submit}>
        <Field
          label="New password"
          type="password"
          autoComplete="new-password"
          required
          minLength={PASSWORD_MIN_LENGTH}
          aria-describedby="password-rule"
          value={password}
          onValue={setPassword}
          data-testid="invite-password"
        />
        <Field
          label="Repeat the password"
          type="password"
          autoComplete="new-password"
          required
          value={repeat}
          onValue={setRepeat}
          data-testid="invite-password-repeat"
        />
        <PasswordRule />
        <ErrorNote error={action.error} />
        <button type="submit" disabled={action.busy || !info} data-testid="invite-submit">
          Set password and sign in
        </button>
      </form>
    </section>
  );
}
