/**
 * npm run bench -- <suite> [<suite>...]: runs benchmark suites (all of them by default) and writes
 * bench/results/<suite>.json (see SuiteResult in suite.ts): the run (commit, start), the machine, its load, and
 * {"<metric>": {"value", "unit", "what", "goal"?, "baseline"?, "ratio"?, "detail"?}}.
 * Figures that compare with a baseline measure both in the same run, so the ratio holds on any machine.
 * `npm run figures` then writes the README's table from these files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import type { BenchRun, Machine, Suite, SuiteResult } from './suite.js';
import { deploySuite } from './suites/deploy.js';
import { gatewaySuite } from './suites/gateway.js';
import { panelSuite } from './suites/panel.js';
import { portalSuite } from './suites/portal.js';
import { reliabilitySuite } from './suites/reliability.js';
import { slotsSuite } from './suites/slots.js';
import { tunnelSuite } from './suites/tunnel.js';
import { usageSuite } from './suites/usage.js';

const suites: Record<string, Suite> = {
  slots: slotsSuite,
  tunnel: tunnelSuite,
  panel: panelSuite,
  usage: usageSuite,
  gateway: gatewaySuite,
  deploy: deploySuite,
  portal: portalSuite,
  reliability: reliabilitySuite,
};

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const names = requested.length > 0 ? requested : Object.keys(suites);
const unknown = names.filter((name) => !suites[name]);
if (unknown.length > 0) {
  console.error(`Unknown suite ${unknown.join(', ')}. Suites: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}

const root = join(import.meta.dirname, '..');
const git = (...args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
const run: BenchRun = {
  commit: git('rev-parse', 'HEAD'),
  uncommittedFiles: git('status', '--porcelain', '--untracked-files=no').split('\n').filter(Boolean).length,
  startedAt: new Date().toISOString(),
  suites: names,
};
const machine: Machine = {
  cores: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  os: `${type()} ${release()}`,
};
const load = (): number[] => loadavg().map((value) => Math.round(value * 100) / 100);

const resultsDir = join(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });

const failed: string[] = [];
for (const name of names) {
  console.log(`\n== bench ${name}`);
  const started = Date.now();
  const before = load();
  let metrics: SuiteResult['metrics'];
  try {
    metrics = await suites[name]!.run((message) => console.log(`   ${message}`));
  } catch (error) {
    // The other suites still run; this one writes nothing, so npm run figures says it is missing.
    console.error(`   bench ${name} failed:`, error);
    failed.push(name);
    continue;
  }
  const result: SuiteResult = {
    suite: name,
    run,
    machine,
    load: { before, after: load() },
    durationS: Math.round((Date.now() - started) / 1000),
    at: new Date().toISOString(),
    metrics,
  };
  const file = join(resultsDir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  for (const [metric, figure] of Object.entries(metrics)) {
    const extra = figure.baseline
      ? ` (baseline ${figure.baseline.value} ${figure.baseline.unit}: ${figure.baseline.what})`
      : '';
    console.log(
      `   ${metric.padEnd(36)} ${String(figure.value).padStart(10)} ${figure.unit}${figure.goal ? `   goal ${figure.goal}` : ''}${extra}`,
    );
  }
  console.log(`   wrote ${file}`);
}
if (failed.length > 0) {
  console.error(`\nFailed: ${failed.join(', ')} (their results were not written).`);
  process.exit(1);
}
