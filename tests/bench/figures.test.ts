import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  END_MARKER,
  figuresSection,
  FiguresError,
  ownRunMarkers,
  OWN_RUN_TABLES,
  readResults,
  replaceSection,
  START_MARKER,
  TABLE,
} from '../../bench/figures.js';
import type { Figure, SuiteResult } from '../../bench/suite.js';

const ROOT = resolve(import.meta.dirname, '../..');
const RUN = {
  commit: '0123456789abcdef0123456789abcdef01234567',
  uncommittedFiles: 3,
  startedAt: '2026-12-01T12:03:00.000Z',
};

/** One run's results for every suite the table shows; each metric's value is 1 unless `values` says otherwise. */
function sampleRun(values: Record<string, Partial<Figure>> = {}): SuiteResult[] {
  return Object.entries(TABLE).map(([suite, metrics], index) => ({
    suite,
    run: { ...RUN, suites: Object.keys(TABLE) },
    machine: { cores: 2, cpuModel: 'AMD EPYC', memoryGiB: 24, node: 'v20.20.2', os: 'Linux 6.1' },
    load: { before: [1.5 + index, 1, 1], after: [2.5 + index, 1, 1] },
    durationS: 10,
    at: RUN.startedAt,
    metrics: Object.fromEntries(
      metrics.map((metric) => [
        metric,
        { value: 1, unit: 'ms', what: `what ${suite}.${metric} measures`, ...values[`${suite}.${metric}`] },
      ]),
    ),
  }));
}

describe('npm run figures', () => {
  let dir = '';
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('writes one row per metric from the results: what it measures, value, same-run baseline, goal, met or missed', () => {
    const section = figuresSection(
      sampleRun({
        'usage.dashboard_http_ms_10m_rows': { value: 72.4, goal: '<= 100' },
        'gateway.throughput_ratio_vs_bare_proxy': {
          value: 0.91,
          unit: 'ratio',
          goal: '>= 0.95',
          baseline: { value: 8158, unit: 'requests/s', what: 'a bare node:http + undici proxy' },
        },
        'usage.ingest_rows_per_s': { value: 13480, unit: 'rows/s' },
      }),
    );
    const rows = section.split('\n').filter((line) => line.startsWith('| `'));
    expect(rows).toHaveLength(Object.values(TABLE).flat().length);
    expect(rows).toContain(
      '| `usage.dashboard_http_ms_10m_rows` | what usage.dashboard_http_ms_10m_rows measures | 72.4 ms |  | ≤ 100 | met |',
    );
    expect(rows).toContain(
      '| `gateway.throughput_ratio_vs_bare_proxy` | what gateway.throughput_ratio_vs_bare_proxy measures | 0.91 | 8158 requests/s: a bare node:http + undici proxy | ≥ 0.95 | **missed** |',
    );
    expect(rows).toContain(
      '| `usage.ingest_rows_per_s` | what usage.ingest_rows_per_s measures | 13,480 rows/s |  |  |  |',
    );
    // Where the figures come from: the commit, the date, the machine and how loaded it was.
    expect(section).toContain(
      'commit `0123456789` (with 3 files changed in the working tree), started 2026-12-01 12:03 UTC',
    );
    expect(section).toContain('on 2 cores (AMD EPYC), 24 GiB, Node v20.20.2');
    expect(section).toMatch(/Load average .*: 1\.5 to 6\.5/);
    expect(section).toContain(
      'Goals missed in this run: `gateway.throughput_ratio_vs_bare_proxy` (0.91, goal ≥ 0.95).',
    );
  });

  it('refuses results that lack a metric the table shows, naming it', () => {
    const results = sampleRun();
    delete results.find((r) => r.suite === 'slots')!.metrics.idle_rss_mb_per_slot;
    expect(() => figuresSection(results)).toThrow(FiguresError);
    expect(() => figuresSection(results)).toThrow(/slots\.idle_rss_mb_per_slot/);
    expect(() => figuresSection(results.filter((r) => r.suite !== 'panel'))).toThrow(
      /panel \(no bench\/results\/panel\.json\)/,
    );
  });

  it('refuses a result file that does not say which run and machine it comes from', () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-figures-'));
    writeFileSync(join(dir, 'panel.json'), JSON.stringify({ suite: 'panel', metrics: {}, at: RUN.startedAt }));
    expect(() => readResults(dir)).toThrow(/panel\.json does not say which run, commit and machine/);
  });

  it('refuses results from two runs: the table shows one', () => {
    const results = sampleRun();
    results[1]!.run = { ...results[1]!.run, startedAt: '2026-11-30T08:00:00.000Z' };
    expect(() => figuresSection(results)).toThrow(/mixes 2 runs/);
  });

  it('rewrites only the part of README.md between the markers, and says so when they are missing', () => {
    const readme = `# Project\n\n## Benchmarks\n\nText.\n\n${START_MARKER}\n\nold table\n\n${END_MARKER}\n\n## Next\n`;
    expect(replaceSection(readme, 'new table')).toBe(
      `# Project\n\n## Benchmarks\n\nText.\n\n${START_MARKER}\n\nnew table\n\n${END_MARKER}\n\n## Next\n`,
    );
    expect(() => replaceSection('# Project\n', 'new table')).toThrow(/no .* pair/);
  });

  it('as a command, writes a suite run on its own (reliability) into its own table, beside the one-run table', () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-figures-'));
    mkdirSync(join(dir, 'bench/results'), { recursive: true });
    for (const result of sampleRun())
      writeFileSync(join(dir, 'bench/results', `${result.suite}.json`), JSON.stringify(result));
    const own = ownRunMarkers('reliability');
    const reliability: SuiteResult = {
      ...sampleRun()[0]!,
      suite: 'reliability',
      // Its own run, later than the other suites': the one-run rule holds within each table.
      run: { ...RUN, startedAt: '2026-12-01T20:40:00.000Z', suites: ['reliability'] },
      metrics: Object.fromEntries(
        OWN_RUN_TABLES.reliability!.map((metric) => [
          metric,
          { value: 0, unit: 'rows', what: `what ${metric} measures` },
        ]),
      ),
    };
    reliability.metrics.r1_rows_missing = {
      value: 2,
      unit: 'rows',
      what: 'complete answers with no usage row',
      goal: '<= 0',
    };
    writeFileSync(join(dir, 'bench/results/reliability.json'), JSON.stringify(reliability));
    const readme = `# P\n\n${START_MARKER}\n\n${END_MARKER}\n\n## Faults\n\n${own.start}\n\n${own.end}\n`;
    writeFileSync(join(dir, 'README.md'), readme);
    const figures = (): string =>
      execFileSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'bench/figures.ts')], {
        cwd: dir,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    figures();
    const written = readFileSync(join(dir, 'README.md'), 'utf8');
    const [main, faults] = written.split('## Faults');
    expect(main).toContain('started 2026-12-01 12:03 UTC');
    expect(main).not.toContain('reliability.');
    expect(faults).toContain('started 2026-12-01 20:40 UTC');
    expect(faults).toMatch(
      /\| `reliability\.r1_rows_missing` +\| complete answers with no usage row +\| 2 rows +\| +\| ≤ 0 +\| \*\*missed\*\* +\|/,
    );
    expect(faults).toContain('Goals missed in this run: `reliability.r1_rows_missing` (2 rows, goal ≤ 0).');

    delete reliability.metrics.restore_s;
    writeFileSync(join(dir, 'bench/results/reliability.json'), JSON.stringify(reliability));
    expect(figures).toThrow(/bench\/results lacks reliability\.restore_s: run `npm run bench -- reliability`/);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toBe(written);
  }, 60_000);

  it('as a command, writes README.md from bench/results/*.json, and exits 1 without touching it when a metric is missing', () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-figures-'));
    mkdirSync(join(dir, 'bench/results'), { recursive: true });
    const results = sampleRun({ 'panel.tti_ms': { value: 512, goal: '<= 600' } });
    for (const result of results)
      writeFileSync(join(dir, 'bench/results', `${result.suite}.json`), JSON.stringify(result));
    const readme = `# Project\n\n## Benchmarks\n\n${START_MARKER}\n\n${END_MARKER}\n\n## Next\n`;
    writeFileSync(join(dir, 'README.md'), readme);
    const figures = (): string =>
      execFileSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'bench/figures.ts')], {
        cwd: dir,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    figures();
    const written = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(written).toMatch(/\| `panel\.tti_ms` +\| what panel\.tti_ms measures +\| 512 ms +\| +\| ≤ 600 +\| met +\|/);
    expect(written.endsWith('## Next\n')).toBe(true);

    const panel = results.find((r) => r.suite === 'panel')!;
    delete panel.metrics.tti_ms;
    writeFileSync(join(dir, 'bench/results/panel.json'), JSON.stringify(panel));
    expect(figures).toThrow(/bench\/results lacks panel\.tti_ms/);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toBe(written);
    // Two tsx start-ups on a loaded 2-core machine.
  }, 60_000);
});
