import { describe, expect, it } from 'vitest';
import {
  githubClientIdProblem,
  githubSecretProblem,
  githubUserId,
  isLoopbackUrl,
  keyLimit,
  sessionExpiry,
} from '../../../../src/renderer/src/features/signin/signin-form';
import { UpdateAuthSettingsBody } from '../../../../remote-agent/src/contract/index';

describe('the sign-in settings’ checks', () => {
  it('takes session expiry within the agent’s bounds, and refuses an idle limit longer than the absolute one', () => {
    const ok = sessionExpiry('720', '168');
    expect(ok).toEqual({ value: { sessionIdleMinutes: 720, sessionAbsoluteHours: 168 } });
    expect(UpdateAuthSettingsBody.safeParse('value' in ok ? ok.value : null).success).toBe(true);
    const problems = (idle: string, absolute: string): Record<string, string> => {
      const result = sessionExpiry(idle, absolute);
      return 'problems' in result ? result.problems : {};
    };
    expect(problems('4', '168').idle).toMatch(/from 5/);
    expect(problems('60', '0').absolute).toMatch(/from 1/);
    expect(problems('60', '2161').absolute).toMatch(/90 days/);
    expect(problems('600', '2').idle).toMatch(/never apply/);
    expect(Object.keys(problems('', '')).sort()).toEqual(['absolute', 'idle']);
  });

  it('takes 0-100 keys per end user', () => {
    expect(keyLimit('0')).toBe(0);
    expect(keyLimit('5')).toBe(5);
    expect(keyLimit('101')).toMatch(/0 .* to 100/);
    expect(keyLimit('two')).toMatch(/whole number/);
  });

  it('links GitHub by the numeric user id and explains what to do with a login or an email', () => {
    expect(githubUserId(' 583231 ')).toBe(583231);
    expect(githubUserId('ada@example.com')).toMatch(/email address: enter the numeric GitHub user id/);
    expect(githubUserId('octocat')).toMatch(/api\.github\.com\/users\/octocat/);
    expect(githubUserId('0123')).toMatch(/numeric GitHub user id/);
    expect(githubUserId('99999999999999999999')).toMatch(/numeric/);
  });

  it('checks the OAuth app’s client id and secret as pasted', () => {
    expect(githubClientIdProblem('Ov23liABCDEF12345678')).toBeNull();
    expect(githubClientIdProblem('not an id')).toMatch(/Client ID/);
    expect(githubSecretProblem('0123456789abcdef0123456789abcdef01234567')).toBeNull();
    expect(githubSecretProblem('short')).toMatch(/whole client secret/);
  });

  it('knows a portal address only this machine can open', () => {
    expect(isLoopbackUrl('http://127.0.0.1:7421/')).toBe(true);
    expect(isLoopbackUrl('https://slots.example.com/')).toBe(false);
  });
});
