import { describe, expect, it } from 'vitest';
import { PASSWORD_MIN_LENGTH as AGENT_PASSWORD_MIN_LENGTH, publicAuthApi } from '../../remote-agent/src/contract/auth';
import { portalApi } from '../../remote-agent/src/contract/portal';
import { shareApi } from '../../remote-agent/src/contract/share';
import { paths, PASSWORD_MIN_LENGTH } from '../../src/portal/app/endpoints';

/** The portal keeps the contract's paths as strings (its schemas would weigh on the first page): they must agree. */
describe('portal endpoints', () => {
  const fill = (path: string, values: Record<string, string>) =>
    path.replace(/:([a-z]+)/g, (_, name: string) => values[name]!);

  it('are the auth contract’s paths', () => {
    expect(paths.session).toBe(publicAuthApi.session.path);
    expect(paths.signIn).toBe(publicAuthApi.signIn.path);
    expect(paths.verifyTwoFactor).toBe(publicAuthApi.verifyTwoFactor.path);
    expect(paths.signUp).toBe(publicAuthApi.signUp.path);
    expect(paths.signOut).toBe(publicAuthApi.signOut.path);
    expect(paths.signOutEverywhere).toBe(publicAuthApi.signOutEverywhere.path);
    expect(paths.inviteInfo('tok')).toBe(fill(publicAuthApi.inviteInfo.path, { token: 'tok' }));
    expect(paths.acceptInvite).toBe(publicAuthApi.acceptInvite.path);
    expect(paths.changePassword).toBe(publicAuthApi.changePassword.path);
    expect(paths.enrollTwoFactor).toBe(publicAuthApi.enrollTwoFactor.path);
    expect(paths.confirmTwoFactor).toBe(publicAuthApi.confirmTwoFactor.path);
    expect(paths.disableTwoFactor).toBe(publicAuthApi.disableTwoFactor.path);
    expect(paths.githubSignIn).toBe(publicAuthApi.githubSignIn.path);
    expect(paths.githubLink).toBe(publicAuthApi.githubLink.path);
    expect(PASSWORD_MIN_LENGTH).toBe(AGENT_PASSWORD_MIN_LENGTH);
  });

  it('are the portal contract’s paths, with the methods the portal uses', () => {
    const id = { id: 'abc123def4' };
    expect(paths.me).toBe(portalApi.me.path);
    expect(paths.slots).toBe(portalApi.listSlots.path);
    expect(paths.slotAction('abc123def4', 'start')).toBe(fill(portalApi.startSlot.path, id));
    expect(paths.slotAction('abc123def4', 'stop')).toBe(fill(portalApi.stopSlot.path, id));
    expect(paths.slotAction('abc123def4', 'restart')).toBe(fill(portalApi.restartSlot.path, id));
    expect(paths.slotTicket('abc123def4')).toBe(fill(portalApi.slotTicket.path, id));
    expect(paths.keys).toBe(portalApi.createKey.path);
    expect(paths.key('k_0123456789')).toBe(fill(portalApi.updateKey.path, { id: 'k_0123456789' }));
    expect(portalApi.updateKey.method).toBe('PATCH');
    expect(paths.keyAction('k_0123456789', 'revoke')).toBe(fill(portalApi.revokeKey.path, { id: 'k_0123456789' }));
    expect(paths.keyAction('k_0123456789', 'rotate')).toBe(fill(portalApi.rotateKey.path, { id: 'k_0123456789' }));
    expect(paths.usage).toBe(portalApi.usage.path);
    expect(paths.quota).toBe(portalApi.quota.path);
    expect(paths.prefs).toBe(portalApi.putPrefs.path);
    expect(portalApi.putPrefs.method).toBe('PUT');
    expect(paths.slotShares('abc123def4')).toBe(fill(shareApi.portalCreateShare.path, id));
    expect(paths.slotShares('abc123def4')).toBe(fill(shareApi.portalListShares.path, id));
    expect(paths.share('sh_0123456789')).toBe(fill(shareApi.portalRevokeShare.path, { id: 'sh_0123456789' }));
    expect(shareApi.portalRevokeShare.method).toBe('DELETE');
    for (const endpoint of [portalApi.startSlot, portalApi.slotTicket, portalApi.createKey, portalApi.revokeKey])
      expect(endpoint.method).toBe('POST');
  });
});
