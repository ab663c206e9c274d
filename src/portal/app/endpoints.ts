/**
 * Paths of the agent's public API the portal calls (contract/auth.ts, contract/portal.ts, contract/share.ts). Kept as
 * strings here, with types only imported from the contract: the contract's zod schemas would triple the first page's
 * JavaScript (tests/portal/endpoints.test.ts checks these against the contract).
 */
export const AUTH = '/api/public/auth';
export const PORTAL = '/api/public/portal';

export const paths = {
  session: `${AUTH}/session`,
  signIn: `${AUTH}/sign-in`,
  verifyTwoFactor: `${AUTH}/two-factor/verify`,
  signUp: `${AUTH}/sign-up`,
  signOut: `${AUTH}/sign-out`,
  signOutEverywhere: `${AUTH}/sign-out-everywhere`,
  inviteInfo: (token: string) => `${AUTH}/invites/${encodeURIComponent(token)}`,
  acceptInvite: `${AUTH}/invites/accept`,
  changePassword: `${AUTH}/password`,
  enrollTwoFactor: `${AUTH}/two-factor/enable`,
  confirmTwoFactor: `${AUTH}/two-factor/confirm`,
  disableTwoFactor: `${AUTH}/two-factor/disable`,
  githubSignIn: `${AUTH}/github/sign-in`,
  githubLink: `${AUTH}/github/link`,
  me: `${PORTAL}/me`,
  slots: `${PORTAL}/slots`,
  slotAction: (id: string, action: 'start' | 'stop' | 'restart') =>
    `${PORTAL}/slots/${encodeURIComponent(id)}/${action}`,
  slotTicket: (id: string) => `${PORTAL}/slots/${encodeURIComponent(id)}/ticket`,
  keys: `${PORTAL}/keys`,
  key: (id: string) => `${PORTAL}/keys/${encodeURIComponent(id)}`,
  keyAction: (id: string, action: 'revoke' | 'rotate') => `${PORTAL}/keys/${encodeURIComponent(id)}/${action}`,
  slotShares: (id: string) => `${PORTAL}/slots/${encodeURIComponent(id)}/shares`,
  share: (id: string) => `${PORTAL}/shares/${encodeURIComponent(id)}`,
  usage: `${PORTAL}/usage`,
  quota: `${PORTAL}/quota`,
  prefs: `${PORTAL}/prefs`,
};

/** The agent's password rule (contract/auth.ts PASSWORD_MIN_LENGTH), for the hint before the agent checks it. */
export const PASSWORD_MIN_LENGTH = 12;
