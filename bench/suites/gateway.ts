/**
 * The gateway's cost on top of upstream: the same requests sent directly to a fake Messages API, through a bare proxy
 * (bench/fixtures/bare-proxy.mjs: node:http in, undici out, nothing else) and through a real agent's gateway (auth,
 * rate limits, a quota check and a committed usage row on every request), side by side in the same run. The bare
 * proxy is the fair baseline: it pays the same second loopback hop any proxy pays on this machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Pool } from 'undici';
import type { CreatedKey, User } from '../../remote-agent/src/contract/index.js';
import { FAKE_UPSTREAM_KEY } from '../../tests/integration/fixtures/fake-anthropic.js';
import { AgentProcess } from '../../tests/integration/helpers/agent.js';
import { percentile, round, type Figure, type Suite } from '../suite.js';

/** Enough that p99.9 is not a single sample: the 5th slowest of 5000. */
const LATENCY_SAMPLES = 5000;
const STREAM_SAMPLES = 400;
const THROUGHPUT_SECONDS = 4;
const THROUGHPUT_ROUNDS = 3;
const CONCURRENCY = 32;

const BODY = JSON.stringify({
  model: 'claude-sonnet-4-6',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'bench !usage in=120 out=30 cw=0 cr=64' }],
});
const STREAM_BODY = JSON.stringify({ ...(JSON.parse(BODY) as object), stream: true });
/** A Claude Code-sized request: a long conversation (about 650 KB), where reading the body is what costs. */
const LARGE_BODY = JSON.stringify({
  model: 'claude-sonnet-4-6',
  max_tokens: 32_000,
  system: [{ type: 'text', text: 'You are Claude Code. '.repeat(1000) }],
  messages: Array.from({ length: 200 }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: [
      { type: 'text', text: `${'Some "quoted" code: if (a) { b[c] = d; }\n'.repeat(70)} !usage in=1 out=1 cw=0 cr=0` },
    ],
  })),
});
const LARGE_SAMPLES = 300;

async function startProcess(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { url, child };
}

const startUpstream = (): Promise<{ url: string; child: ChildProcess }> =>
  startProcess([
    '--import',
    'tsx',
    join(import.meta.dirname, '../../tests/integration/fixtures/fake-anthropic-server.ts'),
  ]);

interface Target {
  name: string;
  pool: Pool;
  headers: Record<string, string>;
}

async function once(target: Target, body: string): Promise<{ ms: number; overhead: number | null }> {
  const started = performance.now();
  const response = await target.pool.request({ path: '/v1/messages', method: 'POST', headers: target.headers, body });
  await response.body.arrayBuffer();
  if (response.statusCode !== 200) throw new Error(`${target.name}: HTTP ${response.statusCode}`);
  const overhead = response.headers['x-slotdeck-overhead-ms'];
  return { ms: performance.now() - started, overhead: typeof overhead === 'string' ? Number(overhead) : null };
}

/** Time to the first byte of a streamed answer. */
async function firstByte(target: Target): Promise<number> {
  const started = performance.now();
  const response = await target.pool.request({
    path: '/v1/messages',
    method: 'POST',
    headers: target.headers,
    body: STREAM_BODY,
  });
  let first = 0;
  for await (const _chunk of response.body) first ||= performance.now() - started;
  if (response.statusCode !== 200) throw new Error(`${target.name}: HTTP ${response.statusCode}`);
  return first;
}

async function throughput(target: Target, seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await once(target, BODY);
        done += 1;
      }
    }),
  );
  return done / seconds;
}

export const gatewaySuite: Suite = {
  async run(log) {
    const upstream = await startUpstream();
    const bareProxy = await startProcess([join(import.meta.dirname, '../fixtures/bare-proxy.mjs'), upstream.url]);
    const agent = await AgentProcess.start({
      env: { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url, SLOTDECK_AGENT_LOG_LEVEL: 'warn' },
    });
    const pools: Pool[] = [];
    try {
      await agent.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
      const user = (await agent.request<User>('POST', '/api/v1/users', { username: 'bench' })).body;
      const { secret } = (
        await agent.request<CreatedKey>('POST', `/api/v1/users/${user.id}/keys`, {
          name: 'bench',
          rateLimit: { requestsPerMinute: 1_000_000, concurrentStreams: 10_000 },
        })
      ).body;
      // A quota that never runs out, so that every request pays for the check.
      await agent.request('PUT', `/api/v1/users/${user.id}/quotas`, { quotas: [{ window: 'day', maxTokens: 1e12 }] });

      const common = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
      const direct: Target = {
        name: 'direct',
        pool: new Pool(upstream.url, { connections: CONCURRENCY }),
        headers: { ...common, 'x-api-key': FAKE_UPSTREAM_KEY },
      };
      const via: Target = {
        name: 'gateway',
        pool: new Pool(agent.gatewayUrl, { connections: CONCURRENCY }),
        headers: { ...common, 'x-api-key': secret },
      };
      const bare: Target = {
        name: 'bare proxy',
        pool: new Pool(bareProxy.url, { connections: CONCURRENCY }),
        headers: direct.headers,
      };
      pools.push(direct.pool, via.pool, bare.pool);

      log('warming up');
      for (let i = 0; i < 500; i++) {
        await once(direct, BODY);
        await once(via, BODY);
        await once(bare, BODY);
      }

      log(`latency: ${LATENCY_SAMPLES} requests each way (direct, gateway, bare proxy), one at a time, interleaved`);
      const directMs: number[] = [];
      const viaMs: number[] = [];
      const bareMs: number[] = [];
      const selfReported: number[] = [];
      for (let i = 0; i < LATENCY_SAMPLES; i++) {
        directMs.push((await once(direct, BODY)).ms);
        const through = await once(via, BODY);
        viaMs.push(through.ms);
        if (through.overhead !== null) selfReported.push(through.overhead);
        bareMs.push((await once(bare, BODY)).ms);
      }

      log(`large requests: ${LARGE_SAMPLES} of ${Math.round(LARGE_BODY.length / 1024)} KB each way`);
      const directLarge: number[] = [];
      const viaLarge: number[] = [];
      for (let i = 0; i < LARGE_SAMPLES; i++) {
        directLarge.push((await once(direct, LARGE_BODY)).ms);
        viaLarge.push((await once(via, LARGE_BODY)).ms);
      }

      log(`stream time to first byte: ${STREAM_SAMPLES} streams each way`);
      const directTtfb: number[] = [];
      const viaTtfb: number[] = [];
      for (let i = 0; i < STREAM_SAMPLES; i++) {
        directTtfb.push(await firstByte(direct));
        viaTtfb.push(await firstByte(via));
      }

      log(
        `throughput: ${CONCURRENCY} concurrent clients, ${THROUGHPUT_SECONDS} s per round, ${THROUGHPUT_ROUNDS} rounds (direct, gateway, bare proxy)`,
      );
      const directRps: number[] = [];
      const viaRps: number[] = [];
      const bareRps: number[] = [];
      for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
        directRps.push(await throughput(direct, THROUGHPUT_SECONDS));
        viaRps.push(await throughput(via, THROUGHPUT_SECONDS));
        bareRps.push(await throughput(bare, THROUGHPUT_SECONDS));
      }
      const bestDirect = Math.max(...directRps);
      const bestVia = Math.max(...viaRps);
      const bestBare = Math.max(...bareRps);

      const rows = await agent.request<{ rows: unknown[] }>(
        'GET',
        `/api/v1/usage/summary?from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}&bucket=hour&groupBy=user`,
      );
      const metered = (rows.body as unknown as { totals: { requests: number } }).totals.requests;

      const p = (values: number[], q: number): number => percentile(values, q);
      const overhead50 = p(viaMs, 50) - p(directMs, 50);
      const overheadVsBare50 = p(viaMs, 50) - p(bareMs, 50);
      const p999Ratio = p(viaMs, 99.9) / p(bareMs, 99.9);
      const overhead99 = p(viaMs, 99) - p(directMs, 99);
      const ttfbAdded = p(viaTtfb, 50) - p(directTtfb, 50);
      log(
        `p50 direct ${round(p(directMs, 50), 3)} ms, via ${round(p(viaMs, 50), 3)} ms; rps direct ${round(bestDirect, 0)}, via ${round(bestVia, 0)}; rows metered ${metered}`,
      );
      const figures: Record<string, Figure> = {
        overhead_ms_p50_vs_bare_proxy: {
          value: round(overheadVsBare50, 3),
          unit: 'ms',
          what: 'p50 latency through the gateway minus p50 through the bare proxy, same fake upstream, one request at a time',
          goal: '<= 0.15',
          baseline: { value: round(p(bareMs, 50), 3), unit: 'ms', what: 'p50 through the bare proxy' },
          ratio: round(p(viaMs, 50) / p(bareMs, 50), 2),
          detail: { via_p50_ms: round(p(viaMs, 50), 3), samples: LATENCY_SAMPLES },
        },
        latency_p999_ratio_vs_bare_proxy: {
          value: round(p999Ratio, 2),
          unit: 'ratio',
          what: 'p99.9 latency through the gateway ÷ p99.9 through the bare proxy (same requests, interleaved)',
          goal: '<= 1.5',
          baseline: { value: round(p(bareMs, 99.9), 3), unit: 'ms', what: 'p99.9 through the bare proxy' },
          ratio: round(p999Ratio, 2),
          detail: {
            via_p999_ms: round(p(viaMs, 99.9), 3),
            direct_p999_ms: round(p(directMs, 99.9), 3),
            samples: LATENCY_SAMPLES,
          },
        },
        throughput_ratio_vs_bare_proxy: {
          value: round(bestVia / bestBare, 3),
          unit: 'ratio',
          what: `requests/s through the gateway ÷ through the bare proxy (${CONCURRENCY} clients, best of ${THROUGHPUT_ROUNDS} rounds each)`,
          goal: '>= 0.95',
          baseline: { value: round(bestBare, 0), unit: 'requests/s', what: 'the bare proxy' },
          ratio: round(bestVia / bestBare, 3),
          detail: { gateway_rps: round(bestVia, 0), rounds: THROUGHPUT_ROUNDS },
        },
        overhead_ms_p50: {
          value: round(overhead50, 3),
          unit: 'ms',
          what: 'p50 latency through the gateway minus p50 sent directly to the fake upstream',
          goal: '<= 0.4',
          baseline: { value: round(p(directMs, 50), 3), unit: 'ms', what: 'p50 of the same request sent directly' },
          ratio: round(p(viaMs, 50) / p(directMs, 50), 2),
          detail: {
            via_p50_ms: round(p(viaMs, 50), 3),
            self_reported_p50_ms: round(p(selfReported, 50), 3),
            samples: LATENCY_SAMPLES,
          },
        },
        overhead_ms_p99: {
          value: round(overhead99, 3),
          unit: 'ms',
          what: 'p99 latency through the gateway minus p99 sent directly',
          goal: '<= 2',
          baseline: { value: round(p(directMs, 99), 3), unit: 'ms', what: 'p99 of the same request sent directly' },
          ratio: round(p(viaMs, 99) / p(directMs, 99), 2),
          detail: { via_p99_ms: round(p(viaMs, 99), 3), self_reported_p99_ms: round(p(selfReported, 99), 3) },
        },
        overhead_ms_p50_large_request: {
          value: round(p(viaLarge, 50) - p(directLarge, 50), 3),
          unit: 'ms',
          what: `p50 through the gateway minus direct, for a ${Math.round(LARGE_BODY.length / 1024)} KB Claude Code-sized request`,
          baseline: {
            value: round(p(directLarge, 50), 3),
            unit: 'ms',
            what: `p50 of the same ${Math.round(LARGE_BODY.length / 1024)} KB request sent directly`,
          },
          ratio: round(p(viaLarge, 50) / p(directLarge, 50), 2),
          detail: { via_p50_ms: round(p(viaLarge, 50), 3), samples: LARGE_SAMPLES },
        },
        throughput_rps: {
          value: round(bestVia, 0),
          unit: 'requests/s',
          what: `requests/s through the gateway, ${CONCURRENCY} clients; client, gateway and fake upstream share the machine`,
          goal: '>= 5000',
          baseline: { value: round(bestDirect, 0), unit: 'requests/s', what: 'the fake upstream directly' },
          ratio: round(bestVia / bestDirect, 3),
          detail: { concurrency: CONCURRENCY, rounds: directRps.length, usage_rows_metered: metered },
        },
        throughput_ratio_vs_direct: {
          value: round(bestVia / bestDirect, 3),
          unit: 'ratio',
          what: 'requests/s through the gateway ÷ sent directly to the fake upstream',
          goal: '>= 0.5',
          baseline: { value: round(bestDirect, 0), unit: 'requests/s', what: 'the fake upstream directly' },
          ratio: round(bestVia / bestDirect, 3),
          detail: {
            // The same load through a proxy that does nothing but forward: what any proxy costs on this machine.
            bare_proxy_rps: round(bestBare, 0),
            bare_proxy_ratio_vs_direct: round(bestBare / bestDirect, 3),
            gateway_vs_bare_proxy: round(bestVia / bestBare, 3),
          },
        },
        stream_ttfb_added_ms: {
          value: round(ttfbAdded, 3),
          unit: 'ms',
          what: 'p50 time to the first byte of a streamed answer through the gateway minus direct',
          goal: '<= 1',
          baseline: { value: round(p(directTtfb, 50), 3), unit: 'ms', what: 'p50 time to first byte, direct' },
          ratio: round(p(viaTtfb, 50) / p(directTtfb, 50), 2),
          detail: { via_ttfb_p50_ms: round(p(viaTtfb, 50), 3), samples: STREAM_SAMPLES },
        },
      };
      return figures;
    } finally {
      await Promise.all(pools.map((pool) => pool.close()));
      await agent.destroy();
      upstream.child.kill('SIGTERM');
      bareProxy.child.kill('SIGTERM');
    }
  },
};
