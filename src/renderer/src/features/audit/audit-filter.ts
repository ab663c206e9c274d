import type { AuditEntry } from '../../../../shared/ipc/contract';

/** The actions the agent records (design: dot.snake), for the filter's list. */
export const AUDIT_ACTIONS = [
  'auth.sign_in',
  'auth.sign_in_failed',
  'auth.sign_out',
  'auth.password_changed',
  'auth.invite_created',
  'auth.invite_used',
  'auth.two_factor_enabled',
  'auth.two_factor_disabled',
  'auth.github_linked',
  'session.revoked',
  'user.approved',
  'key.created',
  'key.revoked',
  'key.rotated',
  'key.updated',
  'share.created',
  'share.opened',
  'share.revoked',
  'slot.started',
  'slot.stopped',
  'slot.restarted',
  'settings.updated',
] as const;

export interface AuditFilterDraft {
  action: string;
  /** A user id, `admin`, or empty for anyone. */
  actor: string;
  /** `<input type="datetime-local">` values (local time), empty for open-ended. */
  from: string;
  to: string;
}

export const EMPTY_AUDIT_FILTER: AuditFilterDraft = { action: '', actor: '', from: '', to: '' };

export interface AuditQuery {
  action?: string;
  actor?: string;
  since?: string;
  until?: string;
}

const toIso = (local: string): string | null => {
  const time = new Date(local).getTime();
  return Number.isNaN(time) ? null : new Date(time).toISOString();
};

/** The agent's filter from the fields, or what is wrong with them. */
export function auditQuery(draft: AuditFilterDraft): { query: AuditQuery } | { problem: string } {
  const query: AuditQuery = {};
  if (draft.action) query.action = draft.action;
  if (draft.actor) query.actor = draft.actor;
  if (draft.from) {
    const since = toIso(draft.from);
    if (!since) return { problem: 'The “from” time is not a date and time.' };
    query.since = since;
  }
  if (draft.to) {
    const until = toIso(draft.to);
    if (!until) return { problem: 'The “to” time is not a date and time.' };
    query.until = until;
  }
  if (query.since && query.until && query.since >= query.until)
    return { problem: 'The “from” time must be before the “to” time.' };
  return { query };
}

/** Who did it, in words: the user's name where known. */
export function actorLabel(actor: AuditEntry['actor'], names: Record<string, string>): string {
  // An admin call names the panel's host profile that sent it; `admin token` is a client that named nobody (curl).
  if (actor.type === 'admin')
    return !actor.id || actor.id === 'admin' || actor.id === 'admin token'
      ? (actor.id ?? 'admin')
      : `${actor.id} (panel)`;
  if (actor.type === 'system') return 'system';
  if (actor.type === 'anonymous') return actor.id ? `anonymous (${actor.id})` : 'anonymous';
  return actor.id ? (names[actor.id] ?? actor.id) : 'user';
}

/** A short, readable browser name from a User-Agent string (no fingerprinting: just what a person recognises). */
export function browserLabel(userAgent: string | null): string {
  if (!userAgent) return '—';
  const os = /Windows/.test(userAgent)
    ? 'Windows'
    : /Mac OS X|Macintosh/.test(userAgent)
      ? 'macOS'
      : /Android/.test(userAgent)
        ? 'Android'
        : /iPhone|iPad/.test(userAgent)
          ? 'iOS'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : null;
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /Firefox\//.test(userAgent)
      ? 'Firefox'
      : /Chrome\/|Chromium\//.test(userAgent)
        ? 'Chrome'
        : /Safari\//.test(userAgent)
          ? 'Safari'
          : /curl\//.test(userAgent)
            ? 'curl'
            : null;
  if (!browser && !os) return userAgent.slice(0, 40);
  return [browser, os].filter(Boolean).join(' on ');
}
