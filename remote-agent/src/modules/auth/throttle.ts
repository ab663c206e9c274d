import type { Db } from '../../db/database.js';
import { AgentErrorCode } from '../../contract/index.js';
import { AppError } from '../../errors.js';

/** Failures before backoff starts (NIST 800-63B 5.2.2 allows up to 100 before lockout). */
export const BACKOFF_AFTER = 5;
export const BACKOFF_MAX_MS = 15 * 60_000;
export const LOCKOUT_AFTER = 100;
/**
 * Failures decay (NIST SP 800-63B 5.2.2 caps consecutive failures at 100 and allows any lockout policy within that):
 * after this long without a failure an account's count starts again from zero, and a lock (at 100) lifts by itself,
 * unless an admin unlocks sooner or an invite sets a new password. Rows this old are pruned.
 */
export const FAILURES_DECAY_MS = 24 * 3_600_000;
/** Per address: this many failures in the window, then wait for the window to pass. */
export const ADDRESS_WINDOW_MS = 15 * 60_000;
export const ADDRESS_MAX_FAILURES = 50;

export class ThrottledError extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      AgentErrorCode.AUTH_THROTTLED,
      429,
      `Too many failed sign-ins. Wait ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'} and try again.`,
    );
  }
}

/**
 * The throttle's key for a peer address: an IPv4 address as is (also when IPv4-mapped, `::ffff:a.b.c.d`), an IPv6
 * address by its /64, which one subscriber typically holds whole (per address, a /64 would be 2^64 fresh subjects).
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, '') || '0')
    .join(':')}::/64`;
}

interface Row {
  subject: string;
  failures: number;
  last_failure_at: string;
  blocked_until: string | null;
  locked: number;
}

/**
 * Failed sign-ins per account (`user:<id>`, or `login:<name>` for names that match no account, so both answer
 * alike) and per address (`ip:<address or IPv6 /64>`): backoff doubling from the 5th failure of an account (1 s, 2 s,
 * … at most 15 min), lockout at 100 (for 24 h after the last failure, or until an admin unlocks or an invite is used),
 * a window per address; 24 h without a failure starts an account's count again.
 */
export class LoginThrottle {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws 423 AUTH_ACCOUNT_LOCKED or 429 AUTH_THROTTLED (with Retry-After) before any password is checked. */
  check(account: string, address: string | null): void {
    const now = this.now();
    const row = this.live(account, now);
    if (row?.locked)
      throw new AppError(
        AgentErrorCode.AUTH_ACCOUNT_LOCKED,
        423,
        'This account is locked after too many failed sign-ins. It unlocks 24 hours after the last failed attempt; or ask your administrator to unlock it or to send you an invite link.',
      );
    const waits: number[] = [];
    if (row?.blocked_until) waits.push(Date.parse(row.blocked_until) - now);
    if (address) {
      const byAddress = this.row(`ip:${addressKey(address)}`);
      if (byAddress?.blocked_until) waits.push(Date.parse(byAddress.blocked_until) - now);
    }
    const wait = Math.max(0, ...waits);
    if (wait > 0) throw new ThrottledError(Math.ceil(wait / 1000));
  }

  failure(account: string, address: string | null): void {
    const now = this.now();
    const at = new Date(now).toISOString();
    const row = this.live(account, now);
    const failures = (row?.failures ?? 0) + 1;
    const locked = failures >= LOCKOUT_AFTER ? 1 : (row?.locked ?? 0);
    const blockedUntil =
      failures >= BACKOFF_AFTER
        ? new Date(now + Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(failures - BACKOFF_AFTER, 20))).toISOString()
        : null;
    this.upsert(account, failures, at, blockedUntil, locked);
    if (address) {
      const subject = `ip:${addressKey(address)}`;
      const previous = this.row(subject);
      const fresh = !previous || Date.parse(previous.last_failure_at) < now - ADDRESS_WINDOW_MS;
      const count = fresh ? 1 : previous.failures + 1;
      this.upsert(
        subject,
        count,
        at,
        count >= ADDRESS_MAX_FAILURES ? new Date(now + ADDRESS_WINDOW_MS).toISOString() : null,
        0,
      );
    }
  }

  /** A successful sign-in clears the account's backoff (not a lockout: only `unlock` does). */
  success(account: string): void {
    this.db.prepare('DELETE FROM auth_throttle WHERE subject = ? AND locked = 0').run(account);
  }

  unlock(account: string): void {
    this.db.prepare('DELETE FROM auth_throttle WHERE subject = ?').run(account);
  }

  state(account: string): { failures: number; locked: boolean } {
    const row = this.live(account, this.now());
    return { failures: row?.failures ?? 0, locked: row?.locked === 1 };
  }

  /** Removes rows whose last failure is past the decay (their count and lock no longer apply); returns how many. */
  prune(): number {
    return this.db
      .prepare('DELETE FROM auth_throttle WHERE last_failure_at < ?')
      .run(new Date(this.now() - FAILURES_DECAY_MS).toISOString()).changes;
  }

  /** The account's row unless its last failure is past the decay (then it counts as none, lock included). */
  private live(subject: string, now: number): Row | undefined {
    const row = this.row(subject);
    return row && Date.parse(row.last_failure_at) >= now - FAILURES_DECAY_MS ? row : undefined;
  }

  private row(subject: string): Row | undefined {
    return this.db.prepare('SELECT * FROM auth_throttle WHERE subject = ?').get(subject) as Row | undefined;
  }

  private upsert(subject: string, failures: number, at: string, blockedUntil: string | null, locked: number): void {
    this.db
      .prepare(
        `INSERT INTO auth_throttle (subject, failures, last_failure_at, blocked_until, locked) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at,
           blocked_until = excluded.blocked_until, locked = excluded.locked`,
      )
      .run(subject, failures, at, blockedUntil, locked);
  }
}
