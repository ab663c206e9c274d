import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody, Slot, SlotEvent } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess, pm2Processes } from '../helpers/agent.js';
import { TerminalTestClient, upgradeStatus } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

let agent: AgentProcess;
const token = (): string => Math.random().toString(36).slice(2, 10);

beforeAll(async () => {
  agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_TICKET_TTL_S: '5' } });
});

afterAll(async () => {
  await agent?.destroy();
});

describe('a slot terminal', () => {
  let slot: Slot;
  beforeAll(async () => {
    slot = await agent.createSlot({ name: 'main' });
  });

  it('runs the login shell under PM2 with its own home and work dir', () => {
    expect(slot.state).toBe('running');
    expect(slot.argv[1]).toBe('-l');
    expect(slot.homeDir).toBe(join(agent.dataDir, 'slots', slot.id, 'home'));
    expect(slot.workDir).toBe(join(agent.dataDir, 'slots', slot.id, 'work'));
    expect(slot.pid).toBeGreaterThan(0);
  });

  it('echoes what a writable client types, and a read-only client sees it but cannot type', async () => {
    const marker = `slot-${token()}`;
    const writer = await agent.attach(slot.id, 'writable');
    const viewer = await agent.attach(slot.id, 'read-only');
    await writer.waitForPrompt();
    writer.type(`echo ${marker}-$((6*7))\r`);
    await writer.waitFor(`${marker}-42`);
    await viewer.waitFor(`${marker}-42`);

    viewer.type(`echo ignored-${marker}\r`);
    writer.type(`echo after-${marker}\r`);
    await writer.waitFor(`after-${marker}`);
    await viewer.waitFor(`after-${marker}`);
    expect(writer.output).not.toContain(`ignored-${marker}`);
    expect(writer.titles).toContain('main');

    const live = await agent.slot(slot.id);
    expect(live.viewers).toEqual({ writable: 1, readOnly: 1 });
    expect(live.lastActivityAt).not.toBeNull();
    writer.close();
    viewer.close();
  });

  it('runs the program in the slot work dir with the slot env, HOME and CLAUDE_CONFIG_DIR', async () => {
    const other = await agent.createSlot({ name: 'env-check', env: { GREETING: "it's here" } });
    const client = await agent.attach(other.id);
    await client.waitForPrompt();
    client.type(
      'echo "[$GREETING] pwd=$(pwd) home=$HOME cfg=$CLAUDE_CONFIG_DIR pm2=${pm_id:-none} size=$(stty size)"\r',
    );
    const out = await client.waitFor(/\[it's here\] pwd=.* size=\d+ \d+/);
    expect(out).toContain(`pwd=${other.workDir}`);
    expect(out).toContain(`home=${other.homeDir} `);
    expect(out).toContain(`cfg=${other.homeDir}/.claude`);
    // PM2's own variables do not leak into the slot.
    expect(out).toContain('pm2=none');
    expect(out).toContain('size=30 100');
    client.close();
  });

  it('replays the screen and scrollback to a client that attaches later', async () => {
    const marker = `replay-${token()}`;
    const first = await agent.attach(slot.id);
    await first.waitForPrompt();
    first.type(`for i in $(seq 1 60); do echo ${marker}-line-$i; done\r`);
    await first.waitFor(`${marker}-line-60`);
    first.close();
    await until(
      'the first client to have left',
      async () => (await agent.slot(slot.id)).viewers,
      (viewers) => viewers.writable === 0,
    );

    const second = await agent.attach(slot.id, 'read-only');
    await second.waitFor(`${marker}-line-60`);
    // Lines that scrolled off the visible screen come back too.
    expect(second.output).toContain(`${marker}-line-1\r`);
    second.close();
  });

  it('refuses a used, an expired or a foreign ticket with 401 before upgrading', async () => {
    const wsBase = agent.url.replace('http', 'ws');
    const used = await agent.ticket(slot.id);
    const client = await TerminalTestClient.open(`${wsBase}${used.path}`);
    client.close();
    const again = await upgradeStatus(`${wsBase}${used.path}`);
    expect(again.status).toBe(401);
    expect((JSON.parse(again.body) as ErrorBody).error.code).toBe('TERMINAL_TICKET_INVALID');

    const other = await agent.createSlot({ name: 'other-slot' });
    const foreign = await agent.ticket(other.id);
    const crossed = await upgradeStatus(
      `${wsBase}/api/v1/slots/${slot.id}/terminal?ticket=${encodeURIComponent(foreign.ticket)}`,
    );
    expect(crossed.status).toBe(401);

    const expiring = await agent.ticket(slot.id);
    expect(Date.parse(expiring.expiresAt) - Date.now()).toBeLessThanOrEqual(5000);
    // Wait for the expiry the agent announced, not a fixed span; probing the ticket itself would use it up.
    await until(
      'the ticket to expire',
      () => Date.now(),
      (now) => now > Date.parse(expiring.expiresAt),
    );
    const expired = await upgradeStatus(`${wsBase}${expiring.path}`);
    expect(expired.status).toBe(401);

    const unknown = await upgradeStatus(`${wsBase}/api/v1/slots/${slot.id}/terminal?ticket=nonsense`);
    expect(unknown.status).toBe(401);
  });

  it('accepts the ticket as the AuthToken of the opening message, as ttyd clients send it', async () => {
    const { ticket: value } = await agent.ticket(slot.id);
    const client = await TerminalTestClient.open(
      `${agent.url.replace('http', 'ws')}/api/v1/slots/${slot.id}/terminal`,
      { AuthToken: value, columns: 90, rows: 25 },
    );
    await client.waitForPrompt();
    client.close();

    const rejected = await TerminalTestClient.open(
      `${agent.url.replace('http', 'ws')}/api/v1/slots/${slot.id}/terminal`,
      { AuthToken: 'wrong', columns: 90, rows: 25 },
    );
    expect((await rejected.waitClosed()).code).toBe(4401);
  });
});

describe('slot lifecycle', () => {
  it('stops, starts and restarts a slot, logging each event', async () => {
    const slot = await agent.createSlot({ name: 'cycle' });
    const client = await agent.attach(slot.id);
    await client.waitForPrompt();

    const stopped = await agent.request<Slot>('POST', `/api/v1/slots/${slot.id}/stop`);
    expect(stopped.body.state).toBe('stopped');
    expect(stopped.body.pid).toBeNull();
    expect((await client.waitClosed()).code).toBe(4404);
    const refused = await agent.request<{ error: { code: string } }>('POST', `/api/v1/slots/${slot.id}/tickets`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('SLOT_NOT_RUNNING');

    const started = await agent.request<Slot>('POST', `/api/v1/slots/${slot.id}/start`);
    expect(started.body.state).toBe('running');
    const firstPid = started.body.pid;

    const restarted = await agent.request<Slot>('POST', `/api/v1/slots/${slot.id}/restart`);
    expect(restarted.body.state).toBe('running');
    expect(restarted.body.pid).not.toBe(firstPid);
    // Restarts an admin asks for are not crashes.
    expect(restarted.body.restarts).toBe(0);

    const fresh = await agent.attach(slot.id);
    await fresh.waitFor('[slotdeck] new session started');
    fresh.close();

    const events = (
      await agent.request<{ events: SlotEvent[] }>('GET', `/api/v1/slots/${slot.id}/events`)
    ).body.events.map((e) => e.kind);
    expect(events).toEqual(['restarted', 'started', 'stopped', 'started', 'created']);
  });

  it('creates a stopped slot when asked and keeps a work dir the admin chose', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'sd-work-'));
    const slot = await agent.createSlot({ name: 'chosen-dir', workDir, start: false });
    expect(slot.state).toBe('stopped');
    expect(slot.workDir).toBe(workDir);
    const started = await agent.request<Slot>('POST', `/api/v1/slots/${slot.id}/start`);
    expect(started.body.state).toBe('running');

    const deleted = await agent.request<{ removedPaths: string[]; keptPaths: string[] }>(
      'DELETE',
      `/api/v1/slots/${slot.id}?workDir=remove`,
    );
    expect(deleted.status).toBe(200);
    expect(deleted.body.keptPaths).toEqual([workDir]);
    expect(existsSync(workDir)).toBe(true);
    expect(existsSync(join(agent.dataDir, 'slots', slot.id))).toBe(false);
    rmSync(workDir, { recursive: true, force: true });
  });

  it('deletes a slot keeping its folders by default, and removes them when asked', async () => {
    const kept = await agent.createSlot({ name: 'keep-me' });
    const keepResult = await agent.request<{ keptPaths: string[] }>('DELETE', `/api/v1/slots/${kept.id}`);
    expect(keepResult.body.keptPaths).toEqual([kept.homeDir, kept.workDir]);
    expect(existsSync(kept.homeDir)).toBe(true);
    expect((await agent.request('GET', `/api/v1/slots/${kept.id}`)).status).toBe(404);

    const removed = await agent.createSlot({ name: 'remove-me' });
    await agent.request('DELETE', `/api/v1/slots/${removed.id}?workDir=remove`);
    expect(existsSync(removed.homeDir)).toBe(false);
    expect(existsSync(removed.workDir)).toBe(false);

    // PM2 has no process left for either slot, and the name is free again.
    const names = (await pm2Processes(agent)).map((p) => p.name);
    expect(names).not.toContain(`slot-${kept.id}`);
    expect(names).not.toContain(`slot-${removed.id}`);
    await agent.createSlot({ name: 'keep-me' });
    const list = (await agent.request<{ slots: Slot[] }>('GET', '/api/v1/slots')).body.slots;
    expect(list.filter((s) => s.name === 'keep-me')).toHaveLength(1);
  });

  it('seeds a new home from /etc/skel and keeps it across restarts', async () => {
    const slot = await agent.createSlot({ name: 'homey' });
    const client = await agent.attach(slot.id);
    await client.waitForPrompt();
    client.type('echo remember-me > ~/.claude/settings-note; ls -a ~ | tr "\\n" " "; echo\r');
    await client.waitFor(/\.claude/);
    client.close();
    await agent.request('POST', `/api/v1/slots/${slot.id}/restart`);
    expect(readFileSync(join(slot.homeDir, '.claude', 'settings-note'), 'utf8')).toBe('remember-me\n');
    if (existsSync('/etc/skel/.bashrc')) expect(existsSync(join(slot.homeDir, '.bashrc'))).toBe(true);
  });
});
