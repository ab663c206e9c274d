import { createContext, useContext } from 'react';
import type { PortalPrefs } from '../../../remote-agent/src/contract/portal';
import type { SessionInfo } from '../../../remote-agent/src/contract/auth';
import type { Api } from '../lib/api';
import type { Route } from './routes';

export interface PortalContext {
  api: Api;
  session: SessionInfo;
  /** Reads the session again (after sign-in, sign-out, a password change). */
  refreshSession: () => Promise<SessionInfo>;
  navigate: (route: Route, options?: { replace?: boolean }) => void;
  prefs: PortalPrefs;
  setPrefs: (prefs: PortalPrefs) => void;
}

export const Portal = createContext<PortalContext | null>(null);

export function usePortal(): PortalContext {
  const value = useContext(Portal);
  if (!value) throw new Error('usePortal outside the portal');
  return value;
}
