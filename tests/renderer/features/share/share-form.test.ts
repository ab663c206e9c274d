import { describe, expect, it } from 'vitest';
import {
  EMPTY_SHARE_DRAFT,
  expiryMinutes,
  parseOrigins,
  shareCopies,
  shareRequest,
  type ShareDraft,
} from '../../../../src/renderer/src/features/share/share-form';
import { CreateShareBody } from '../../../../remote-agent/src/contract/index';
import { embedOriginProblem } from '../../../../src/shared/ipc/contract';

const draft = (changes: Partial<ShareDraft> = {}): ShareDraft => ({ ...EMPTY_SHARE_DRAFT, ...changes });
const problemsOf = (d: ShareDraft) => {
  const result = shareRequest(d);
  return 'problems' in result ? result.problems : {};
};

describe('the share dialog’s checks', () => {
  it('makes a read-only link for a day by default, which the agent’s own schema accepts', () => {
    const result = shareRequest(draft());
    expect(result).toEqual({
      body: { mode: 'read', expiresInMinutes: 1440, maxViewers: null, signInRequired: false, frameAncestors: [] },
    });
    expect(CreateShareBody.safeParse('body' in result ? result.body : null).success).toBe(true);
  });

  it('turns the expiry presets and a custom time into minutes, and refuses more than 30 days or no time at all', () => {
    expect(expiryMinutes({ expiry: '1h', customAmount: '', customUnit: 'hours' })).toBe(60);
    expect(expiryMinutes({ expiry: '7d', customAmount: '', customUnit: 'hours' })).toBe(7 * 1440);
    expect(expiryMinutes({ expiry: '30d', customAmount: '', customUnit: 'hours' })).toBe(30 * 1440);
    expect(expiryMinutes({ expiry: 'custom', customAmount: '36', customUnit: 'hours' })).toBe(36 * 60);
    expect(expiryMinutes({ expiry: 'custom', customAmount: '30', customUnit: 'days' })).toBe(30 * 1440);
    expect(problemsOf(draft({ expiry: 'custom', customAmount: '31', customUnit: 'days' })).expiry).toMatch(
      /30 days at most/,
    );
    expect(problemsOf(draft({ expiry: 'custom', customAmount: '' })).expiry).toMatch(/whole number above 0/);
    expect(problemsOf(draft({ expiry: 'custom', customAmount: '1.5' })).expiry).toMatch(/whole number/);
  });

  it('takes an empty viewer limit as none and refuses one that is not 1-100', () => {
    expect(shareRequest(draft({ maxViewers: '3' }))).toMatchObject({ body: { maxViewers: 3 } });
    expect(problemsOf(draft({ maxViewers: '0' })).maxViewers).toMatch(/1 to 100/);
    expect(problemsOf(draft({ maxViewers: 'many' })).maxViewers).toMatch(/1 to 100/);
    expect(problemsOf(draft({ maxViewers: '101' })).maxViewers).toMatch(/1 to 100/);
  });

  it('asks for at least one allowed user when sign-in is required, and sends the users only then', () => {
    expect(problemsOf(draft({ signInRequired: true })).allowedUserIds).toMatch(/pick at least one user/);
    expect(shareRequest(draft({ signInRequired: true, allowedUserIds: ['u_0123456789'] }))).toMatchObject({
      body: { signInRequired: true, allowedUserIds: ['u_0123456789'] },
    });
    const off = shareRequest(draft({ signInRequired: false, allowedUserIds: ['u_0123456789'] }));
    expect('body' in off && 'allowedUserIds' in off.body).toBe(false);
  });

  it('takes embed origins one a line or comma-separated, and says which one is wrong and why', () => {
    expect(
      parseOrigins('https://docs.example.com\nhttps://intranet.example.com:8443, https://docs.example.com/'),
    ).toEqual({ origins: ['https://docs.example.com', 'https://intranet.example.com:8443'], problems: [] });
    expect(parseOrigins('http://localhost:8080').origins).toEqual(['http://localhost:8080']);
    const bad = problemsOf(
      draft({ origins: 'https://ok.example.com\nhttp://plain.example.com\nhttps://*.example.com' }),
    );
    expect(bad.origins).toContain('http://plain.example.com: only https://');
    expect(bad.origins).toContain('wildcards are not allowed');
    expect(bad.origins).not.toContain('ok.example.com:');
    expect(embedOriginProblem('https://docs.example.com/page')).toMatch(/drop any path/);
    expect(embedOriginProblem('https://user:pw@docs.example.com')).toMatch(/no user name/);
    expect(embedOriginProblem('docs.example.com')).toMatch(/not an address/);
    expect(embedOriginProblem('https://Docs.Example.com')).toMatch(/lower case/);
    expect(
      problemsOf(draft({ origins: Array.from({ length: 11 }, (_, i) => `https://s${i}.example.com`).join('\n') }))
        .origins,
    ).toMatch(/at most 10 origins/);
  });

  it('sends every origin it accepts in a shape the agent accepts too', () => {
    const result = shareRequest(draft({ mode: 'write', origins: 'https://a.example.com\nhttps://b.example.com:444' }));
    expect('body' in result).toBe(true);
    if ('body' in result) expect(CreateShareBody.parse(result.body).frameAncestors).toHaveLength(2);
  });

  it('copies the link with “Copy link” and the agent’s snippet with “Copy iframe snippet”', () => {
    const link = 'https://slots.example.com/share/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const iframeSnippet = `<iframe src="${link}" allow="clipboard-write"></iframe>`;
    expect(shareCopies({ link, iframeSnippet })).toEqual([
      { label: 'Copy link', text: link },
      { label: 'Copy iframe snippet', text: iframeSnippet },
    ]);
  });
});
