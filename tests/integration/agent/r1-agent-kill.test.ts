/**
 * R1 (stand-in upstream): kill -9 the agent in the middle of gateway traffic. Metering is what end users are billed
 * and limited by: every request whose client saw a complete answer must have its usage row after the agent comes
 * back. `npm run bench -- reliability` runs the same scenario with 10,000 requests and three kills.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { runAgentKill } from '../reliability/r1-agent-kill.js';

let upstream: FakeAnthropic;

beforeAll(async () => {
  upstream = await startFakeAnthropic();
});
afterAll(async () => {
  await upstream?.close();
});

describe('R1: the agent killed during gateway requests (stand-in upstream)', () => {
  it('leaves no complete answer unmetered', async () => {
    const result = await runAgentKill({ upstreamUrl: upstream.url, requests: 1600, concurrency: 20, kills: 1 });
    // The kill really cut requests short, and the run went on after the restart.
    expect(result.kills).toBe(1);
    expect(result.inFlightAtKill[0]).toBeGreaterThan(0);
    expect(result.incomplete).toBeGreaterThan(0);
    expect(result.complete).toBeGreaterThan(1000);
    expect(result.requests).toBe(1600);
    expect({ rowsMissing: result.rowsMissing, missing: result.missingRequestIds }).toEqual({
      rowsMissing: 0,
      missing: [],
    });
  }, 120_000);
});
