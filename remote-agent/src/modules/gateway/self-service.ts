import type { FastifyReply } from 'fastify';
import {
  OVERHEAD_HEADER,
  type MeQuota,
  type MeUsage,
  type QuotaStatus,
  type UsageTotals,
} from '../../contract/index.js';
import type { Admission, Caller } from './admission.js';
import type { GatewayDeps } from './deps.js';
import { round2 } from './wire.js';

/** The caller's own usage and quotas (GET /v1/me/usage, /v1/me/quota). */
export class SelfService {
  private readonly now: () => number;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
  }

  meUsage({ caller, limitHeaders }: Admission, query: unknown, reply: FastifyReply): MeUsage | string {
    const now = this.now();
    const day = new Date(now);
    const dayStart = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
    const monthStart = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1);
    const totals = (since: number): UsageTotals => this.deps.usage.totals(caller.userId, null, since);
    const usage: MeUsage = {
      user: { id: caller.userId, username: caller.username },
      key: caller.key ? { id: caller.key.keyId, name: caller.key.name, prefix: caller.key.prefix } : null,
      today: totals(dayStart),
      last5h: totals(now - 5 * 3_600_000),
      month: totals(monthStart),
    };
    reply.headers(limitHeaders).header(OVERHEAD_HEADER, round2(reply.elapsedTime)).header('cache-control', 'no-store');
    if ((query as { format?: string } | undefined)?.format === 'line') {
      reply.type('text/plain; charset=utf-8');
      return `${statusLine(usage, this.quotaList(caller))}\n`;
    }
    return usage;
  }
  meQuota({ caller, limitHeaders }: Admission, reply: FastifyReply): MeQuota {
    reply.headers(limitHeaders).header(OVERHEAD_HEADER, round2(reply.elapsedTime)).header('cache-control', 'no-store');
    return {
      quotas: this.quotaList(caller),
      rateLimit: { requestsPerMinute: caller.requestsPerMinute, concurrentStreams: caller.concurrentStreams },
    };
  }
  private quotaList(caller: Caller): MeQuota['quotas'] {
    const statuses = [
      ...this.deps.quotas.status('user', caller.userId),
      ...(caller.key ? this.deps.quotas.status('key', caller.key.keyId) : []),
    ];
    return statuses.map(withRemaining);
  }
}

/** A quota's status with what it leaves (the portal's quota page shows the same). */
export function withRemaining(quota: QuotaStatus): MeQuota['quotas'][number] {
  return {
    ...quota,
    remainingTokens: quota.maxTokens === null ? null : Math.max(0, quota.maxTokens - quota.usedTokens),
    remainingCostUsd: quota.maxCostUsd === null ? null : Math.max(0, quota.maxCostUsd - quota.usedCostUsd),
  };
}

function compact(tokens: number): string {
  if (tokens >= 1e6) return `${(tokens / 1e6).toFixed(1)}M`;
  if (tokens >= 1e3) return `${(tokens / 1e3).toFixed(1)}k`;
  return String(tokens);
}

/** One line for a shell prompt or Claude Code's status line. */
function statusLine(usage: MeUsage, quotas: MeQuota['quotas']): string {
  const part = (label: string, totals: UsageTotals): string =>
    `${label} ${compact(totals.totalTokens)} tok $${totals.costUsd.toFixed(2)}`;
  const parts = [usage.user.username, part('today', usage.today), part('5h', usage.last5h), part('month', usage.month)];
  for (const quota of quotas) {
    const left =
      quota.remainingTokens !== null
        ? `${compact(quota.remainingTokens)} tok`
        : quota.remainingCostUsd !== null
          ? `$${quota.remainingCostUsd.toFixed(2)}`
          : '';
    parts.push(`${quota.window} left ${left}${quota.exceeded ? ' (used up)' : ''}`);
  }
  return parts.join(' · ');
}
