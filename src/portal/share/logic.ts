import type { SharePageData } from '../../../remote-agent/src/contract/share';

/** The share token from the page's own address (`/share/<token>`), or null: the server never puts it in the page. */
export function shareTokenFromPath(pathname: string): string | null {
  const match = /^\/share\/([^/]+)\/?$/.exec(pathname);
  if (!match?.[1]) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

const STATES = new Set(['active', 'expired', 'revoked', 'not-found']);

/** The page data the agent injected, checked by hand (the share page stays small: no schema library). */
export function parseShareData(value: unknown): SharePageData {
  const fallback: SharePageData = { state: 'not-found', slotName: null, mode: null, signInRequired: false };
  if (typeof value !== 'object' || value === null) return fallback;
  const data = value as Record<string, unknown>;
  const state = typeof data.state === 'string' && STATES.has(data.state) ? data.state : 'not-found';
  return {
    state: state as SharePageData['state'],
    slotName: typeof data.slotName === 'string' ? data.slotName : null,
    mode: data.mode === 'read' || data.mode === 'write' ? data.mode : null,
    signInRequired: data.signInRequired === true,
  };
}

/** Ticket refusals after which retrying cannot help: the page shows why and stops. */
export const FINAL_SHARE_ERRORS: Partial<Record<string, EndedReason>> = {
  SHARE_NOT_FOUND: 'not-found',
  SHARE_EXPIRED: 'expired',
  SHARE_REVOKED: 'revoked',
  SHARE_SIGN_IN_REQUIRED: 'sign-in',
  SHARE_NOT_ALLOWED: 'not-allowed',
};

export type EndedReason = 'not-found' | 'expired' | 'revoked' | 'sign-in' | 'not-allowed';

/** What the page says when a share cannot be opened. */
export function endedMessage(reason: EndedReason): { title: string; detail: string } {
  switch (reason) {
    case 'expired':
      return {
        title: 'This share link has expired',
        detail: 'Ask the person who shared this terminal for a new link.',
      };
    case 'revoked':
      return {
        title: 'This share link was revoked',
        detail: 'Its owner turned it off. Ask them for a new link if you still need access.',
      };
    case 'sign-in':
      return {
        title: 'Sign in to open this terminal',
        detail:
          'This link is only for signed-in users the admin listed. Open it in its own tab, sign in, then open the link again.',
      };
    case 'not-allowed':
      return {
        title: 'This link is not shared with you',
        detail: 'You are signed in as someone the owner did not list. Ask them to add you.',
      };
    case 'not-found':
      return {
        title: 'Share link not found',
        detail: 'Check that the whole link was copied; it may also have been removed.',
      };
  }
}

/** The status line's text for the terminal's state. */
export function statusText(state: 'connecting' | 'open' | 'reconnecting' | 'stopped', attempt?: number): string {
  switch (state) {
    case 'connecting':
      return 'connecting…';
    case 'open':
      return 'connected';
    case 'reconnecting':
      return attempt && attempt > 1 ? `reconnecting… (attempt ${attempt})` : 'reconnecting…';
    case 'stopped':
      return 'the slot is not running; waiting for it to start';
  }
}
