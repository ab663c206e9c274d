import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody, Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import { headersOnly } from '../helpers/http.js';
import { upgradeStatus } from '../helpers/terminal-client.js';

let agent: AgentProcess;
let slot: Slot;

beforeAll(async () => {
  agent = await AgentProcess.start();
  slot = (await agent.request<Slot>('POST', '/api/v1/slots', { name: 'target' })).body;
});

afterAll(async () => {
  await agent?.destroy();
});

async function expectError(
  method: string,
  path: string,
  body: unknown,
  status: number,
  code: string,
  headers?: Record<string, string>,
): Promise<ErrorBody['error']> {
  const response = await agent.request<ErrorBody>(method, path, body, headers);
  expect(response.status, `${method} ${path} ${JSON.stringify(body)} -> ${JSON.stringify(response.body)}`).toBe(status);
  expect(response.body.error.code).toBe(code);
  expect(response.body.error.message.length).toBeGreaterThan(10);
  return response.body.error;
}

describe('authentication', () => {
  it('answers 401 with a code on every admin route without a valid token, and /health needs none', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/api/v1/slots'],
      ['POST', '/api/v1/slots'],
      ['GET', `/api/v1/slots/${slot.id}`],
      ['POST', `/api/v1/slots/${slot.id}/start`],
      ['POST', `/api/v1/slots/${slot.id}/stop`],
      ['POST', `/api/v1/slots/${slot.id}/restart`],
      ['DELETE', `/api/v1/slots/${slot.id}`],
      ['GET', `/api/v1/slots/${slot.id}/events`],
      ['POST', `/api/v1/slots/${slot.id}/tickets`],
    ];
    for (const [method, path] of routes) {
      const missing = await fetch(`${agent.url}${path}`, { method });
      expect(missing.status, `${method} ${path}`).toBe(401);
      expect(((await missing.json()) as ErrorBody).error.code).toBe('AUTH_TOKEN_MISSING');
      const wrong = await fetch(`${agent.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${agent.token.slice(0, -1)}x` },
      });
      expect(wrong.status).toBe(401);
      expect(((await wrong.json()) as ErrorBody).error.code).toBe('AUTH_TOKEN_INVALID');
    }
    const malformed = await fetch(`${agent.url}/api/v1/slots`, { headers: { authorization: agent.token } });
    expect(malformed.status).toBe(401);
    // Nothing was changed by those attempts.
    expect((await agent.request<Slot>('GET', `/api/v1/slots/${slot.id}`)).body.state).toBe('running');

    const health = await fetch(`${agent.url}/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as {
      status: string;
      database: { ok: boolean };
      supervisor: { ok: boolean; daemonPid: number };
    };
    expect(body.status).toBe('ok');
    expect(body.database.ok).toBe(true);
    expect(body.supervisor.daemonPid).toBeGreaterThan(0);
  });
});

describe('validation', () => {
  it('rejects bad slot bodies with VALIDATION_FAILED naming each field', async () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'body.name'],
      [{ name: '' }, 'body.name'],
      [{ name: 'has space' }, 'body.name'],
      [{ name: 'x'.repeat(65) }, 'body.name'],
      [{ name: 'ok', nmae: 'typo' }, 'body'],
      [{ name: 'ok', command: { preset: 'nope' } }, 'body.command.preset'],
      [{ name: 'ok', command: { preset: 'custom' } }, 'body.command.command'],
      [{ name: 'ok', command: { preset: 'custom', command: 'ls', args: 'not-a-list' } }, 'body.command.args'],
      [{ name: 'ok', command: { preset: 'docker-exec', container: '../etc' } }, 'body.command.container'],
      [{ name: 'ok', command: { preset: 'shell', shell: 'bash' } }, 'body.command.shell'],
      [{ name: 'ok', env: { '1BAD': 'x' } }, 'body.env.1BAD'],
      [{ name: 'ok', env: { HOME: '/tmp' } }, 'body.env.HOME'],
      [{ name: 'ok', env: { FOO: 42 } }, 'body.env.FOO'],
      [{ name: 'ok', workDir: 'relative/dir' }, 'body.workDir'],
      [{ name: 'ok', memoryLimitMb: 1 }, 'body.memoryLimitMb'],
      [{ name: 'ok', memoryLimitMb: 'lots' }, 'body.memoryLimitMb'],
      [{ name: 'ok', terminal: 'xterm' }, 'body.terminal'],
      [{ name: 'ok', size: { cols: 0, rows: 10 } }, 'body.size.cols'],
      [{ name: 'ok', start: 'yes' }, 'body.start'],
      [[1, 2], 'body'],
    ];
    for (const [body, path] of cases) {
      const error = await expectError('POST', '/api/v1/slots', body, 400, 'VALIDATION_FAILED');
      expect(
        error.issues?.map((i) => i.path),
        JSON.stringify(body),
      ).toContain(path);
    }
    const typo = await expectError('POST', '/api/v1/slots', { name: 'ok', nmae: 'typo' }, 400, 'VALIDATION_FAILED');
    expect(typo.message).toMatch(/unknown field "nmae"/);
    // None of them made a slot.
    expect((await agent.request<{ slots: Slot[] }>('GET', '/api/v1/slots')).body.slots.map((s) => s.name)).toEqual([
      'target',
    ]);
  });

  it('explains what is wrong on the host: missing programs, missing dirs, taken names', async () => {
    const missing = await expectError(
      'POST',
      '/api/v1/slots',
      { name: 'ok', command: { preset: 'custom', command: 'no-such-program-here' } },
      400,
      'SLOT_COMMAND_NOT_FOUND',
    );
    expect(missing.message).toMatch(/no-such-program-here/);
    const claudebox = await expectError(
      'POST',
      '/api/v1/slots',
      { name: 'ok', command: { preset: 'claudebox' } },
      400,
      'SLOT_COMMAND_NOT_FOUND',
    );
    expect(claudebox.message).toMatch(/ClaudeBox/);
    await expectError('POST', '/api/v1/slots', { name: 'ok', workDir: '/no/such/dir' }, 400, 'SLOT_WORKDIR_INVALID');
    await expectError('POST', '/api/v1/slots', { name: 'ok', terminal: 'ttyd' }, 400, 'SLOT_BACKEND_UNAVAILABLE');
    const taken = await expectError('POST', '/api/v1/slots', { name: 'TARGET' }, 409, 'SLOT_NAME_TAKEN');
    expect(taken.message).toMatch(/already exists/);
  });

  it('rejects bad ids, queries and bodies on the other routes', async () => {
    await expectError('GET', '/api/v1/slots/NOT-AN-ID', undefined, 400, 'VALIDATION_FAILED');
    await expectError('GET', '/api/v1/slots/aaaaaaaaaa', undefined, 404, 'SLOT_NOT_FOUND');
    await expectError('POST', '/api/v1/slots/aaaaaaaaaa/start', undefined, 404, 'SLOT_NOT_FOUND');
    await expectError('POST', '/api/v1/slots/aaaaaaaaaa/stop', undefined, 404, 'SLOT_NOT_FOUND');
    await expectError('POST', '/api/v1/slots/aaaaaaaaaa/restart', undefined, 404, 'SLOT_NOT_FOUND');
    await expectError('DELETE', '/api/v1/slots/aaaaaaaaaa', undefined, 404, 'SLOT_NOT_FOUND');
    await expectError('GET', '/api/v1/slots?state=sleeping', undefined, 400, 'VALIDATION_FAILED');
    await expectError('GET', '/api/v1/slots?colour=red', undefined, 400, 'VALIDATION_FAILED');
    await expectError('DELETE', `/api/v1/slots/${slot.id}?workDir=shred`, undefined, 400, 'VALIDATION_FAILED');
    await expectError('GET', `/api/v1/slots/${slot.id}/events?limit=0`, undefined, 400, 'VALIDATION_FAILED');
    await expectError('GET', `/api/v1/slots/${slot.id}/events?limit=many`, undefined, 400, 'VALIDATION_FAILED');
    await expectError('POST', `/api/v1/slots/${slot.id}/tickets`, { mode: 'admin' }, 400, 'VALIDATION_FAILED');
    await expectError('POST', `/api/v1/slots/${slot.id}/start`, { force: true }, 400, 'VALIDATION_FAILED');
    // The slot is untouched.
    expect((await agent.request<Slot>('GET', `/api/v1/slots/${slot.id}`)).body.state).toBe('running');
  });

  it('answers malformed requests with 4xx codes, never 5xx', async () => {
    await expectError('POST', '/api/v1/slots', '{"name": ', 400, 'BODY_INVALID_JSON');
    await expectError('POST', '/api/v1/slots', 'name=x', 415, 'MEDIA_TYPE_UNSUPPORTED', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    const big = await headersOnly(`${agent.url}/api/v1/slots`, 'POST', {
      authorization: `Bearer ${agent.token}`,
      'content-type': 'application/json',
      'content-length': 2 * 1024 * 1024,
    });
    expect(big.status).toBe(413);
    expect((JSON.parse(big.body) as ErrorBody).error.code).toBe('BODY_TOO_LARGE');
    await expectError('GET', '/api/v1/nothing-here', undefined, 404, 'ROUTE_NOT_FOUND');
    await expectError('PUT', `/api/v1/slots/${slot.id}`, { name: 'x' }, 404, 'ROUTE_NOT_FOUND');
    // An empty JSON body means no body, as curl sends it.
    const empty = await agent.request<Slot>('POST', `/api/v1/slots/${slot.id}/start`, '', {
      'content-type': 'application/json',
    });
    expect(empty.status).toBe(200);
  });

  it('answers the terminal route with clear errors for plain HTTP, bad ids and missing tickets', async () => {
    const plain = await fetch(`${agent.url}/api/v1/slots/${slot.id}/terminal`);
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as ErrorBody).error.code).toBe('TERMINAL_NOT_WEBSOCKET');
    const wsBase = agent.url.replace('http', 'ws');
    const badId = await upgradeStatus(`${wsBase}/api/v1/slots/..%2F..%2Fetc/terminal?ticket=x`);
    expect(badId.status).toBe(400);
    const badTicket = await upgradeStatus(`${wsBase}/api/v1/slots/${slot.id}/terminal?ticket=`);
    expect(badTicket.status).toBe(401);
  });
});
