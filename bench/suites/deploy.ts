import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { DeployJob } from '../../src/shared/ipc/contract-cloud';
import {
  DeployTestHost,
  DeployTestPanel,
  derivedTarball,
  packAgent,
} from '../../tests/integration/helpers/deploy-host.js';
import { TerminalTestClient } from '../../tests/integration/helpers/terminal-client.js';
import { until } from '../../tests/integration/helpers/until.js';
import { median, round, type Figure, type Suite } from '../suite.js';

const SLOTS = 3;
const UPGRADES = 2;

/**
 * Calls the agent's public gateway listener back to back and records every answer or failure with its time, so
 * the longest stretch without an answer (refused or dropped connections while the agent switches) can be read.
 * Any HTTP answer counts (the calls carry no key, so it is a 401): the listener is there.
 */
class GatewayProbe {
  private running = true;
  private readonly done: Promise<void>;
  private lastAnswer = performance.now();
  longestGapMs = 0;
  failures = 0;
  answers = 0;

  constructor(url: string) {
    this.done = this.loop(url);
  }

  private async loop(url: string): Promise<void> {
    while (this.running) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
        await response.arrayBuffer();
        const now = performance.now();
        this.longestGapMs = Math.max(this.longestGapMs, now - this.lastAnswer);
        this.lastAnswer = now;
        this.answers += 1;
      } catch {
        this.failures += 1;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

const seconds = (job: DeployJob): number =>
  (new Date(job.endedAt!).getTime() - new Date(job.startedAt).getTime()) / 1000;

export const deploySuite: Suite = {
  async run(log) {
    const host = await DeployTestHost.create();
    let panel: DeployTestPanel | null = null;
    try {
      log('packing the agent builds (not measured)');
      const out = join(host.work, 'tarballs');
      const base = await packAgent(out, '0.98.1');
      const versions = ['0.98.1', ...Array.from({ length: UPGRADES }, (_, i) => `0.98.${i + 2}`)];
      const tarballs = [base, ...versions.slice(1).map((v) => derivedTarball(base, out, v, () => undefined))];
      panel = await DeployTestPanel.create(base, { hostEnv: host.npmEnv });
      const hostId = await panel.addHost(host, 'bench host');
      const p = panel;
      const run = async (action: 'deploy' | 'upgrade' | 'rollback', tarball?: string): Promise<DeployJob> => {
        if (tarball) p.bundleOptions.tarball = tarball;
        const job = await p.ok('deploy:run', { hostId, action, deleteData: false });
        if (job.state !== 'succeeded') throw new Error(`${action} ended ${job.state}: ${job.message}`);
        return job;
      };

      log('deploying from nothing (tarball cached, dependencies from the npm cache)');
      const started = performance.now();
      const deployed = await run('deploy');
      const first = await p.ok('slots:create', { hostId, slot: { name: 'bench-0' } });
      const { url } = await p.ok('terminal:open', { hostId, slotId: first.id, mode: 'writable' });
      const console = await TerminalTestClient.open(url);
      await console.waitForPrompt(30_000);
      const freshS = (performance.now() - started) / 1000;
      console.close();

      for (let i = 1; i < SLOTS; i++) await p.ok('slots:create', { hostId, slot: { name: `bench-${i}` } });
      const running = await until(
        'every bench slot running',
        async () => (await p.ok('slots:list', { hostId })).slots,
        (slots) => slots.length === SLOTS && slots.every((s) => s.state === 'running' && s.programPid),
        { timeoutMs: 60_000 },
      );
      const pids = new Map(running.map((s) => [s.id, s.programPid]));

      const upgradeTimes: number[] = [];
      const gaps: number[] = [];
      let lost = 0;
      for (let i = 1; i <= UPGRADES; i++) {
        log(`upgrade ${i} of ${UPGRADES} to ${versions[i]} with a client on the gateway`);
        const probe = new GatewayProbe(`http://127.0.0.1:${host.gatewayPort}/v1/models`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const job = await run('upgrade', tarballs[i]);
        // The new agent answers before the job ends (health is checked): a short tail shows no late drop.
        await new Promise((resolve) => setTimeout(resolve, 500));
        await probe.stop();
        upgradeTimes.push(seconds(job));
        gaps.push(probe.longestGapMs);
        const after = (await p.ok('slots:list', { hostId })).slots;
        lost += [...pids].filter(
          ([id, pid]) => !after.some((s) => s.id === id && s.state === 'running' && s.programPid === pid),
        ).length;
      }

      log('rollback');
      const rollback = await run('rollback');

      const figures: Record<string, Figure> = {
        deploy_fresh_s: {
          value: round(freshS, 1),
          unit: 's',
          what: 'Deploy on a host with no agent (single-user, Node present, tarball cached, npm from a local cache) until a console on a new slot shows its prompt',
          detail: { deploy_job_s: round(seconds(deployed), 1), load_1min_before: loadavg()[0]!.toFixed(1) },
        },
        upgrade_s: {
          value: round(median(upgradeTimes), 1),
          unit: 's',
          what: `Upgrade job (upload, unpack reusing dependencies, back up, switch, health): median of ${UPGRADES}`,
          detail: { runs: upgradeTimes.map((t) => round(t, 1)).join(', ') },
        },
        upgrade_gateway_gap_ms: {
          value: Math.round(Math.max(...gaps)),
          unit: 'ms',
          what: 'Longest time the gateway listener gave no answer (refused or dropped) during an upgrade, a client calling it back to back; worst of the runs',
          goal: '<= 1500',
          detail: { runs: gaps.map((g) => Math.round(g)).join(', ') },
        },
        upgrade_slots_lost: {
          value: lost,
          unit: 'slots',
          what: `Slots whose shell was not the same running process after an upgrade (${SLOTS} slots, ${UPGRADES} upgrades)`,
          goal: '0',
        },
        rollback_s: {
          value: round(seconds(rollback), 1),
          unit: 's',
          what: 'Rollback job (back one release, database kept, health) until reconnected',
        },
      };
      return figures;
    } finally {
      panel?.dispose();
      await host.destroy();
    }
  },
};
