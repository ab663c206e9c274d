import { lazy, Suspense, useCallback, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { SessionInfo } from '../../../remote-agent/src/contract/auth';
import type { PortalMe, PortalPrefs } from '../../../remote-agent/src/contract/portal';
import { Api, describeError } from '../lib/api';
import { Portal, usePortal as usePortalContext, type PortalContext } from './context';
import { paths } from './endpoints';
import { parseRoute, resolveRoute, routePath, safeReturnPath, type Route } from './routes';
import { NavLinks } from './nav';
import { applyTheme } from './theme';
import { InvitePage, SignInPage, SignUpPage } from './pages/SignIn';
import { SlotsPage } from './pages/Slots';
import { KeysPage } from './pages/Keys';
import { UsagePage } from './pages/Usage';
import { SettingsPage } from './pages/Settings';

// xterm and the terminal view load only when a terminal opens: the sign-in and list pages stay small.
const TerminalPage = lazy(() => import('./pages/TerminalPage'));

const DEFAULT_PREFS: PortalPrefs = { version: 1, theme: 'system', terminalFontSize: 14 };
const SIGNED_OUT: SessionInfo = {
  user: null,
  csrfToken: null,
  expiresAt: null,
  signUpEnabled: false,
  githubEnabled: false,
};

export function App(): ReactNode {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [location, setLocation] = useState(() => ({ path: window.location.pathname, search: window.location.search }));
  const [prefs, setPrefs] = useState<PortalPrefs>(DEFAULT_PREFS);

  const api = useMemo(
    () =>
      new Api({
        onSessionLost: () => {
          setSession((current) => (current ? { ...current, user: null, csrfToken: null } : current));
        },
      }),
    [],
  );

  const refreshSession = useCallback(async () => {
    const next = await api.get<SessionInfo>(paths.session);
    api.setCsrfToken(next.csrfToken);
    setSession(next);
    if (next.user) {
      const me = await api.get<PortalMe>(paths.me).catch(() => null);
      if (me) setPrefs(me.prefs);
    }
    return next;
  }, [api]);

  useEffect(() => {
    api.get<SessionInfo>(paths.session).then(
      (first) => {
        api.setCsrfToken(first.csrfToken);
        setSession(first);
        if (first.user)
          api.get<PortalMe>(paths.me).then(
            (me) => setPrefs(me.prefs),
            () => undefined,
          );
      },
      (error: unknown) => {
        setLoadError(error);
        setSession(SIGNED_OUT);
      },
    );
  }, [api]);

  useEffect(() => applyTheme(prefs.theme), [prefs.theme]);

  useEffect(() => {
    const onPop = (): void => setLocation({ path: window.location.pathname, search: window.location.search });
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const navigate = useCallback((route: Route, options: { replace?: boolean } = {}) => {
    const path = routePath(route);
    if (options.replace) window.history.replaceState(null, '', path);
    else window.history.pushState(null, '', path);
    setLocation({ path, search: '' });
    window.scrollTo(0, 0);
  }, []);

  const signedIn = session?.user != null;
  const requested = parseRoute(location.path);
  const resolved = resolveRoute(requested, signedIn);
  let route = resolved.route;
  if (resolved.redirected && route.name === 'slots') {
    // Signed in on the sign-in page: on to the page that sent us there.
    const next = safeReturnPath(new URLSearchParams(location.search).get('next'));
    if (next) route = parseRoute(next);
  }
  const shownPath =
    resolved.redirected && route.name === 'sign-in'
      ? `/sign-in?next=${encodeURIComponent(routePath(requested))}`
      : routePath(route);
  // The address bar follows a redirect (nothing to render differently: the route is already resolved).
  useEffect(() => {
    if (session && resolved.redirected) window.history.replaceState(null, '', shownPath);
  }, [session, resolved.redirected, shownPath]);

  if (!session) {
    return (
      <div className="loading" role="status">
        Loading…
      </div>
    );
  }

  const context: PortalContext = { api, session, refreshSession, navigate, prefs, setPrefs };
  return (
    <Portal.Provider value={context}>
      {loadError ? (
        <p className="banner error" role="alert">
          {describeError(loadError)}
        </p>
      ) : null}
      {route.name === 'terminal' ? (
        <Suspense
          fallback={
            <div className="loading" role="status">
              Opening the terminal…
            </div>
          }
        >
          <TerminalPage slotId={route.slotId} />
        </Suspense>
      ) : signedIn && route.name !== 'invite' ? (
        <Shell route={route}>{page(route)}</Shell>
      ) : (
        <main className="auth-page">{page(route)}</main>
      )}
    </Portal.Provider>
  );
}

function page(route: Route): ReactNode {
  switch (route.name) {
    case 'sign-in':
      return <SignInPage />;
    case 'sign-up':
      return <SignUpPage />;
    case 'invite':
      return <InvitePage token={route.token} />;
    case 'slots':
      return <SlotsPage />;
    case 'keys':
      return <KeysPage />;
    case 'usage':
      return <UsagePage />;
    case 'settings':
      return <SettingsPage />;
    case 'terminal':
      return null;
    case 'not-found':
      return <NotFound />;
  }
}

function Shell({ route, children }: { route: Route; children: ReactNode }): ReactNode {
  const { session } = usePortalContext();
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">Slotdeck</span>
        <NavLinks current={route} />
        <span className="who" data-testid="signed-in-as">
          {session.user?.username}
        </span>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}

function NotFound(): ReactNode {
  const { navigate } = usePortalContext();
  return (
    <section className="card narrow">
      <h1>Page not found</h1>
      <p>There is nothing at this address.</p>
      <button type="button" onClick={() => navigate({ name: 'slots' })}>
        Go to my slots
      </button>
    </section>
  );
}
