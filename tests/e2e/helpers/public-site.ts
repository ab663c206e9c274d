import { createServer, type Server } from 'node:http';
import type { CreatedShare, CreateShareBody, Slot, User } from '../../../remote-agent/src/contract/index.js';
import type { AgentProcess } from '../../integration/helpers/agent.js';

/**
 * The agent's public site (the gateway's listener) as end users and embedding sites meet it: users made and invited
 * through the admin API, passwords set through the invite link, share links, and a page on another origin.
 */

/** A password that passes the agent's policy (≥ 12 characters, not a common one). */
export const USER_PASSWORD = 'violet-harbour-47-quartz';

export async function createUser(agent: AgentProcess, username: string): Promise<User> {
  const response = await agent.request<User>('POST', '/api/v1/users', {
    username,
    displayName: `${username[0]!.toUpperCase()}${username.slice(1)}`,
  });
  if (response.status !== 201) throw new Error(`user ${username}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/** The admin's invite link for a user (shown once), on the agent's public address. */
export async function inviteLink(agent: AgentProcess, userId: string): Promise<string> {
  const response = await agent.request<{ link: string }>('POST', `/api/v1/users/${userId}/invites`, {
    expiresInHours: 1,
  });
  if (response.status !== 201)
    throw new Error(`invite for ${userId}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.link;
}

/**
 * Sets the user's first password through their invite link, as the invite page does (same-origin request, no
 * browser): for benchmarks and for tests whose subject is not the invite page.
 */
export async function acceptInvite(agent: AgentProcess, link: string, password = USER_PASSWORD): Promise<void> {
  const token = new URL(link).pathname.split('/').pop()!;
  const response = await fetch(`${agent.gatewayUrl}/api/public/auth/invites/accept`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: agent.gatewayUrl, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ token, password }),
  });
  if (!response.ok) throw new Error(`accepting the invite: ${response.status} ${await response.text()}`);
}

/** Signs in over HTTP as the sign-in page does; returns the status and the session cookie it set (if any). */
export async function signIn(
  agent: AgentProcess,
  login: string,
  password = USER_PASSWORD,
): Promise<{ status: number; cookie: string | null }> {
  const response = await fetch(`${agent.gatewayUrl}/api/public/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: agent.gatewayUrl, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ login, password }),
  });
  await response.arrayBuffer();
  const cookie = response.headers.getSetCookie().find((line) => /slotdeck-session=/.test(line)) ?? null;
  return { status: response.status, cookie };
}

export async function createSlotFor(agent: AgentProcess, name: string, ownerId: string | null = null): Promise<Slot> {
  return agent.createSlot({ name, ownerId });
}

/** A share link made by the admin; the answer holds the link and iframe snippet this once. */
export async function createShare(
  agent: AgentProcess,
  slotId: string,
  body: Partial<CreateShareBody> = {},
): Promise<CreatedShare> {
  const response = await agent.request<CreatedShare>('POST', `/api/v1/slots/${slotId}/shares`, {
    mode: 'read',
    expiresInMinutes: 60,
    signInRequired: false,
    frameAncestors: [],
    ...body,
  });
  if (response.status !== 201)
    throw new Error(`share of ${slotId}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/**
 * A site on another origin that embeds share links: `http://localhost:<port>` while the agent answers on
 * `http://127.0.0.1:<port>`, so the frame is cross-site (no cookies of the agent's origin go along). `page(html)`
 * registers a page and returns its URL.
 */
export async function startEmbeddingSite(): Promise<{
  origin: string;
  page(html: string): string;
  close(): Promise<void>;
}> {
  const pages = new Map<string, string>();
  const server: Server = createServer((request, response) => {
    const html = pages.get(new URL(request.url ?? '/', 'http://x').pathname);
    if (html === undefined) {
      response.writeHead(404).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    response.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const origin = `http://localhost:${port}`;
  return {
    origin,
    page(html) {
      const path = `/page-${pages.size + 1}`;
      pages.set(
        path,
        `<!doctype html><html><head><meta charset="utf-8"><title>Embedding site</title></head><body>${html}</body></html>`,
      );
      return `${origin}${path}`;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
