/**
 * R1: kill -9 the agent while gateway requests run, start it again on the same data dir and port, and carry on.
 * Afterwards every request whose client saw a complete answer must have its usage row (matched by upstream's
 * request id): the gateway commits the row before it sends the answer (or the last piece of a stream).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { AgentProcess } from '../helpers/agent.js';
import { freePort, gatewayUser, JSON_BODY, recordedRequestIds, send, STREAM_BODY } from './gateway-client.js';

export interface AgentKillOptions {
  upstreamUrl: string;
  requests: number;
  concurrency: number;
  /** How many times the agent is killed, spread evenly over the run. */
  kills: number;
  /** One request in this many is a stream. */
  streamEvery?: number;
  log?: (message: string) => void;
}

export interface AgentKillResult {
  requests: number;
  complete: number;
  /** Complete answers with no usage row: must be 0. */
  rowsMissing: number;
  missingRequestIds: string[];
  /** Requests the client did not see complete (cut by a kill, or refused while the agent was down). */
  incomplete: number;
  /** Of those, how many still have a row (upstream answered and the row was committed before the kill). */
  incompleteWithRow: number;
  streams: number;
  kills: number;
  /** Requests in flight at each kill. */
  inFlightAtKill: number[];
  /** From kill to the agent ready again, each time. */
  restartMs: number[];
  errors: Record<string, number>;
}

export async function runAgentKill(options: AgentKillOptions): Promise<AgentKillResult> {
  const log = options.log ?? (() => undefined);
  const streamEvery = options.streamEvery ?? 4;
  const port = await freePort();
  const agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_UPSTREAM_URL: options.upstreamUrl,
      SLOTDECK_AGENT_GATEWAY_PORT: String(port),
      SLOTDECK_AGENT_LOG_LEVEL: 'warn',
    },
  });
  // Connections die with the agent; undici opens new ones to the same address.
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: options.concurrency });
  try {
    const { userId, secret } = await gatewayUser(agent, 'r1-agent-kill');
    const answers: Array<{ requestId: string | null; complete: boolean; error: string | null }> = [];
    const killAt = Array.from({ length: options.kills }, (_, i) =>
      Math.floor((options.requests * (i + 1)) / (options.kills + 1)),
    );
    let next = 0;
    let inFlight = 0;
    let down = false;
    const inFlightAtKill: number[] = [];
    const restartMs: number[] = [];
    let restarting: Promise<void> = Promise.resolve();

    const killAndRestart = async (): Promise<void> => {
      down = true;
      const cut = inFlight;
      inFlightAtKill.push(cut);
      const killed = performance.now();
      await agent.kill();
      log(`killed the agent (kill -9) with ${cut} requests in flight; starting it again`);
      await agent.launch();
      restartMs.push(performance.now() - killed);
      down = false;
    };

    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        for (;;) {
          const index = next++;
          if (index >= options.requests) return;
          if (killAt.includes(index)) restarting = killAndRestart();
          inFlight += 1;
          const answer = await send(pool, secret, index % streamEvery === 0 ? STREAM_BODY : JSON_BODY);
          inFlight -= 1;
          answers.push(answer);
          // While the agent is down, requests are refused at once: wait for it instead of spending the run on them.
          if (!answer.complete && down) await restarting;
          else if (!answer.complete) await sleep(5);
        }
      }),
    );
    await restarting;

    const recorded = recordedRequestIds(agent, userId);
    const complete = answers.filter((a) => a.complete);
    const missing = complete.filter((a) => a.requestId === null || !recorded.has(a.requestId));
    const incomplete = answers.filter((a) => !a.complete);
    const errors: Record<string, number> = {};
    for (const a of incomplete) errors[a.error ?? 'unknown'] = (errors[a.error ?? 'unknown'] ?? 0) + 1;
    return {
      requests: answers.length,
      complete: complete.length,
      rowsMissing: missing.length,
      missingRequestIds: missing.slice(0, 20).map((a) => a.requestId ?? '(no request id)'),
      incomplete: incomplete.length,
      incompleteWithRow: incomplete.filter((a) => a.requestId !== null && recorded.has(a.requestId)).length,
      streams: Math.ceil(options.requests / streamEvery),
      kills: inFlightAtKill.length,
      inFlightAtKill,
      restartMs,
      errors,
    };
  } finally {
    await pool.close();
    await agent.destroy();
  }
}
