import { existsSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess } from '../helpers/agent.js';

let agent: AgentProcess;

beforeAll(async () => {
  agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_LOG_LEVEL: 'debug' } });
});

afterAll(async () => {
  await agent?.destroy();
});

describe('secrets', () => {
  it('never writes the admin token, tickets or slot env values to the log, even at debug level', async () => {
    const secretValue = `sk-secret-${Math.random().toString(36).slice(2)}`;
    const slot = await agent.createSlot({ name: 'secretive', env: { API_KEY: secretValue } });
    const { ticket } = await agent.ticket(slot.id);
    // A used ticket in a URL, a wrong token, a right one: all of it goes through the request log.
    const client = await agent.attach(slot.id);
    await client.waitForPrompt();
    client.close();
    await fetch(`${agent.url}/api/v1/slots/${slot.id}/terminal?ticket=${encodeURIComponent(ticket)}`);
    await fetch(`${agent.url}/api/v1/slots`, { headers: { authorization: 'Bearer not-the-token' } });
    await agent.request('GET', `/api/v1/slots/${slot.id}`);
    await agent.stop();

    const log = agent.logs.join('\n');
    expect(log).toContain('"url":"/api/v1/slots/');
    expect(log).not.toContain(agent.token);
    expect(log).not.toContain(ticket);
    expect(log).not.toContain(secretValue);
    expect(log).not.toContain('not-the-token');
    await agent.launch();
  });

  it('keeps its secrets and the slot env files private to the agent user', async () => {
    const slot = await agent.createSlot({ name: 'private', env: { TOKEN: 'x' } });
    const mode = (path: string): number => statSync(path).mode & 0o777;
    expect(mode(agent.dataDir)).toBe(0o700);
    expect(mode(join(agent.dataDir, 'secrets'))).toBe(0o700);
    expect(mode(join(agent.dataDir, 'secrets', 'admin-token'))).toBe(0o600);
    expect(mode(join(agent.dataDir, 'agent.db'))).toBe(0o600);
    expect(mode(join(agent.dataDir, 'run'))).toBe(0o700);
    expect(mode(join(agent.dataDir, 'slots', slot.id, 'env.sh'))).toBe(0o600);
    expect(readFileSync(join(agent.dataDir, 'slots', slot.id, 'env.sh'), 'utf8')).toContain("export TOKEN='x'");
    expect(mode(slot.homeDir)).toBe(0o700);
  });

  it("keeps the program's exit record private too (it was 0644)", async () => {
    const slot = await agent.createSlot({
      name: 'exits',
      command: { preset: 'custom', command: '/bin/sh', args: ['-c', 'exit 3'] },
    });
    // Without setup-host, slots run as the agent's own user, and the slot says so.
    expect(slot.account).toBeNull();
    const file = join(agent.dataDir, 'slots', slot.id, 'last-exit');
    const deadline = Date.now() + 10_000;
    while (!existsSync(file) && Date.now() < deadline) await sleep(50);
    expect(readFileSync(file, 'utf8')).toMatch(/^3 \d+/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
