/**
 * npm run bench -- <suite> [<suite>...]: runs benchmark suites and writes bench/results/<suite>.json as
 *   {"suite": "...", "metrics": {"<name>": {"value": n, "unit": "...", "goal"?, "baseline"?, "ratio"?}}, ...}
 * Figures that compare with a baseline measure both in the same run, so the ratio holds on any machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Suite, SuiteResult } from './suite.js';
import { gatewaySuite } from './suites/gateway.js';
import { panelSuite } from './suites/panel.js';
import { slotsSuite } from './suites/slots.js';
import { tunnelSuite } from './suites/tunnel.js';
import { usageSuite } from './suites/usage.js';

const suites: Record<string, Suite> = {
  slots: slotsSuite,
  tunnel: tunnelSuite,
  panel: panelSuite,
  usage: usageSuite,
  gateway: gatewaySuite,
};

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const names = requested.length > 0 ? requested : Object.keys(suites);
const unknown = names.filter((name) => !suites[name]);
if (unknown.length > 0) {
  console.error(`Unknown suite ${unknown.join(', ')}. Suites: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}

const resultsDir = join(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });

for (const name of names) {
  console.log(`\n== bench ${name}`);
  const started = Date.now();
  const metrics = await suites[name]!.run((message) => console.log(`   ${message}`));
  const result: SuiteResult = {
    suite: name,
    metrics,
    environment: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
    },
    durationS: Math.round((Date.now() - started) / 1000),
    at: new Date().toISOString(),
  };
  const file = join(resultsDir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  for (const [metric, figure] of Object.entries(metrics)) {
    const extra = figure.baseline
      ? ` (baseline ${figure.baseline.value} ${figure.baseline.unit}: ${figure.baseline.what})`
      : '';
    console.log(
      `   ${metric.padEnd(32)} ${String(figure.value).padStart(10)} ${figure.unit}${figure.goal ? `   goal ${figure.goal}` : ''}${extra}`,
    );
  }
  console.log(`   wrote ${file}`);
}
