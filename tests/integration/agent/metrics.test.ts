/**
 * Health details and Prometheus metrics as an operator meets them: a real agent process with PM2 and a slot, real
 * gateway traffic through the official SDK to a stand-in of the Messages API, then /api/v1/health/details, the
 * admin /metrics checked by promtool, and the public /metrics behind its own bearer token.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  CreatedKey,
  HealthDetails,
  MetricsSeries,
  MetricsSettingsUpdate,
  Slot,
  User,
} from '../../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { AgentProcess } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

const MODEL = 'claude-sonnet-4-6';
let upstream: FakeAnthropic;
let agent: AgentProcess;
let user: User;
let key: CreatedKey;
let slot: Slot;

async function text(url: string, authorization?: string): Promise<{ status: number; body: string; type: string }> {
  const response = await fetch(url, { headers: authorization === undefined ? {} : { authorization } });
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') ?? '' };
}

/** `promtool check metrics` reads the exposition on stdin; it exits non-zero on a parse error or a lint problem. */
function promtool(exposition: string): { status: number | null; output: string } {
  const run = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The value of one sample line (`name{labels} value`), or null when absent. */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

beforeAll(async () => {
  upstream = await startFakeAnthropic();
  agent = await AgentProcess.start({ env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url } });
  expect((await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY })).status).toBe(200);
  user = (await agent.request<User>('POST', '/api/v1/users', { username: 'metrics-user' })).body;
  key = (await agent.request<CreatedKey>('POST', `/api/v1/users/${user.id}/keys`, { name: 'metrics' })).body;
  slot = await agent.createSlot({ name: 'watched', command: { preset: 'shell' } });
  await until(
    'the slot runs',
    () => agent.slot(slot.id),
    (s) => s.state === 'running',
    { timeoutMs: 20_000 },
  );

  // Real traffic: answers plain and streamed, an upstream error, a refused key, and terminal output to a viewer.
  const sdk = new Anthropic({ apiKey: key.secret, baseURL: agent.gatewayUrl, maxRetries: 0 });
  const ask = (content: string) => ({ model: MODEL, max_tokens: 32, messages: [{ role: 'user' as const, content }] });
  for (let i = 0; i < 3; i++) await sdk.messages.create(ask('hi !usage in=100 out=20'));
  const stream = sdk.messages.stream(ask('hi !usage in=50 out=10'));
  await stream.finalMessage();
  await expect(sdk.messages.create(ask('!error 529 overloaded_error'))).rejects.toThrow();
  const refused = new Anthropic({ apiKey: 'sk_user_not-a-real-key', baseURL: agent.gatewayUrl, maxRetries: 0 });
  await expect(refused.messages.create(ask('hi'))).rejects.toThrow();
  const viewer = await agent.attach(slot.id);
  await viewer.waitForPrompt();
  viewer.type('echo metrics-were-$((6*7))\r');
  await viewer.waitFor('metrics-were-42');
  viewer.close();
}, 120_000);

afterAll(async () => {
  await agent?.destroy();
  await upstream?.close();
});

describe('GET /api/v1/health/details (upstream: the Messages API stand-in)', () => {
  it('reports the database, PM2, the slot, the disk, memory, load and the upstream as they are', async () => {
    const { status, body } = await agent.request<HealthDetails>('GET', '/api/v1/health/details');
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(body.database).toMatchObject({ ok: true, writable: true, lastWriteError: null });
    expect(body.database.sizeBytes).toBeGreaterThan(0);
    expect(body.database.walBytes).toBeGreaterThanOrEqual(0);
    expect(body.supervisor.ok).toBe(true);
    expect(body.supervisor.daemonPid).toBeGreaterThan(0);
    expect(body.slots).toContainEqual(expect.objectContaining({ id: slot.id, name: 'watched', state: 'running' }));
    expect(body.disk?.path).toBe(agent.dataDir);
    expect(body.disk!.freeBytes).toBeGreaterThan(0);
    expect(body.memory.availableBytes).toBeGreaterThan(0);
    expect(body.load.cpus).toBeGreaterThan(0);
    // The last request upstream answered was the 529; 1 of the 5 that reached it failed.
    expect(body.upstream.lastStatus).toBe(529);
    expect(body.upstream.errorRate5m).toBeCloseTo(0.2, 5);
    expect(body.backup).toEqual({ lastSuccessAt: null, ageS: null, lastError: null });
    expect(body.tls).toEqual({ configured: false, notAfter: null, daysLeft: null });
    expect(body.agent.pid).toBeGreaterThan(0);
  });

  it('refuses a missing, a wrong and a stolen credential', async () => {
    for (const path of ['/api/v1/health/details', '/metrics', '/api/v1/metrics/series', '/api/v1/metrics/settings']) {
      const missing = await fetch(`${agent.url}${path}`);
      expect(missing.status, path).toBe(401);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('AUTH_TOKEN_MISSING');
      for (const stolen of ['not-the-token', key.secret, `${agent.token}x`]) {
        const response = await fetch(`${agent.url}${path}`, { headers: { authorization: `Bearer ${stolen}` } });
        expect(response.status, `${path} with ${stolen.slice(0, 8)}`).toBe(401);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('AUTH_TOKEN_INVALID');
      }
    }
  });
});

describe('admin /metrics (upstream: the Messages API stand-in)', () => {
  it('exposes what the traffic did, and promtool finds no problem in it', async () => {
    const { status, body, type } = await text(`${agent.url}/metrics`, `Bearer ${agent.token}`);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const ok = { status: '200', model: MODEL, outcome: 'ok' };
    expect(sample(body, 'slotdeck_gateway_requests_total', ok)).toBe(4);
    expect(sample(body, 'slotdeck_gateway_requests_total', { status: '529', outcome: 'upstream_error' })).toBe(1);
    expect(sample(body, 'slotdeck_gateway_requests_total', { status: '401', outcome: 'refused' })).toBe(1);
    expect(sample(body, 'slotdeck_gateway_refusals_total', { reason: 'auth' })).toBe(1);
    expect(sample(body, 'slotdeck_gateway_refusals_total', { reason: 'quota' })).toBe(0);
    expect(sample(body, 'slotdeck_gateway_request_duration_seconds_count', { outcome: 'ok', stream: 'true' })).toBe(1);
    expect(sample(body, 'slotdeck_gateway_overhead_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(sample(body, 'slotdeck_upstream_answers_total', { class: '5xx' })).toBe(1);
    expect(sample(body, 'slotdeck_slots', { state: 'running' })).toBe(1);
    expect(sample(body, 'slotdeck_slot_memory_bytes', { slot: 'watched' })).toBeGreaterThan(0);
    expect(sample(body, 'slotdeck_terminal_output_bytes_total', { slot: 'watched' })).toBeGreaterThan(0);
    expect(sample(body, 'slotdeck_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(body, 'slotdeck_backup_last_success_timestamp_seconds')).toBe(0);
    expect(sample(body, 'slotdeck_gateway_open_streams')).toBe(0);
    const check = promtool(body);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  it('counts tokens and cost once the recorder reports its rows', async () => {
    const { body } = await text(`${agent.url}/metrics`, `Bearer ${agent.token}`);
    // 3 × (100 in, 20 out) + (50 in, 10 out); the 529 has no usage.
    expect(sample(body, 'slotdeck_gateway_tokens_total', { model: MODEL, kind: 'input' })).toBe(350);
    expect(sample(body, 'slotdeck_gateway_tokens_total', { model: MODEL, kind: 'output' })).toBe(70);
    expect(sample(body, 'slotdeck_gateway_cost_usd_total', { model: MODEL })).toBeGreaterThan(0);
  });
});

describe('public /metrics (upstream: the Messages API stand-in)', () => {
  const publicMetrics = (authorization?: string) => text(`${agent.gatewayUrl}/metrics`, authorization);

  it('is off until an admin enables it, then needs its own token; rotating and disabling take effect at once', async () => {
    const off = await publicMetrics(`Bearer ${agent.token}`);
    expect(off.status).toBe(404);
    expect(JSON.parse(off.body)).toMatchObject({ error: { code: 'METRICS_NOT_ENABLED' } });

    const enabled = await agent.request<MetricsSettingsUpdate>('PUT', '/api/v1/metrics/settings', {
      action: 'enable',
    });
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ publicEnabled: true, publicUrl: `${agent.gatewayUrl}/metrics` });
    const token = enabled.body.token!;
    expect(token).toMatch(/^sdk_metrics_/);
    // Shown once: reading the settings (or enabling again) never returns it.
    const again = await agent.request<MetricsSettingsUpdate>('PUT', '/api/v1/metrics/settings', { action: 'enable' });
    expect(again.body.token).toBeNull();
    expect(JSON.stringify((await agent.request('GET', '/api/v1/metrics/settings')).body)).not.toContain(token);

    const scraped = await publicMetrics(`Bearer ${token}`);
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain('slotdeck_gateway_requests_total');

    // Missing, wrong, and stolen credentials: an end user's API key and the admin token are not the metrics token.
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${key.secret}`, `Bearer ${agent.token}`, token]) {
      const refused = await publicMetrics(authorization);
      expect(refused.status, String(authorization).slice(0, 12)).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'METRICS_TOKEN_INVALID' } });
    }

    const rotated = await agent.request<MetricsSettingsUpdate>('PUT', '/api/v1/metrics/settings', {
      action: 'rotate',
    });
    expect(rotated.body.token).not.toBe(token);
    expect((await publicMetrics(`Bearer ${token}`)).status).toBe(401);
    expect((await publicMetrics(`Bearer ${rotated.body.token}`)).status).toBe(200);

    // The token is nowhere on disk or in the log; the secrets folder keeps only its SHA-256.
    const secrets = join(agent.dataDir, 'secrets');
    for (const file of readdirSync(secrets)) expect(readFileSync(join(secrets, file), 'latin1')).not.toContain(token);
    expect(readFileSync(join(secrets, 'metrics-token.json'), 'utf8')).toMatch(/"sha256":"[0-9a-f]{64}"/);
    expect(agent.logs.join('\n')).not.toContain(rotated.body.token!);
    // grep exits 1 when it finds nothing anywhere in the data dir (PM2's logs included).
    expect(spawnSync('grep', ['-rl', rotated.body.token!, agent.dataDir]).status).toBe(1);

    const disabled = await agent.request<MetricsSettingsUpdate>('PUT', '/api/v1/metrics/settings', {
      action: 'disable',
    });
    expect(disabled.body).toMatchObject({ publicEnabled: false, token: null });
    expect((await publicMetrics(`Bearer ${rotated.body.token}`)).status).toBe(404);
  });

  it('answers arbitrary requests with a 200 only for the right token, never a 5xx (fuzz)', async () => {
    const token = (await agent.request<MetricsSettingsUpdate>('PUT', '/api/v1/metrics/settings', { action: 'rotate' }))
      .body.token!;
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constant(undefined),
          printable,
          printable.map((s) => `Bearer ${s}`),
          fc.constantFrom(`Bearer ${token}`, `bearer ${token}`, `Bearer ${token} `, `Bearer ${token}x`, token),
        ),
        fc.constantFrom('/metrics', '/metrics?x=1', '/metrics/', '/METRICS'),
        async (authorization, path) => {
          const response = await fetch(`${agent.gatewayUrl}${path}`, {
            headers: authorization === undefined ? {} : { authorization },
          });
          await response.arrayBuffer();
          expect(response.status).toBeLessThan(500);
          const presented = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
          const served = presented === token && (path === '/metrics' || path === '/metrics?x=1');
          expect(response.status === 200).toBe(served);
        },
      ),
      { numRuns: 150 },
    );
    // Settings bodies: anything but one of the three actions is a 400 listing the problem, never a 500.
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (body) => {
        const response = await agent.request<{ error?: { code: string } }>(
          'PUT',
          '/api/v1/metrics/settings',
          JSON.stringify(body),
        );
        expect([200, 400]).toContain(response.status);
        if (response.status === 400) expect(response.body.error?.code).toBe('VALIDATION_FAILED');
      }),
      { numRuns: 100 },
    );
  });
});

describe('GET /api/v1/metrics/series (upstream: the Messages API stand-in)', () => {
  it('keeps samples the panel charts, and answers only what is new since a given sample', async () => {
    const series = await until(
      'a first sample',
      async () => (await agent.request<MetricsSeries>('GET', '/api/v1/metrics/series')).body,
      (body) => body.samples.length > 0,
      { timeoutMs: 30_000, everyMs: 500 },
    );
    expect(series.intervalS).toBe(10);
    const last = series.samples.at(-1)!;
    expect(last.slots.running).toBe(1);
    expect(last.hostMemoryPercent).toBeGreaterThan(0);
    const since = await agent.request<MetricsSeries>(
      'GET',
      `/api/v1/metrics/series?since=${encodeURIComponent(last.at)}`,
    );
    expect(since.body.samples.every((s) => s.at > last.at)).toBe(true);
    const bad = await agent.request<{ error: { code: string } }>('GET', '/api/v1/metrics/series?since=yesterday');
    expect(bad.status).toBe(400);
  });
});
