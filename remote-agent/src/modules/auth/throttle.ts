import type { Db } from '../../db/database.js';
import { AgentErrorCode } from '../../contract/index.js';
import { AppError } from '../../errors.js';

/** Failures before backoff starts (NIST 800-63B 5.2.2 allows up to 100 before lockout). */
export const BACKOFF_AFTER = 5;
export const BACKOFF_MAX_MS = 15 * 60_000;
export const LOCKOUT_AFTER = 100;
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

interface Row {
  subject: string;
  failures: number;
  last_failure_at: string;
  blocked_until: string | null;
  locked: number;
}

/**
 * Failed sign-ins per account (`user:<id>`, or `login:<name>` for names that match no account, so both answer
 * alike) and per address (`ip:<address>`): backoff doubling from the 5th failure of an account (1 s, 2 s, … at most
 * 15 min), lockout at 100 (until an admin unlocks or an invite is used), and a window per address.
 */
export class LoginThrottle {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws 423 AUTH_ACCOUNT_LOCKED or 429 AUTH_THROTTLED (with Retry-After) before any password is checked. */
  check(account: string, address: string | null): void {
    const now = this.now();
    const row = this.row(account);
    if (row?.locked)
      throw new AppError(
        AgentErrorCode.AUTH_ACCOUNT_LOCKED,
        423,
        'This account is locked after too many failed sign-ins. Ask your administrator to unlock it or to send you an invite link.',
      );
    const waits: number[] = [];
    if (row?.blocked_until) waits.push(Date.parse(row.blocked_until) - now);
    if (address) {
      const byAddress = this.row(`ip:${address}`);
      if (byAddress?.blocked_until) waits.push(Date.parse(byAddress.blocked_until) - now);
    }
    const wait = Math.max(0, ...waits);
    if (wait > 0) throw new ThrottledError(Math.ceil(wait / 1000));
  }

  failure(account: string, address: string | null): void {
    const now = this.now();
    const at = new Date(now).toISOString();
    const row = this.row(account);
    const failures = (row?.failures ?? 0) + 1;
    const locked = failures >= LOCKOUT_AFTER ? 1 : (row?.locked ?? 0);
    const blockedUntil =
      failures >= BACKOFF_AFTER
        ? new Date(now + Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(failures - BACKOFF_AFTER, 20))).toISOString()
        : null;
    this.upsert(account, failures, at, blockedUntil, locked);
    if (address) {
      const subject = `ip:${address}`;
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
    const row = this.row(account);
    return { failures: row?.failures ?? 0, locked: row?.locked === 1 };
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
