/** The gateway terminating TLS itself with a configured certificate (for hosts without a reverse proxy). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreatedKey, User } from '../../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { AgentProcess } from '../helpers/agent.js';

let upstream: FakeAnthropic;
let agent: AgentProcess;
let certDir: string;

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'sd-tls-'));
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    join(certDir, 'key.pem'),
    '-out',
    join(certDir, 'cert.pem'),
  ]);
  upstream = await startFakeAnthropic();
  agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_UPSTREAM_URL: upstream.url,
      SLOTDECK_AGENT_GATEWAY_TLS_CERT: join(certDir, 'cert.pem'),
      SLOTDECK_AGENT_GATEWAY_TLS_KEY: join(certDir, 'key.pem'),
    },
  });
});

afterAll(async () => {
  await agent?.destroy();
  await upstream?.close();
  rmSync(certDir, { recursive: true, force: true });
});

it('serves the gateway over HTTPS with the configured certificate', async () => {
  expect(agent.gatewayUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
  const user = (await agent.request<User>('POST', '/api/v1/users', { username: 'tls' })).body;
  const { secret } = (await agent.request<CreatedKey>('POST', `/api/v1/users/${user.id}/keys`, { name: 'k' })).body;
  const answer = await new Promise<{ status: number; body: string; authorized: boolean }>((resolve, reject) => {
    const call = request(
      `${agent.gatewayUrl}/v1/messages`,
      {
        method: 'POST',
        ca: readFileSync(join(certDir, 'cert.pem')),
        headers: { 'x-api-key': secret, 'content-type': 'application/json' },
      },
      (response) => {
        const { authorized } = response.socket as TLSSocket;
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body,
            authorized,
          }),
        );
      },
    );
    call.on('error', reject);
    call.end(JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }));
  });
  expect(answer.authorized).toBe(true);
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toMatchObject({ type: 'message', usage: { input_tokens: 25 } });
  const status = await agent.request<{ url: string }>('GET', '/api/v1/gateway');
  expect(status.body.url).toBe(agent.gatewayUrl);
});
