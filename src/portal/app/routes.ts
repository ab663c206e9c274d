/** The portal's client routes (the agent answers the SPA for each: remote-agent/src/modules/site/pages.ts). */
export type Route =
  | { name: 'sign-in' }
  | { name: 'sign-up' }
  | { name: 'invite'; token: string }
  | { name: 'slots' }
  | { name: 'terminal'; slotId: string }
  | { name: 'keys' }
  | { name: 'usage' }
  | { name: 'settings' }
  | { name: 'not-found' };

const SLOT_ID = /^[a-z0-9]{10}$/;

export function parseRoute(pathname: string): Route {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  switch (path) {
    case '/':
    case '/slots':
      return { name: 'slots' };
    case '/sign-in':
      return { name: 'sign-in' };
    case '/sign-up':
      return { name: 'sign-up' };
    case '/keys':
      return { name: 'keys' };
    case '/usage':
      return { name: 'usage' };
    case '/settings':
      return { name: 'settings' };
  }
  const invite = /^\/invite\/([A-Za-z0-9_-]+)$/.exec(path);
  if (invite?.[1]) return { name: 'invite', token: invite[1] };
  const slot = /^\/slots\/([^/]+)$/.exec(path);
  if (slot?.[1] && SLOT_ID.test(slot[1])) return { name: 'terminal', slotId: slot[1] };
  return { name: 'not-found' };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'sign-in':
      return '/sign-in';
    case 'sign-up':
      return '/sign-up';
    case 'invite':
      return `/invite/${route.token}`;
    case 'slots':
      return '/slots';
    case 'terminal':
      return `/slots/${route.slotId}`;
    case 'keys':
      return '/keys';
    case 'usage':
      return '/usage';
    case 'settings':
      return '/settings';
    case 'not-found':
      return '/';
  }
}

/** Pages that need no session. */
export function isPublicRoute(route: Route): boolean {
  return route.name === 'sign-in' || route.name === 'sign-up' || route.name === 'invite';
}

/**
 * Where the app goes for a route and a session: signed out, private pages go to sign-in (remembering where to
 * return); signed in, the sign-in and sign-up pages go to the slots (an invite still opens: it sets a password).
 */
export function resolveRoute(route: Route, signedIn: boolean): { route: Route; redirected: boolean } {
  if (!signedIn && !isPublicRoute(route) && route.name !== 'not-found')
    return { route: { name: 'sign-in' }, redirected: true };
  if (signedIn && (route.name === 'sign-in' || route.name === 'sign-up'))
    return { route: { name: 'slots' }, redirected: true };
  return { route, redirected: false };
}

/** A `?next=` value is followed only when it is one of our own pages (never another site). */
export function safeReturnPath(next: string | null): string | null {
  if (!next || !next.startsWith('/') || next.startsWith('//')) return null;
  const route = parseRoute(next);
  return route.name === 'not-found' || isPublicRoute(route) ? null : routePath(route);
}
