/**
 * R7, scaled down for CI (stand-in upstream): 40 consoles receiving output, five of them printing 2 MB bursts every
 * few seconds, while the gateway serves 100 requests/s. No gateway request goes without its answer and no console
 * closes, stalls or loses a byte of a burst. `npm run bench -- reliability` runs 200 consoles and 500 requests/s
 * for 60 s and reports latency and memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { runConsoleLoad } from '../reliability/r7-console-load.js';

let upstream: FakeAnthropic;

beforeAll(async () => {
  upstream = await startFakeAnthropic();
});
afterAll(async () => {
  await upstream?.close();
});

describe('R7: consoles and gateway under load together (stand-in upstream)', () => {
  it('answers every gateway request and keeps every console streaming through output bursts', async () => {
    const result = await runConsoleLoad({
      upstreamUrl: upstream.url,
      tickerSlots: 7,
      viewersPerTicker: 5,
      burstSlots: 5,
      burstBytes: 2_000_000,
      burstEveryS: 5,
      minBursts: 2,
      requestsPerSecond: 100,
      warmupS: 3,
      seconds: 15,
    });
    expect(result.consoles).toBe(40);
    expect(result.bursts).toBeGreaterThanOrEqual(2);
    // A machine busy with other work sends fewer (a request waits for a free connection or is not sent), not none.
    expect(result.gatewayRequests).toBeGreaterThan(500);
    // Some requests really went out while bursts were being printed.
    expect(result.requestsDuringBursts).toBeGreaterThan(0);
    expect({ errors: result.gatewayErrors, kinds: result.gatewayErrorKinds }).toEqual({ errors: 0, kinds: {} });
    expect(result.consoleErrors).toEqual([]);
  }, 120_000);
});
