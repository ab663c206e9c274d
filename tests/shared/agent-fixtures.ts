import type { ApiKey, Share, User } from '../../src/shared/ipc/contract';

/** A user as the agent describes it; the username follows the id (`u_aaaaaaaaaa` → `aaaaaaaaaa`). */
export const user = (id = 'u_aaaaaaaaaa', changes: Partial<User> = {}): User => ({
  id,
  username: id.slice(2),
  email: null,
  displayName: null,
  role: 'member',
  active: true,
  deleted: false,
  activeKeys: 0,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  deletedAt: null,
  ...changes,
});

/** An API key as the agent lists it (never the key itself). */
export const apiKey = (id: string, changes: Partial<ApiKey> = {}): ApiKey => ({
  id,
  userId: 'u_aaaaaaaaaa',
  name: 'laptop',
  prefix: 'sk_user_AbCd',
  scopes: ['gateway', 'self'],
  state: 'active',
  expiresAt: null,
  revokedAt: null,
  rotatedToId: null,
  slotId: null,
  rateLimit: { requestsPerMinute: null, concurrentStreams: null },
  lastUsedAt: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  ...changes,
});

/** The slot the share fixtures belong to. */
export const SHARED_SLOT = 'abcdef0123';

/** An active read-only share link of SHARED_SLOT as the agent lists it (never its token). */
export const share = (id = 'sh_0123456789', changes: Partial<Share> = {}): Share => ({
  id,
  slotId: SHARED_SLOT,
  mode: 'read',
  label: null,
  expiresAt: '2026-12-02T00:00:00.000Z',
  maxViewers: null,
  signInRequired: false,
  allowedUserIds: [],
  frameAncestors: [],
  createdBy: 'admin',
  createdAt: '2026-12-01T00:00:00.000Z',
  revokedAt: null,
  lastOpenedAt: null,
  opens: 0,
  viewersNow: 0,
  state: 'active',
  ...changes,
});
