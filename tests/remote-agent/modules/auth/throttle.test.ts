/**
 * The sign-in throttle on a real SQLite database with a settable clock: failures decay after a quiet day, a lock at
 * 100 failures lifts a day after the last one, old rows are pruned, and IPv6 peers are counted per /64.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import {
  ADDRESS_MAX_FAILURES,
  addressKey,
  LoginThrottle,
  LOCKOUT_AFTER,
} from '../../../../remote-agent/src/modules/auth/throttle.js';

const HOUR = 3_600_000;
let dir: string;
let db: Db;
let clock: number;
let throttle: LoginThrottle;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'throttle-'));
  db = openDatabase(join(dir, 'agent.db'));
  clock = Date.parse('2026-06-01T00:00:00Z');
  throttle = new LoginThrottle(db, () => clock);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const codeOf = (run: () => void): string | null => {
  try {
    run();
    return null;
  } catch (error) {
    return (error as { code: string }).code;
  }
};

describe('LoginThrottle', () => {
  it('locks at 100 failures, and the lock lifts 24 h after the last failure (or at once by the admin)', () => {
    for (let n = 0; n < LOCKOUT_AFTER; n += 1) {
      throttle.failure('user:u1', null);
      clock += 16 * 60_000; // past each backoff
    }
    expect(codeOf(() => throttle.check('user:u1', null))).toBe('AUTH_ACCOUNT_LOCKED');
    clock += 23 * HOUR;
    expect(codeOf(() => throttle.check('user:u1', null))).toBe('AUTH_ACCOUNT_LOCKED');
    clock += 2 * HOUR;
    expect(codeOf(() => throttle.check('user:u1', null))).toBeNull();
    expect(throttle.state('user:u1')).toEqual({ failures: 0, locked: false });
    // Counting starts again from zero: one more failure is no backoff.
    throttle.failure('user:u1', null);
    expect(throttle.state('user:u1')).toEqual({ failures: 1, locked: false });
    expect(codeOf(() => throttle.check('user:u1', null))).toBeNull();
  });

  it('forgets failures after a quiet day, so a slow trickle never builds up to a lock', () => {
    for (let n = 0; n < 10; n += 1) throttle.failure('user:u2', null);
    expect(codeOf(() => throttle.check('user:u2', null))).toBe('AUTH_THROTTLED');
    clock += 25 * HOUR;
    expect(codeOf(() => throttle.check('user:u2', null))).toBeNull();
    throttle.failure('user:u2', null);
    expect(throttle.state('user:u2').failures).toBe(1);
  });

  it('prunes rows whose last failure is older than a day, keeping recent ones', () => {
    for (let n = 0; n < 30; n += 1) throttle.failure(`login:name-${n}`, '192.0.2.1');
    clock += 12 * HOUR;
    throttle.failure('user:recent', null);
    clock += 13 * HOUR;
    expect(throttle.prune()).toBe(31);
    expect(db.prepare('SELECT subject FROM auth_throttle').all()).toEqual([{ subject: 'user:recent' }]);
  });

  it('counts IPv6 peers per /64 and IPv4-mapped peers as their IPv4 address', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::5')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    // Each failure from a fresh address of the same /64 counts against the one window.
    for (let n = 0; n < ADDRESS_MAX_FAILURES; n += 1)
      throttle.failure(`login:x${n}`, `2001:db8:1:2:${n.toString(16)}::1`);
    expect(codeOf(() => throttle.check('login:someone-else', '2001:db8:1:2:dead:beef::9'))).toBe('AUTH_THROTTLED');
    expect(codeOf(() => throttle.check('login:someone-else', '2001:db8:1:3::9'))).toBeNull();
  });
});
