/**
 * Public /metrics is enabled only where its bearer token cannot be read off the network: TLS on the gateway, an
 * https portal.publicUrl (a TLS proxy in front) or a loopback listener. Otherwise the settings route refuses with
 * METRICS_PUBLIC_INSECURE and says to configure TLS first; nothing is enabled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from '../../../../remote-agent/node_modules/fastify/fastify.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../../../../remote-agent/src/http/errors.js';
import type { AgentMetrics } from '../../../../remote-agent/src/modules/metrics/metrics.js';
import { PublicMetricsToken } from '../../../../remote-agent/src/modules/metrics/public-token.js';
import { isLoopbackHost, registerMetricsAdminRoutes } from '../../../../remote-agent/src/modules/metrics/routes.js';
import type { MetricsSeriesSampler } from '../../../../remote-agent/src/modules/metrics/series.js';

let dir: string;
let app: FastifyInstance;
let token: PublicMetricsToken;
let secure = false;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sd-metrics-tls-'));
  token = new PublicMetricsToken(dir);
  app = Fastify();
  registerErrorHandling(app);
  registerMetricsAdminRoutes(app, {
    // Only the settings route is under test: the exposition and the series are not reached.
    metrics: {} as AgentMetrics,
    series: {} as MetricsSeriesSampler,
    token,
    gatewayUrl: () => 'http://203.0.113.7:8443',
    publicListenerSecure: () => secure,
  });
  await app.ready();
});
afterEach(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const settings = (action: string) =>
  app.inject({ method: 'PUT', url: '/api/v1/metrics/settings', payload: { action } });

describe('enabling public metrics', () => {
  it('is refused on a plain-HTTP network listener with a coded error saying to configure TLS first', async () => {
    secure = false;
    for (const action of ['enable', 'rotate']) {
      const answer = await settings(action);
      expect(answer.statusCode).toBe(409);
      const { error } = answer.json<{ error: { code: string; message: string } }>();
      expect(error.code).toBe('METRICS_PUBLIC_INSECURE');
      expect(error.message).toMatch(/Configure TLS first/);
      expect(error.message).toMatch(/portal\.publicUrl.*https/);
    }
    expect(token.enabled).toBe(false);
    expect((await settings('disable')).statusCode).toBe(200);
  });

  it('is allowed once the listener is secure, and answers the token once', async () => {
    secure = true;
    const answer = await settings('enable');
    expect(answer.statusCode).toBe(200);
    const body = answer.json<{ publicEnabled: boolean; token: string }>();
    expect(body.publicEnabled).toBe(true);
    expect(body.token).toMatch(/^sdk_metrics_/);
    expect(token.enabled).toBe(true);
  });

  it('knows loopback from network addresses', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', 'localhost']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '127.0.0.1.nip.io']) expect(isLoopbackHost(host)).toBe(false);
  });
});
