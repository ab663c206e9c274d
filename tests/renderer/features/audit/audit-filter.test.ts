import { describe, expect, it } from 'vitest';
import {
  actorLabel,
  auditQuery,
  browserLabel,
  EMPTY_AUDIT_FILTER,
} from '../../../../src/renderer/src/features/audit/audit-filter';
import { AuditFilterQuery } from '../../../../remote-agent/src/contract/index';

describe('the audit log’s filters', () => {
  it('sends only the filters set, times as ISO, in a shape the agent accepts', () => {
    expect(auditQuery(EMPTY_AUDIT_FILTER)).toEqual({ query: {} });
    const result = auditQuery({ action: 'share.opened', actor: 'u_0123456789', from: '2026-12-01T08:00', to: '' });
    expect(result).toMatchObject({ query: { action: 'share.opened', actor: 'u_0123456789' } });
    const query = 'query' in result ? result.query : {};
    expect(new Date(query.since!).getTime()).toBe(new Date('2026-12-01T08:00').getTime());
    expect(AuditFilterQuery.safeParse(query).success).toBe(true);
  });

  it('refuses a range that ends before it starts', () => {
    expect(auditQuery({ ...EMPTY_AUDIT_FILTER, from: '2026-12-02T00:00', to: '2026-12-01T00:00' })).toEqual({
      problem: 'The “from” time must be before the “to” time.',
    });
  });

  it('names who did it and their browser in words', () => {
    expect(actorLabel({ type: 'user', id: 'u_0123456789' }, { u_0123456789: 'ada' })).toBe('ada');
    expect(actorLabel({ type: 'admin', id: null }, {})).toBe('admin');
    expect(actorLabel({ type: 'admin', id: 'This computer' }, {})).toBe('This computer (panel)');
    expect(actorLabel({ type: 'admin', id: 'admin token' }, {})).toBe('admin token');
    expect(actorLabel({ type: 'anonymous', id: null }, {})).toBe('anonymous');
    expect(
      browserLabel(
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36',
      ),
    ).toBe('Chrome on Linux');
    expect(browserLabel(null)).toBe('—');
  });
});
