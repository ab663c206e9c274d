import { describe, expect, it } from 'vitest';
import { PORTAL_PAGE_PATHS } from '../../remote-agent/src/modules/site/pages';
import { isPublicRoute, parseRoute, resolveRoute, routePath, safeReturnPath } from '../../src/portal/app/routes';

describe('portal routes', () => {
  it('parses every page the agent serves the SPA on, and back', () => {
    expect(parseRoute('/')).toEqual({ name: 'slots' });
    expect(parseRoute('/slots/')).toEqual({ name: 'slots' });
    expect(parseRoute('/slots/abc123def4')).toEqual({ name: 'terminal', slotId: 'abc123def4' });
    expect(parseRoute('/invite/Ab_-9')).toEqual({ name: 'invite', token: 'Ab_-9' });
    for (const path of ['/sign-in', '/sign-up', '/slots', '/keys', '/usage', '/settings', '/slots/abc123def4'])
      expect(routePath(parseRoute(path))).toBe(path);
    // Every client route is one the agent answers with the SPA (else a reload would 404).
    const served = PORTAL_PAGE_PATHS.map((path) => new RegExp(`^${path.replace(/:[a-z]+/g, '[^/]+')}$`));
    for (const path of [
      '/sign-in',
      '/sign-up',
      '/invite/x',
      '/slots',
      '/slots/abc123def4',
      '/keys',
      '/usage',
      '/settings',
    ])
      expect(
        served.some((pattern) => pattern.test(path)),
        path,
      ).toBe(true);
  });

  it('answers not-found for anything else, a malformed slot id included', () => {
    for (const path of [
      '/admin',
      '/slots/../keys',
      '/slots/ABCDEFGHIJ',
      '/slots/abc',
      '/invite/',
      '/invite/a/b',
      '/keys/x',
    ])
      expect(parseRoute(path), path).toEqual({ name: 'not-found' });
  });

  it('sends a signed-out visitor of a private page to sign-in, and a signed-in one away from sign-in', () => {
    expect(resolveRoute({ name: 'keys' }, false)).toEqual({ route: { name: 'sign-in' }, redirected: true });
    expect(resolveRoute({ name: 'terminal', slotId: 'abc123def4' }, false).route).toEqual({ name: 'sign-in' });
    expect(resolveRoute({ name: 'sign-in' }, true)).toEqual({ route: { name: 'slots' }, redirected: true });
    expect(resolveRoute({ name: 'sign-up' }, true).route).toEqual({ name: 'slots' });
    // An invite opens either way (it sets a password), and so do the public pages signed out.
    expect(resolveRoute({ name: 'invite', token: 't' }, true).redirected).toBe(false);
    for (const name of ['sign-in', 'sign-up'] as const) expect(resolveRoute({ name }, false).redirected).toBe(false);
    expect(isPublicRoute({ name: 'usage' })).toBe(false);
  });

  it('follows ?next= only to its own private pages, never to another site', () => {
    expect(safeReturnPath('/keys')).toBe('/keys');
    expect(safeReturnPath('/slots/abc123def4')).toBe('/slots/abc123def4');
    for (const next of ['//evil.example', 'https://evil.example/keys', '/sign-in', '/nowhere', '', null, 'keys'])
      expect(safeReturnPath(next), String(next)).toBeNull();
  });
});
