import { describe, expect, it } from 'vitest';
import { createAppStores } from '../../../src/renderer/src/stores';
import { sharesKey } from '../../../src/renderer/src/stores/shares';
import type { Share } from '../../../src/shared/ipc/contract';
import { fakeIpc } from '../fake-ipc';
import { share, SHARED_SLOT } from '../../shared/agent-fixtures';

const SLOT = SHARED_SLOT;

describe('the shares store', () => {
  it('lists a new share at once but keeps its link nowhere: the caller shows it once', async () => {
    const token = 'T'.repeat(43);
    const link = `https://slots.example.com/share/${token}`;
    const listed: Share[] = [share('sh_aaaaaaaaaa')];
    const ipc = fakeIpc({
      'shares:list': () => ({ shares: listed }),
      'shares:create': () => {
        listed.unshift(share('sh_bbbbbbbbbb'));
        return { share: share('sh_bbbbbbbbbb'), link, iframeSnippet: `<iframe src="${link}"></iframe>` };
      },
    });
    const stores = createAppStores(ipc.client);
    await stores.shares.getState().load('prod', SLOT);
    const created = await stores.shares
      .getState()
      .create('prod', SLOT, { mode: 'read', expiresInMinutes: 60, signInRequired: false });
    expect(created.link).toBe(link);
    const ids = stores.shares.getState().bySlot[sharesKey('prod', SLOT)]!.shares.map((s) => s.id);
    expect(ids).toEqual(['sh_bbbbbbbbbb', 'sh_aaaaaaaaaa']);
    expect(JSON.stringify(stores.shares.getState())).not.toContain(token);
  });

  it('shows a revoked share as revoked in the list, and a failed load with its message', async () => {
    const ipc = fakeIpc({
      'shares:list': () => ({ shares: [share('sh_aaaaaaaaaa')] }),
      'shares:revoke': () => share('sh_aaaaaaaaaa', { state: 'revoked', revokedAt: '2026-12-01T01:00:00.000Z' }),
    });
    const stores = createAppStores(ipc.client);
    await stores.shares.getState().load('prod', SLOT);
    await stores.shares.getState().revoke('prod', SLOT, 'sh_aaaaaaaaaa');
    expect(stores.shares.getState().bySlot[sharesKey('prod', SLOT)]!.shares[0]!.state).toBe('revoked');
    expect(ipc.callsTo('shares:revoke')).toEqual([{ hostId: 'prod', shareId: 'sh_aaaaaaaaaa' }]);

    ipc.handle('shares:list', () => {
      throw Object.assign(new Error('The agent on prod does not answer.'), { code: 'AGENT_NOT_RUNNING' });
    });
    await stores.shares.getState().load('prod', SLOT);
    expect(stores.shares.getState().bySlot[sharesKey('prod', SLOT)]!.error?.message).toBe(
      'The agent on prod does not answer.',
    );
  });
});
