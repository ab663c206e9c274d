import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../../../remote-agent/src/db/database.js';
import { AuditLog } from '../../../../remote-agent/src/modules/audit/audit-log.js';

let dir: string;
let db: Db;
let clock: number;
let audit: AuditLog;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'audit-'));
  db = openDatabase(join(dir, 'agent.db'));
  clock = Date.parse('2026-06-01T00:00:00Z');
  audit = new AuditLog(db, () => clock);
});
afterEach(() => {
  audit.stop();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function read(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

describe('AuditLog', () => {
  it('records an entry with its actor, outcome and scalar detail, and lists it', () => {
    audit.record({
      actor: { type: 'user', id: 'u1' },
      action: 'auth.sign_in_failed',
      target: 'u1',
      outcome: 'failure',
      ip: '203.0.113.5',
      userAgent: 'curl/8',
      detail: { method: 'password', attempt: 3 },
    });
    const { entries, nextCursor } = audit.list();
    expect(nextCursor).toBeNull();
    expect(entries).toEqual([
      {
        id: expect.any(String) as string,
        at: '2026-06-01T00:00:00.000Z',
        actor: { type: 'user', id: 'u1' },
        action: 'auth.sign_in_failed',
        target: 'u1',
        outcome: 'failure',
        ip: '203.0.113.5',
        userAgent: 'curl/8',
        detail: { method: 'password', attempt: 3 },
      },
    ]);
  });

  it('filters by time, actor and action, and pages newest first with a cursor', () => {
    for (let i = 0; i < 7; i += 1) {
      clock += 60_000;
      audit.record({
        actor: { type: 'user', id: i % 2 ? 'odd' : 'even' },
        action: i < 5 ? 'auth.sign_in' : 'key.created',
      });
    }
    expect(audit.list({ actor: 'odd' }).entries).toHaveLength(3);
    expect(audit.list({ action: 'key.created' }).entries).toHaveLength(2);
    const since = '2026-06-01T00:03:00.000Z';
    const until = '2026-06-01T00:05:00.000Z';
    expect(audit.list({ since, until }).entries.map((e) => e.at)).toEqual([
      '2026-06-01T00:04:00.000Z',
      '2026-06-01T00:03:00.000Z',
    ]);
    const first = audit.list({ limit: 3 });
    const second = audit.list({ limit: 3, cursor: first.nextCursor! });
    const third = audit.list({ limit: 3, cursor: second.nextCursor! });
    const ids = [...first.entries, ...second.entries, ...third.entries].map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(7);
    expect(third.nextCursor).toBeNull();
  });

  it('exports JSON lines and CSV oldest first, with CSV cells that cannot run as spreadsheet formulas', async () => {
    audit.record({ actor: { type: 'admin', id: 'admin' }, action: 'user.approved', target: '=HYPERLINK("x")' });
    audit.record({ actor: { type: 'anonymous', id: null }, action: 'share.opened', detail: { note: 'a,b' } });
    const lines = (await read(audit.exportStream({}, 'jsonl'))).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { action: string }).action)).toEqual(['user.approved', 'share.opened']);
    const csv = (await read(audit.exportStream({ action: 'user.approved' }, 'csv'))).trim().split('\n');
    expect(csv[0]).toBe('id,at,actor_type,actor_id,action,target,outcome,ip,user_agent,detail');
    expect(csv).toHaveLength(2);
    expect(csv[1]).toContain(`"'=HYPERLINK(""x"")"`);
  });

  it('neutralises a formula after leading spaces and a leading | or % in CSV cells (some imports trim spaces)', async () => {
    const dangerous = [' =HYPERLINK("x")', '\t+1', '|cmd', '%0A', '  @SUM(A1)', '\r-2'];
    for (const userAgent of dangerous)
      audit.record({ actor: { type: 'anonymous', id: null }, action: 'auth.sign_in_failed', userAgent });
    audit.record({ actor: { type: 'anonymous', id: null }, action: 'auth.sign_in_failed', userAgent: 'Mozilla/5.0' });
    const csv = await read(audit.exportStream({ action: 'auth.sign_in_failed' }, 'csv'));
    const agents = audit
      .list({ action: 'auth.sign_in_failed' })
      .entries.map((e) => e.userAgent!)
      .reverse();
    for (const agent of agents.slice(0, dangerous.length)) {
      const cell = /[",\n\r]/.test(`'${agent}`) ? `"'${agent.replace(/"/g, '""')}"` : `'${agent}`;
      expect(csv).toContain(`,${cell},`);
    }
    expect(csv).toContain(',Mozilla/5.0,');
  });

  it('exports more entries than one page in order', async () => {
    const insert = db.transaction(() => {
      for (let i = 0; i < 2500; i += 1) audit.record({ actor: { type: 'system', id: null }, action: 'slot.started' });
    });
    insert();
    const lines = (await read(audit.exportStream({}, 'jsonl'))).trim().split('\n');
    expect(lines).toHaveLength(2500);
    const ids = lines.map((l) => Number((JSON.parse(l) as { id: string }).id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('prunes entries older than a year, at start and on its timer', () => {
    audit.record({ actor: { type: 'system', id: null }, action: 'slot.started' });
    clock += 366 * 24 * 60 * 60 * 1000;
    audit.record({ actor: { type: 'system', id: null }, action: 'slot.stopped' });
    audit.startPruning(60_000);
    expect(audit.list().entries.map((e) => e.action)).toEqual(['slot.stopped']);
  });
});
