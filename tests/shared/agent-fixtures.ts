import type { ApiKey, User } from '../../src/shared/ipc/contract';

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
