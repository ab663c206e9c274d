import { describe, expect, it } from 'vitest';
import { readPageData, webSocketUrl } from '../../src/portal/lib/page-data';
import {
  endedMessage,
  FINAL_SHARE_ERRORS,
  parseShareData,
  shareTokenFromPath,
  statusText,
} from '../../src/portal/share/logic';

describe('share page logic', () => {
  it('takes the token from its own address only', () => {
    const token = 'A'.repeat(43);
    expect(shareTokenFromPath(`/share/${token}`)).toBe(token);
    expect(shareTokenFromPath(`/share/${token}/`)).toBe(token);
    for (const path of ['/share/', '/share', '/', `/share/${token}/x`, '/share/%E0%A4%A'])
      expect(shareTokenFromPath(path)).toBeNull();
  });

  it('reads the injected data defensively: anything unexpected is a share not found', () => {
    expect(parseShareData({ state: 'active', slotName: 'dev', mode: 'write', signInRequired: false })).toEqual({
      state: 'active',
      slotName: 'dev',
      mode: 'write',
      signInRequired: false,
    });
    expect(parseShareData(null).state).toBe('not-found');
    expect(parseShareData({ state: 'owned', mode: 'admin' })).toEqual({
      state: 'not-found',
      slotName: null,
      mode: null,
      signInRequired: false,
    });
  });

  it('reads the JSON tag the agent put in the page, and nothing when it is missing or broken', () => {
    const doc = (text: string | null) =>
      ({ getElementById: () => (text === null ? null : { textContent: text }) }) as unknown as Document;
    expect(readPageData(doc('{"state":"revoked"}'))).toEqual({ state: 'revoked' });
    expect(readPageData(doc(null))).toBeNull();
    expect(readPageData(doc('{oops'))).toBeNull();
  });

  it('stops for good on an expired, revoked or unknown share (and says which), keeps retrying otherwise', () => {
    expect(FINAL_SHARE_ERRORS.SHARE_EXPIRED).toBe('expired');
    expect(FINAL_SHARE_ERRORS.SHARE_REVOKED).toBe('revoked');
    expect(FINAL_SHARE_ERRORS.SHARE_NOT_FOUND).toBe('not-found');
    expect(FINAL_SHARE_ERRORS.SHARE_VIEWER_LIMIT).toBeUndefined();
    expect(FINAL_SHARE_ERRORS.SLOT_NOT_RUNNING).toBeUndefined();
    expect(endedMessage('revoked').title).toBe('This share link was revoked');
    expect(endedMessage('expired').title).toBe('This share link has expired');
  });

  it('opens the terminal WebSocket on the page’s own host, wss on https', () => {
    const path = '/api/public/terminal/abc123def4?ticket=t';
    expect(webSocketUrl(path, { protocol: 'https:', host: 'deck.example.com' })).toBe(`wss://deck.example.com${path}`);
    expect(webSocketUrl(path, { protocol: 'http:', host: '127.0.0.1:8787' })).toBe(`ws://127.0.0.1:8787${path}`);
    expect(new URL(webSocketUrl('//evil.example/x', { protocol: 'http:', host: 'h' })).host).toBe('h');
    expect(() => webSocketUrl('wss://evil.example/x', { protocol: 'http:', host: 'h' })).toThrow();
    expect(statusText('reconnecting', 3)).toBe('reconnecting… (attempt 3)');
  });
});
