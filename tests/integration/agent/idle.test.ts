/**
 * Idle auto-stop on a real agent process, with a stand-in stop command (a script that appends a line to a file):
 * a 1-minute policy, checked every 200 ms. Terminal input through a real WebSocket client, a gateway request with a
 * real key, an admin POST and keep-awake each postpone the stop past the time it was due; silence then runs the
 * command exactly once. Real time throughout (no fake clock): each step waits for the countdown, so this file takes
 * about four minutes.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdleStatus, type CreatedKey, type User } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import type { TerminalTestClient } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

const PHASE_MS = 150_000;
/** The activity is sent this long before the stop is due: room for a loaded machine to deliver it in time. */
const MARGIN_S = 12;
const FAKE_TOKEN = 'sdk_admin_standInTokenThatMustNotBeStored0123';

let dir: string;
let stopLog: string;
let agent: AgentProcess;
let console_: TerminalTestClient;
let key: CreatedKey;

async function idle(): Promise<IdleStatus> {
  const response = await agent.request<unknown>('GET', '/api/v1/idle');
  expect(response.status).toBe(200);
  return IdleStatus.parse(response.body);
}

const stopLines = (): string[] =>
  existsSync(stopLog) ? readFileSync(stopLog, 'utf8').split('\n').filter(Boolean) : [];

/** Waits (polling the status, which is not activity) until the stop is at most MARGIN_S away, and returns it. */
async function nearlyDue(): Promise<IdleStatus> {
  return until(
    `the idle countdown to reach ${MARGIN_S} s`,
    idle,
    (s) => s.state === 'counting' && s.secondsLeft !== null && s.secondsLeft <= MARGIN_S,
    { timeoutMs: 90_000, everyMs: 250 },
  );
}

/** Waits until the time the stop was due has passed by a few of the agent's checks, then says what happened. */
async function afterDue(due: IdleStatus): Promise<IdleStatus> {
  const dueAt = Date.parse(due.stopAt!);
  while (Date.now() < dueAt + 1500) await sleep(100);
  return idle();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-idle-it-'));
  stopLog = join(dir, 'stops.log');
  const standIn = join(dir, 'stand-in-stop.sh');
  // Prints a secret-looking line too: the status must show it redacted.
  writeFileSync(
    standIn,
    `#!/bin/sh\necho "stop $(date -u +%FT%TZ)" >> "$1"\necho "stand-in poweroff (token=${FAKE_TOKEN})"\n`,
  );
  chmodSync(standIn, 0o755);
  agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_IDLE_STOP_COMMAND: JSON.stringify([standIn, stopLog]),
      SLOTDECK_AGENT_IDLE_TICK_MS: '200',
    },
  });
  const user = await agent.request<User>('POST', '/api/v1/users', { username: 'idle-user' });
  const created = await agent.request<CreatedKey>('POST', `/api/v1/users/${user.body.id}/keys`, { name: 'k' });
  expect(created.status).toBe(201);
  key = created.body;
  const slot = await agent.createSlot({ name: 'idle-console' });
  console_ = await agent.attach(slot.id);
  await console_.waitForPrompt();
}, 60_000);

afterAll(async () => {
  console_?.close();
  await agent?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('idle auto-stop with a 1-minute policy (stand-in stop command)', () => {
  it('shows the countdown once the policy is on', async () => {
    const before = await idle();
    expect(before).toMatchObject({ state: 'off', policy: { enabled: false }, lastStop: null });
    const set = await agent.request<unknown>('PUT', '/api/v1/idle', { enabled: true, minutes: 1 });
    expect(set.status).toBe(200);
    const status = IdleStatus.parse(set.body);
    expect(status).toMatchObject({ state: 'counting', policy: { enabled: true, minutes: 1 } });
    expect(status.secondsLeft).toBeGreaterThan(50);
    expect(status.stopCommand).toContain('stand-in-stop.sh');
  });

  it(
    'terminal input through a WebSocket client postpones the stop',
    async () => {
      const due = await nearlyDue();
      console_.type('echo idle-$((6*7))\r');
      await console_.waitFor('idle-42', 10_000);
      const after = await until('terminal input to count', idle, (s) => s.lastActivity === 'terminal');
      expect(Date.parse(after.stopAt!)).toBeGreaterThan(Date.parse(due.stopAt!));
      const past = await afterDue(due);
      expect(stopLines()).toEqual([]);
      expect(past).toMatchObject({ state: 'counting', lastActivity: 'terminal', lastStop: null });
    },
    PHASE_MS,
  );

  it(
    'a gateway request with a real key postpones the stop',
    async () => {
      const due = await nearlyDue();
      const response = await fetch(`${agent.gatewayUrl}/v1/me/quota`, { headers: { 'x-api-key': key.secret } });
      expect(response.status).toBe(200);
      const past = await afterDue(due);
      expect(stopLines()).toEqual([]);
      expect(past).toMatchObject({ state: 'counting', lastActivity: 'gateway', lastStop: null });
    },
    PHASE_MS,
  );

  it(
    'an admin POST postpones the stop',
    async () => {
      const due = await nearlyDue();
      expect((await agent.request('POST', '/api/v1/users', { username: 'late-user' })).status).toBe(201);
      const past = await afterDue(due);
      expect(stopLines()).toEqual([]);
      expect(past).toMatchObject({ state: 'counting', lastActivity: 'admin', lastStop: null });
    },
    PHASE_MS,
  );

  it(
    'keep-awake postpones the stop, and silence after it runs the stop command exactly once',
    async () => {
      const due = await nearlyDue();
      const kept = await agent.request<unknown>('POST', '/api/v1/idle/keep-awake', { minutes: 1 });
      expect(kept.status).toBe(200);
      const keptStatus = IdleStatus.parse(kept.body);
      expect(keptStatus.keepAwakeUntil).not.toBeNull();
      const past = await afterDue(due);
      expect(stopLines()).toEqual([]);
      expect(past).toMatchObject({ state: 'counting', lastActivity: 'keep-awake' });

      // Silence: nothing touches the host until the command has run.
      const stopping = await until('the idle stop', idle, (s) => s.state === 'stopping' && s.lastStop?.exitCode === 0, {
        timeoutMs: 90_000,
        everyMs: 500,
      });
      expect(Date.parse(stopping.lastStop!.at)).toBeGreaterThanOrEqual(Date.parse(keptStatus.stopAt!));
      expect(stopping.lastStop!.output).toContain('stand-in poweroff');
      expect(stopping.lastStop!.output).not.toContain(FAKE_TOKEN.slice(12));
      expect(stopLines()).toHaveLength(1);

      // The agent keeps checking five times a second; the command never runs again.
      await sleep(3000);
      expect(stopLines()).toHaveLength(1);
      expect(await idle()).toMatchObject({ state: 'stopping', lastStop: { exitCode: 0 } });
      expect(agent.logs.join('\n')).toContain('idle auto-stop: the stop command succeeded');
      expect(agent.logs.join('\n')).not.toContain(FAKE_TOKEN);
    },
    PHASE_MS,
  );
});
