/**
 * npm run figures: writes the README's benchmark table from bench/results/*.json, the files one `npm run bench` run
 * wrote. Nothing in the table is typed by hand: it refuses results that mix runs or lack a metric the table shows.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Figure, SuiteResult } from './suite.js';

/** The table's rows, in order: every one must be in the results. */
export const TABLE: Record<string, string[]> = {
  slots: [
    'create_to_ready_ms_p50',
    'create_100_total_s',
    'terminal_throughput_ratio',
    'idle_rss_mb_per_slot',
    'idle_pss_mb_per_slot',
  ],
  tunnel: ['throughput_ratio_vs_openssh', 'echo_rtt_ratio_vs_openssh', 'recovery_ms'],
  panel: ['tti_ms', 'initial_js_gzip_kb'],
  gateway: [
    'overhead_ms_p50_vs_bare_proxy',
    'latency_p999_ratio_vs_bare_proxy',
    'throughput_ratio_vs_bare_proxy',
    'overhead_ms_p50',
    'overhead_ms_p99',
    'overhead_ms_p50_large_request',
    'throughput_rps',
    'throughput_ratio_vs_direct',
    'stream_ttfb_added_ms',
  ],
  usage: ['dashboard_http_ms_10m_rows', 'ingest_rows_per_s'],
};

/**
 * Suites run on their own (`npm run bench -- reliability`: minutes of faults and load): each has its own table between
 * its own markers, from its own run, written when the README has those markers.
 */
export const OWN_RUN_TABLES: Record<string, string[]> = {
  reliability: [
    'r1_rows_missing',
    'r7_errors',
    'r7_memory_growth_pct',
    'r7_gateway_p99_ms_during_bursts',
    'r7_gateway_p99_ratio_during_bursts',
    'r3_sessions_lost',
    'r3_recovery_s',
    'r3_problems',
    'restore_s',
    'r9_restore_faults',
  ],
};

export const ownRunMarkers = (suite: string): { start: string; end: string } => ({
  start: `<!-- bench-figures:${suite}:start (npm run figures writes this part from bench/results/${suite}.json) -->`,
  end: `<!-- bench-figures:${suite}:end -->`,
});

export const START_MARKER = '<!-- bench-figures:start (npm run figures writes this part from bench/results) -->';
export const END_MARKER = '<!-- bench-figures:end -->';

export class FiguresError extends Error {}

const number = (value: number): string =>
  Math.abs(value) >= 10_000 ? Math.round(value).toLocaleString('en-US') : String(value);

/** `51.2 ms`, `1.01` (a ratio has no unit), `13,000 rows/s`. */
export function formatValue(value: number, unit: string): string {
  return unit === 'ratio' ? number(value) : `${number(value)} ${unit}`;
}

/** Whether the value meets its goal (`<= 100`, `>= 0.95`); null when the figure has none. */
export function meetsGoal(figure: Pick<Figure, 'value' | 'goal'>): boolean | null {
  if (!figure.goal) return null;
  const match = /^\s*(<=|>=)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(figure.goal);
  if (!match) throw new FiguresError(`goal "${figure.goal}" is not "<= n" or ">= n"`);
  const limit = Number(match[2]);
  return match[1] === '<=' ? figure.value <= limit : figure.value >= limit;
}

const goalText = (goal: string): string => goal.replace('<=', '≤').replace('>=', '≥');
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The README's part between the markers: where the figures come from, the table, and the goals missed. */
export function figuresSection(results: SuiteResult[], table: Record<string, string[]> = TABLE): string {
  const bySuite = new Map(results.map((result) => [result.suite, result]));
  const missing: string[] = [];
  for (const [suite, metrics] of Object.entries(table)) {
    const result = bySuite.get(suite);
    if (!result) missing.push(`${suite} (no bench/results/${suite}.json)`);
    else for (const metric of metrics) if (!result.metrics[metric]) missing.push(`${suite}.${metric}`);
  }
  const rerun =
    table === TABLE ? '`npm run bench` (all suites, one run)' : `\`npm run bench -- ${Object.keys(table).join(' ')}\``;
  if (missing.length > 0)
    throw new FiguresError(`bench/results lacks ${missing.join(', ')}: run ${rerun}, then npm run figures.`);
  const shown = Object.keys(table).map((suite) => bySuite.get(suite)!);
  const runs = new Set(shown.map((result) => `${result.run.startedAt} ${result.run.commit}`));
  if (runs.size > 1)
    throw new FiguresError(
      `bench/results mixes ${runs.size} runs (${shown.map((r) => `${r.suite}: ${r.run.startedAt}`).join(', ')}): ` +
        'the table shows one run; run `npm run bench` for all suites, then npm run figures.',
    );

  const { run, machine } = shown[0]!;
  const loads = shown.flatMap((result) => [result.load.before[0]!, result.load.after[0]!]);
  const lines: string[] = [
    `From one run of \`npm run bench\`: commit \`${run.commit.slice(0, 10)}\`` +
      (run.uncommittedFiles > 0 ? ` (with ${run.uncommittedFiles} files changed in the working tree)` : '') +
      `, started ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC, on ${machine.cores} cores (${machine.cpuModel}),` +
      ` ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}. Load average (1 minute, as \`uptime\` shows` +
      ` it) at the start and end of each suite: ${Math.min(...loads)} to ${Math.max(...loads)}` +
      ` (${shown.map((r) => `${r.suite} ${r.load.before[0]}→${r.load.after[0]}`).join(', ')}); a load above` +
      ` ${machine.cores} means other work shared the cores. A baseline is measured in the same run as its value.`,
    '',
    '| metric | what it measures | value | baseline (same run) | goal | |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  const misses: string[] = [];
  for (const result of shown) {
    for (const name of table[result.suite]!) {
      const figure = result.metrics[name]!;
      if (!figure.what) throw new FiguresError(`${result.suite}.${name} does not say what it measures ("what")`);
      const met = meetsGoal(figure);
      const value = formatValue(figure.value, figure.unit);
      if (met === false) misses.push(`\`${result.suite}.${name}\` (${value}, goal ${goalText(figure.goal!)})`);
      const baseline = figure.baseline
        ? `${formatValue(figure.baseline.value, figure.baseline.unit)}: ${figure.baseline.what}`
        : '';
      lines.push(
        `| \`${result.suite}.${name}\` | ${cell(figure.what)} | ${value} | ${cell(baseline)} | ` +
          `${figure.goal ? goalText(figure.goal) : ''} | ${met === null ? '' : met ? 'met' : '**missed**'} |`,
      );
    }
  }
  lines.push(
    '',
    misses.length > 0 ? `Goals missed in this run: ${misses.join(', ')}.` : 'Every goal was met in this run.',
  );
  return lines.join('\n');
}

/** The README with the part between the markers replaced. */
export function replaceSection(
  readme: string,
  section: string,
  markers = { start: START_MARKER, end: END_MARKER },
): string {
  const start = readme.indexOf(markers.start);
  const end = readme.indexOf(markers.end);
  if (start < 0 || end < start)
    throw new FiguresError(`README.md has no "${markers.start}" … "${markers.end}" pair to write the table between.`);
  return `${readme.slice(0, start + markers.start.length)}\n\n${section}\n\n${readme.slice(end)}`;
}

export function readResults(dir: string): SuiteResult[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => {
      const result = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Partial<SuiteResult>;
      if (!result.suite || !result.run?.commit || !result.machine || !result.load || !result.metrics)
        throw new FiguresError(
          `bench/results/${file} does not say which run, commit and machine it comes from (an older bench wrote it):` +
            ' run `npm run bench`, then npm run figures.',
        );
      return result as SuiteResult;
    });
}

/** Run from the project's root (npm run figures does): README.md and bench/results are read from there. */
async function main(root: string): Promise<void> {
  const readmePath = join(root, 'README.md');
  const results = readResults(join(root, 'bench/results'));
  let written = replaceSection(readFileSync(readmePath, 'utf8'), figuresSection(results));
  for (const [suite, metrics] of Object.entries(OWN_RUN_TABLES)) {
    const markers = ownRunMarkers(suite);
    if (written.includes(markers.start))
      written = replaceSection(written, figuresSection(results, { [suite]: metrics }), markers);
  }
  // Prettier pads the table as `npm run format:check` expects it.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(readmePath)) ?? {};
  const readme = await prettier.format(written, {
    ...options,
    filepath: readmePath,
  });
  writeFileSync(readmePath, readme);
  console.log('README.md: benchmark table written from bench/results');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.cwd()).catch((error: unknown) => {
    console.error(error instanceof FiguresError ? error.message : error);
    process.exit(1);
  });
}
