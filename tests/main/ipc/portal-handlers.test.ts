import { describe, expect, it } from 'vitest';
import { AUDIT_BROWSER_EXPORT_MAX_BYTES } from '../../../src/main/ipc/handlers-portal';
import type { SignInStatus } from '../../../src/shared/ipc/contract';
import { share, SHARED_SLOT, user } from '../../shared/agent-fixtures';
import { json, TOKEN, useAgentStandIn } from './agent-stand-in';

/**
 * Sign-in, share and audit channels from the renderer's side: IPC input in, agent HTTP request out, answer or error
 * back. The agent here is a small HTTP server answering as the agent's contract says (the real agent is in the e2e
 * test tests/e2e/sharing-panel.test.ts).
 */
const agent = useAgentStandIn();
const { seen, logged, dispatcher } = agent;

const SLOT = SHARED_SLOT;
const signIn = (userId: string, changes: Partial<SignInStatus> = {}): SignInStatus => ({
  userId,
  hasPassword: false,
  twoFactorEnabled: false,
  githubId: null,
  pendingApproval: false,
  locked: false,
  failures: 0,
  activeSessions: 0,
  pendingInvites: 0,
  ...changes,
});

describe('share links over IPC', () => {
  it('creates a share with the admin token and hands the link back once, logging nothing of it', async () => {
    const link = `http://127.0.0.1:7421/share/${'A'.repeat(43)}`;
    agent.answer = (_, response) =>
      json(response, 201, { share: share(), link, iframeSnippet: `<iframe src="${link}"></iframe>` });
    const result = await dispatcher().dispatch('shares:create', {
      hostId: 'prod',
      slotId: SLOT,
      share: {
        mode: 'read',
        expiresInMinutes: 60,
        signInRequired: false,
        frameAncestors: ['https://docs.example.com'],
      },
    });
    expect(result).toMatchObject({ ok: true, data: { link, share: { id: 'sh_0123456789' } } });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      path: `/api/v1/slots/${SLOT}/shares`,
      authorization: `Bearer ${TOKEN}`,
      body: { mode: 'read', expiresInMinutes: 60, frameAncestors: ['https://docs.example.com'] },
    });
    expect(JSON.stringify(logged)).not.toContain('A'.repeat(43));
  });

  it('refuses a share longer than 30 days or with a path as an embed origin before asking the agent', async () => {
    const result = await dispatcher().dispatch('shares:create', {
      hostId: 'prod',
      slotId: SLOT,
      share: {
        mode: 'write',
        expiresInMinutes: 31 * 24 * 60,
        signInRequired: false,
        frameAncestors: ['https://docs.example.com/page'],
      },
    });
    expect(result).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    const fields = result.ok ? '' : (result.error.details?.fields ?? '');
    expect(fields).toContain('share.expiresInMinutes: at most 30 days');
    expect(fields).toContain('share.frameAncestors.0: must be an origin');
    expect(seen).toEqual([]);
  });

  it('revokes by share id and passes the agent’s SHARE_NOT_FOUND back as is', async () => {
    agent.answer = (request, response) =>
      request.path.endsWith('sh_0123456789')
        ? json(response, 200, share('sh_0123456789', { state: 'revoked', revokedAt: '2026-12-01T01:00:00.000Z' }))
        : json(response, 404, { error: { code: 'SHARE_NOT_FOUND', message: 'No such share link.' } });
    expect(await dispatcher().dispatch('shares:revoke', { hostId: 'prod', shareId: 'sh_0123456789' })).toMatchObject({
      ok: true,
      data: { state: 'revoked' },
    });
    expect(seen[0]).toMatchObject({ method: 'DELETE', path: '/api/v1/shares/sh_0123456789' });
    expect(await dispatcher().dispatch('shares:revoke', { hostId: 'prod', shareId: 'sh_9999999999' })).toMatchObject({
      ok: false,
      error: { code: 'SHARE_NOT_FOUND', message: 'No such share link.' },
    });
  });
});

describe('sign-in over IPC', () => {
  it('lists as pending only the inactive users the agent says wait for approval', async () => {
    const users = [
      user('u_aaaaaaaaaa'),
      user('u_bbbbbbbbbb', { active: false }),
      user('u_cccccccccc', { active: false }),
      user('u_dddddddddd', { active: false, deleted: true }),
    ];
    agent.answer = (request, response) => {
      if (request.path === '/api/v1/users')
        return json(response, 200, { users, total: users.length, limit: 200, offset: 0 });
      const id = request.path.split('/')[4]!;
      json(response, 200, signIn(id, { pendingApproval: id === 'u_cccccccccc' }));
    };
    const result = await dispatcher().dispatch('signin:pending', { hostId: 'prod' });
    expect(result).toMatchObject({ ok: true, data: { users: [{ id: 'u_cccccccccc' }] } });
    // Only the two inactive, not deleted users were asked about.
    expect(seen.map((s) => s.path).sort()).toEqual([
      '/api/v1/users',
      '/api/v1/users/u_bbbbbbbbbb/sign-in',
      '/api/v1/users/u_cccccccccc/sign-in',
    ]);
  });

  it('links GitHub by a numeric id only, and sends the GitHub secret without ever getting it back', async () => {
    const refused = await dispatcher().dispatch('users:link-github', {
      hostId: 'prod',
      userId: 'u_aaaaaaaaaa',
      githubId: 'ada@example.com',
    });
    expect(refused).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    expect(seen).toEqual([]);

    const settings = {
      signUpEnabled: false,
      sessionIdleMinutes: 720,
      sessionAbsoluteHours: 168,
      portalKeyLimit: 5,
      portalKeyScopes: ['gateway', 'self'],
      ownersMayShare: false,
      github: {
        clientId: 'Ov23liABCDEF',
        secretConfigured: true,
        enabled: true,
        callbackUrl: 'http://127.0.0.1:7421/api/public/auth/callback/github',
      },
      publicUrl: 'http://127.0.0.1:7421',
    };
    agent.answer = (_, response) => json(response, 200, settings);
    const secret = 'f'.repeat(40);
    const saved = await dispatcher().dispatch('signin:set-github', {
      hostId: 'prod',
      clientId: 'Ov23liABCDEF',
      clientSecret: secret,
      enabled: true,
    });
    expect(saved).toMatchObject({ ok: true, data: { github: { secretConfigured: true } } });
    expect(JSON.stringify(saved)).not.toContain(secret);
    expect(seen[0]).toMatchObject({
      method: 'PUT',
      path: '/api/v1/auth/github',
      body: { clientId: 'Ov23liABCDEF', clientSecret: secret, enabled: true },
    });
    expect(JSON.stringify(logged)).not.toContain(secret);
  });
});

describe('the audit log over IPC', () => {
  const since = '2026-12-01T00:00:00.000Z';

  it('pages with the cursor and filters the admin chose', async () => {
    agent.answer = (_, response) => json(response, 200, { entries: [], nextCursor: null });
    await dispatcher().dispatch('audit:list', { hostId: 'prod', action: 'share.opened', since, cursor: '120' });
    expect(seen[0]).toMatchObject({
      path: '/api/v1/audit',
      query: { action: 'share.opened', since, cursor: '120', limit: '50' },
    });
  });

  it('in browser mode returns the export to download; one too large for the socket says what to do', async () => {
    agent.answer = (_, response) => response.writeHead(200, { 'content-type': 'text/csv' }).end('id,at\n1,x\n');
    const result = await dispatcher().dispatch('audit:export', { hostId: 'prod', since, format: 'csv' });
    expect(result).toEqual({
      ok: true,
      data: {
        fileName: 'audit-prod-2026-12-01-to-all.csv',
        mimeType: 'text/csv',
        bytes: 10,
        savedTo: null,
        content: 'id,at\n1,x\n',
      },
    });
    expect(seen[0]).toMatchObject({ path: '/api/v1/audit', query: { since, format: 'csv' } });

    const line = `${'x'.repeat(1023)}\n`;
    agent.answer = (_, response) => {
      response.writeHead(200);
      let sent = 0;
      const more = (): void => {
        while (sent <= AUDIT_BROWSER_EXPORT_MAX_BYTES) {
          sent += line.length * 64;
          if (!response.write(line.repeat(64))) return void response.once('drain', more);
        }
        response.end();
      };
      more();
    };
    const tooLarge = await dispatcher().dispatch('audit:export', { hostId: 'prod', format: 'jsonl' });
    expect(tooLarge).toMatchObject({
      ok: false,
      error: { code: 'AUDIT_EXPORT_TOO_LARGE' },
    });
    expect(tooLarge.ok ? '' : tooLarge.error.message).toContain('Narrow the time range');
  });
});
