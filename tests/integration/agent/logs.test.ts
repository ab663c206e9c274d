/**
 * Logs on a real agent (dist/cli.js serve) under a real PM2, with small rotation limits: the agent's own file rotates
 * and keeps secrets out, a slot's PM2 stderr (its holder refusing a second session over a live one) is read in the
 * viewer, rotated by copy-and-truncate while PM2 holds it open, and an admin call lands in the audit log.
 */
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditList, LogPage, LogSourceList } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess, pm2 } from '../helpers/agent.js';

const MAX_BYTES = 65_536;
let agent: AgentProcess;
let writer = false;

async function until<T>(what: string, probe: () => Promise<T> | T, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(150);
  }
}

const logsDir = (): string => join(agent.dataDir, 'logs');

beforeAll(async () => {
  agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_LOG_MAX_BYTES: String(MAX_BYTES),
      SLOTDECK_AGENT_LOG_MAX_FILES: '3',
      SLOTDECK_AGENT_LOG_CHECK_INTERVAL_MS: '300',
      SLOTDECK_AGENT_CRASH_MAX_RESTARTS: '50',
    },
  });
});

afterAll(async () => {
  if (writer) await pm2(agent, ['delete', 'logs-writer']).catch(() => undefined);
  await agent?.destroy();
});

describe('the agent’s own log', () => {
  it('is written to <data dir>/logs/agent.log, rotated at the size limit, with tickets and the token redacted', async () => {
    const token = agent.token;
    // Each refused request is one info line with its (redacted) URL.
    for (let i = 0; i < 500; i += 1)
      await agent.request('GET', `/api/v1/slots/nosuchslot${i % 10}?ticket=tk-secret-${i}`);
    const files = readdirSync(logsDir()).filter((name) => name.startsWith('agent.log'));
    expect(files.sort()).toEqual(['agent.log', 'agent.log.1', 'agent.log.2'].slice(0, files.length));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const name of files) {
      expect(statSync(join(logsDir(), name)).size).toBeLessThanOrEqual(MAX_BYTES);
      const text = readFileSync(join(logsDir(), name), 'utf8');
      expect(text).not.toContain('tk-secret-');
      expect(text).not.toContain(token);
    }
    expect(readFileSync(join(logsDir(), 'agent.log'), 'utf8')).toContain('ticket=[redacted]');

    // The viewer pages back from the live file into the rotated one without a gap.
    const newest = (await agent.request<LogPage>('GET', '/api/v1/logs/agent?limit=50&q=nosuchslot')).body;
    expect(newest.lines).toHaveLength(50);
    const older = (
      await agent.request<LogPage>(
        'GET',
        `/api/v1/logs/agent?limit=400&q=nosuchslot&before=${encodeURIComponent(newest.before!)}`,
      )
    ).body;
    expect(older.lines).toHaveLength(400);
    expect(older.lines.at(-1)!.time! <= newest.lines[0]!.time!).toBe(true);
  });
});

describe('a slot’s PM2 output', () => {
  it('is read in the viewer, and rotated by copy-and-truncate while PM2 keeps appending to it', async () => {
    const slot = await agent.createSlot({ name: 'chatty', start: false });
    const outLog = join(logsDir(), `slot-${slot.id}.out.log`);
    appendFileSync(outLog, `${'2026-12-01T00:00:00: filler line of an older run\n'.repeat(1200)}`);
    // Just under the limit: the writer's lines below take it over.
    expect(statSync(outLog).size).toBeLessThan(MAX_BYTES);
    // The agent's own PM2 daemon writes a program's numbered lines into that file (O_APPEND, with its time prefix),
    // as it does for a slot's holder; the name is not slot-*, so the reconciler leaves it alone.
    await pm2(agent, [
      'start',
      '/bin/sh',
      '--name',
      'logs-writer',
      '--time',
      '--output',
      outLog,
      '--error',
      `${outLog}.stderr`,
      '--',
      '-c',
      'i=0; while :; do i=$((i+1)); echo "writer line $i"; sleep 0.01; done',
    ]);
    writer = true;
    await until('the rotation', () => existsSync(`${outLog}.1`), Boolean);
    await sleep(500);
    const live = readFileSync(outLog);
    // PM2 opened the file with O_APPEND: after the truncate its lines start at offset 0, with no hole of zeros.
    expect(live.includes(0)).toBe(false);
    expect(live.toString()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: writer line \d+\n/);
    const rotated = readFileSync(`${outLog}.1`, 'utf8');
    expect(rotated).toContain('filler line of an older run');
    // Lines go on across the two files: the first of the live file follows the last of the rotated one closely.
    const lastRotated = Number(/writer line (\d+)\n$/.exec(rotated)![1]);
    const firstLive = Number(/writer line (\d+)/.exec(live.toString())![1]);
    expect(firstLive).toBeGreaterThan(lastRotated);
    expect(firstLive - lastRotated).toBeLessThan(20);

    const { sources } = (await agent.request<LogSourceList>('GET', '/api/v1/logs')).body;
    expect(sources.find((s) => s.id === `slot-${slot.id}.out`)).toMatchObject({ label: 'chatty (output)' });
    const page = (await agent.request<LogPage>('GET', `/api/v1/logs/slot-${slot.id}.out?limit=5`)).body;
    expect(page.lines).toHaveLength(5);
    expect(page.lines.every((l) => /^writer line \d+$/.test(l.text) && l.level === 'info')).toBe(true);
    // Follow: the lines after the page's end are new ones, in order.
    await sleep(300);
    const next = (
      await agent.request<LogPage>('GET', `/api/v1/logs/slot-${slot.id}.out?after=${encodeURIComponent(page.after)}`)
    ).body;
    const numbers = [...page.lines, ...next.lines].map((l) => Number(/\d+$/.exec(l.text)![0]));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    const filler = (await agent.request<LogPage>('GET', `/api/v1/logs/slot-${slot.id}.out?limit=3&q=filler`)).body;
    expect(filler.lines.map((l) => l.text)).toEqual(Array(3).fill('filler line of an older run'));
  });
});

describe('the audit of admin calls', () => {
  it('records a slot’s creation with the host profile the panel named', async () => {
    const created = await agent.request<{ id: string }>(
      'POST',
      '/api/v1/slots',
      { name: 'audited', start: false },
      { 'x-slotdeck-actor': encodeURIComponent('Ops laptop') },
    );
    expect(created.status).toBe(201);
    const { entries } = (await agent.request<AuditList>('GET', '/api/v1/audit?limit=20')).body;
    // The new slot's id is only in the answer: it is the row's target.
    expect(entries.find((e) => e.action === 'POST /api/v1/slots')).toMatchObject({
      actor: { type: 'admin', id: 'Ops laptop' },
      target: created.body.id,
      outcome: 'success',
      ip: '127.0.0.1',
    });
    // The test's own calls name nobody: "admin token".
    expect(entries.some((e) => e.actor.id === 'admin token' && e.action === 'POST /api/v1/slots')).toBe(true);
  });
});
