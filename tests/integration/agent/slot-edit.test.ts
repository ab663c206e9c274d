import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey, ErrorBody, Slot, User } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';

let agent: AgentProcess;
let seq = 0;
const marker = (): string => Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  agent = await AgentProcess.start();
});

afterAll(async () => {
  await agent?.destroy();
});

const edit = (id: string, body: unknown, headers?: Record<string, string>) =>
  agent.request<Slot & ErrorBody>('PATCH', `/api/v1/slots/${id}`, body, headers);

async function createUser(): Promise<User> {
  return (await agent.request<User>('POST', '/api/v1/users', { username: `editor${++seq}` })).body;
}

/** A program that says who it is and then waits, so its output can be read from the screen. */
const saying = (word: string) => ({
  preset: 'custom' as const,
  command: 'sh',
  args: ['-c', `echo ${word}-$((6*7)) "$GREETING"; exec sleep 600`],
});

describe('editing a slot', () => {
  it("runs the new command once the slot's command is edited, with no delete and recreate", async () => {
    const first = `first-${marker()}`;
    const second = `second-${marker()}`;
    const slot = await agent.createSlot({ name: 'editable', command: saying(first) });
    const before = await agent.attach(slot.id);
    await before.waitFor(`${first}-42`);
    before.close();
    const holder = (await agent.slot(slot.id)).pid;

    const edited = await edit(slot.id, { command: saying(second), env: { GREETING: 'hello from the edit' } });
    expect(edited.status).toBe(200);
    expect(edited.body.id).toBe(slot.id);
    expect(edited.body.argv).toEqual(['sh', '-c', `echo ${second}-$((6*7)) "$GREETING"; exec sleep 600`]);
    expect(edited.body.env).toEqual({ GREETING: 'hello from the edit' });

    const after = await agent.attach(slot.id);
    await after.waitFor(`${second}-42 hello from the edit`);
    after.close();
    expect((await agent.slot(slot.id)).pid).not.toBe(holder);
    const [event] = await agent.events(slot.id);
    expect(event!.kind).toBe('restarted');
    const edits = (await agent.events(slot.id)).filter((e) => e.kind === 'edited');
    expect(edits[0]!.message).toMatch(/command sh -c .*; environment GREETING; restarting to apply it/);
    // Env values may be secrets: the event names the variables only.
    expect(edits[0]!.message).not.toContain('hello from the edit');
  });

  it('renames a running slot without restarting its program', async () => {
    const slot = await agent.createSlot({ name: 'old-name', command: saying('rename') });
    const client = await agent.attach(slot.id);
    await client.waitFor('rename-42');
    client.close();
    const holder = (await agent.slot(slot.id)).pid;
    const renamed = await edit(slot.id, { name: 'new-name' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe('new-name');
    expect(renamed.body.pid).toBe(holder);
    expect((await agent.request<{ slots: Slot[] }>('GET', '/api/v1/slots?name=new-name')).body.slots).toHaveLength(1);
  });

  it('keeps a stopped slot stopped: the edit applies at its next start', async () => {
    const slot = await agent.createSlot({ name: 'parked', start: false, command: saying('parked') });
    const edited = await edit(slot.id, { command: saying('parked-edited'), memoryLimitMb: 256 });
    expect(edited.body).toMatchObject({ state: 'stopped', memoryLimitMb: 256, pid: null });
    expect((await agent.events(slot.id))[0]!.message).toMatch(/applies at its next start/);
    await agent.request('POST', `/api/v1/slots/${slot.id}/start`);
    const client = await agent.attach(slot.id);
    await client.waitFor('parked-edited-42');
    client.close();
  });

  it('meters a slot through its owner once edited so, and stops when told, revoking the key', async () => {
    const owner = await createUser();
    const slot = await agent.createSlot({ name: 'to-meter', start: false });
    const metered = await edit(slot.id, { ownerId: owner.id, metered: true, resetHome: true });
    expect(metered.status).toBe(200);
    expect(metered.body.ownerId).toBe(owner.id);
    expect(metered.body.metered?.keyPrefix).toMatch(/^sk_user_/);
    await agent.request('POST', `/api/v1/slots/${slot.id}/start`);
    const env = readFileSync(join(agent.dataDir, 'slots', slot.id, 'env.sh'), 'utf8');
    expect(env).toContain(`export ANTHROPIC_BASE_URL='${agent.gatewayUrl}'`);

    const unmetered = await edit(slot.id, { metered: false });
    expect(unmetered.body.metered).toBeNull();
    const keys = await agent.request<{ keys: ApiKey[] }>('GET', `/api/v1/users/${owner.id}/keys`);
    expect(keys.body.keys.find((k) => k.id === metered.body.metered!.keyId)).toMatchObject({ state: 'revoked' });
    // It restarted without the key.
    expect(readFileSync(join(agent.dataDir, 'slots', slot.id, 'env.sh'), 'utf8')).not.toContain('ANTHROPIC_API_KEY');
  });
});

describe('changing the owner', () => {
  it("refuses to hand the previous owner's home and running session to a new owner unless told to reset it", async () => {
    const [first, second] = [await createUser(), await createUser()];
    const word = `owned-${marker()}`;
    const slot = await agent.createSlot({ name: 'handed-over', ownerId: first.id, command: saying(word) });
    const client = await agent.attach(slot.id);
    await client.waitFor(`${word}-42`);
    client.close();
    const holder = (await agent.slot(slot.id)).pid;
    // What the first owner's Claude Code leaves in the home: its login and a transcript.
    const claudeDir = join(agent.dataDir, 'slots', slot.id, 'home', '.claude');
    mkdirSync(join(claudeDir, 'projects'), { recursive: true });
    writeFileSync(join(claudeDir, '.credentials.json'), '{"claudeAiOauth":"first owner"}');
    writeFileSync(join(claudeDir, 'projects', 'session.jsonl'), '{"said":"private"}');

    const refused = await edit(slot.id, { ownerId: second.id });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('SLOT_HOME_RESET_REQUIRED');
    expect(refused.body.error.message).toMatch(/resetHome: true/);
    expect(await agent.slot(slot.id)).toMatchObject({ ownerId: first.id, pid: holder });
    expect(existsSync(join(claudeDir, '.credentials.json'))).toBe(true);

    const handed = await edit(slot.id, { ownerId: second.id, resetHome: true });
    expect(handed.status).toBe(200);
    expect(handed.body.ownerId).toBe(second.id);
    expect(existsSync(join(claudeDir, '.credentials.json'))).toBe(false);
    expect(existsSync(join(claudeDir, 'projects', 'session.jsonl'))).toBe(false);
    // A new session, not the first owner's carrying on.
    const after = await agent.attach(slot.id);
    await after.waitFor(`${word}-42`);
    after.close();
    expect((await agent.slot(slot.id)).pid).not.toBe(holder);
    const edits = (await agent.events(slot.id)).filter((e) => e.kind === 'edited');
    expect(edits[0]!.message).toMatch(/fresh home/);
  });

  it('refuses resetHome without a new owner', async () => {
    const slot = await agent.createSlot({ name: 'home-kept', start: false });
    const response = await edit(slot.id, { resetHome: true });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
  });
});

describe('refused edits', () => {
  let slot: Slot;
  beforeAll(async () => {
    slot = await agent.createSlot({ name: 'guarded', start: false });
    await agent.createSlot({ name: 'taken', start: false });
  });

  async function expectRefused(body: unknown, status: number, code: string): Promise<ErrorBody['error']> {
    const response = await edit(slot.id, body);
    expect(response.status, JSON.stringify(response.body)).toBe(status);
    expect(response.body.error.code).toBe(code);
    expect(response.body.error.message.length).toBeGreaterThan(20);
    return response.body.error;
  }

  it('says what to do instead, and changes nothing', async () => {
    await expectRefused({ name: 'taken' }, 409, 'SLOT_NAME_TAKEN');
    const missing = await expectRefused(
      { command: { preset: 'custom', command: 'no-such-program-anywhere' } },
      400,
      'SLOT_COMMAND_NOT_FOUND',
    );
    expect(missing.message).toMatch(/no-such-program-anywhere/);
    await expectRefused({ metered: true }, 400, 'SLOT_OWNER_REQUIRED');
    await expectRefused({ ownerId: 'nosuchuser' }, 400, 'VALIDATION_FAILED');
    await expectRefused({ ownerId: 'u_0000000000' }, 400, 'SLOT_OWNER_NOT_FOUND');
    await expectRefused({}, 400, 'VALIDATION_FAILED');
    await expectRefused({ env: { HOME: '/tmp' } }, 400, 'VALIDATION_FAILED');
    await expectRefused({ workDir: '/tmp' }, 400, 'VALIDATION_FAILED');
    const unknown = await edit('zzzzzzzzzz', { name: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('SLOT_NOT_FOUND');
    const unchanged = await agent.slot(slot.id);
    expect(unchanged).toMatchObject({ name: 'guarded', ownerId: null, metered: null, env: {} });
  });

  it('refuses an owner that does not exist', async () => {
    const owner = await createUser();
    await agent.request('DELETE', `/api/v1/users/${owner.id}`);
    await expectRefused({ ownerId: owner.id }, 400, 'SLOT_OWNER_NOT_FOUND');
  });
});

describe('credentials', () => {
  let slot: Slot;
  beforeAll(async () => {
    slot = await agent.createSlot({ name: 'credentials' });
  });

  const raw = (headers: Record<string, string>, base = agent.url) =>
    fetch(`${base}/api/v1/slots/${slot.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name: 'hijacked' }),
    });

  it('refuses a missing, a wrong and a stolen credential, and changes nothing', async () => {
    const missing = await raw({});
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('AUTH_TOKEN_MISSING');

    const wrong = await raw({ authorization: `Bearer ${agent.token.slice(0, -1)}x` });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as ErrorBody).error.code).toBe('AUTH_TOKEN_INVALID');

    // Stolen: credentials that are real, but for something else: an end user's API key, a terminal ticket.
    const owner = await createUser();
    const created = await agent.request<{ secret: string }>('POST', `/api/v1/users/${owner.id}/keys`, {
      name: 'laptop',
    });
    const ticket = await agent.request<{ ticket: string }>('POST', `/api/v1/slots/${slot.id}/tickets`, {});
    expect(ticket.status).toBe(201);
    for (const stolen of [created.body.secret, ticket.body.ticket]) {
      const response = await raw({ authorization: `Bearer ${stolen}` });
      expect(response.status).toBe(401);
      expect(((await response.json()) as ErrorBody).error.code).toBe('AUTH_TOKEN_INVALID');
    }
    // The admin token on the public listener: the admin API is not there at all.
    const publicListener = await raw({ authorization: `Bearer ${agent.token}` }, agent.gatewayUrl);
    expect([401, 404]).toContain(publicListener.status);

    expect((await agent.slot(slot.id)).name).toBe('credentials');
  });
});

describe('arbitrary edits', () => {
  it(
    'answers every body with the slot or a coded error, never a 500, and keeps serving',
    { timeout: 300_000 },
    async () => {
      const slot = await agent.createSlot({ name: 'fuzzed', start: false });
      const statuses = new Map<number, number>();
      const value = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.string({ maxLength: 80 }),
        fc.constantFrom(null, true, 16, 1_048_577, -1, 1.5, '', '/bin/sh', 'u_0000000000'),
      );
      const command = fc.oneof(
        fc.record(
          {
            preset: fc.constantFrom('shell', 'claudebox', 'docker-exec', 'custom', 'nope'),
            command: value,
            args: value,
          },
          { requiredKeys: ['preset'] },
        ),
        value,
      );
      // Edits the agent takes, so that the fuzzing reaches the service and not only the schema.
      const sensible = fc.record(
        {
          name: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,10}$/),
          env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.string({ maxLength: 20 }), {
            maxKeys: 3,
          }),
          memoryLimitMb: fc.oneof(fc.constant(null), fc.integer({ min: 16, max: 4096 })),
          command: fc.constantFrom({ preset: 'shell' }, { preset: 'custom', command: 'sh', args: ['-c', 'true'] }),
          metered: fc.constant(false),
        },
        { requiredKeys: [] },
      );
      const body = fc.oneof(
        sensible,
        fc.record(
          {
            name: fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,10}$/), value),
            command,
            env: fc.oneof(
              fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
              value,
            ),
            memoryLimitMb: fc.oneof(fc.integer({ min: -5, max: 2_000_000 }), value),
            ownerId: value,
            metered: fc.oneof(fc.boolean(), value),
            extra: value,
          },
          { requiredKeys: [] },
        ),
        value,
      );
      await fc.assert(
        fc.asyncProperty(body, async (candidate) => {
          const response = await edit(slot.id, candidate);
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          expect(response.status, JSON.stringify({ candidate, answer: response.body })).toBeLessThan(500);
          if (response.status !== 200) {
            expect(response.body.error.code).toMatch(/^[A-Z]+(_[A-Z]+)+$/);
            expect(response.body.error.message.length).toBeGreaterThan(10);
          }
        }),
        { numRuns: 300, seed: 20_261_201 },
      );
      expect(statuses.get(400)).toBeGreaterThan(0);
      expect(statuses.get(200)).toBeGreaterThan(0);
      // Still the same slot, still stopped (a stopped slot's edit never starts it), and the agent still answers.
      const after = await agent.slot(slot.id);
      expect(after).toMatchObject({ id: slot.id, state: 'stopped' });
      expect((await fetch(`${agent.url}/health`)).status).toBe(200);
    },
  );
});
