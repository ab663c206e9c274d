import { BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartOptions } from 'chart.js';
import { useMemo } from 'react';
import { Bar } from 'react-chartjs-2';
import type { UsageSummary } from '../../../../shared/ipc/contract';
import { formatTokens, formatUsd } from '../../lib/format';
import { bucketStarts, type UsageRange } from '../../lib/usage-range';
import { useUi } from '../../stores';

Chart.register(BarElement, CategoryScale, LinearScale, Tooltip, Legend);

/** Distinct in light and dark themes alike; models beyond the palette reuse it. */
const PALETTE = ['#2a7f5a', '#3b7be0', '#d6a11c', '#c4384a', '#8a5cd1', '#1f9bb4', '#e07b39', '#6b7a8f'];

function bucketLabel(iso: string, bucket: 'hour' | 'day'): string {
  const date = new Date(iso);
  return bucket === 'hour'
    ? date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
}

/** One stacked dataset per model over every bucket of the range (quiet buckets at zero). */
export function stackByModel(summary: UsageSummary, range: UsageRange, measure: 'totalTokens' | 'costUsd') {
  const starts = bucketStarts(range);
  const index = new Map(starts.map((start, i) => [Date.parse(start), i]));
  const models = summary.groups.map((g) => g.key);
  const datasets = models.map((model, i) => {
    const data = starts.map(() => 0);
    for (const point of summary.series) {
      if (point.key !== model) continue;
      const at = index.get(Date.parse(point.bucketStart));
      if (at !== undefined) data[at] = (data[at] ?? 0) + point.totals[measure];
    }
    return { label: model, data, backgroundColor: PALETTE[i % PALETTE.length]!, stack: 'models', borderRadius: 2 };
  });
  return { labels: starts.map((s) => bucketLabel(s, range.bucket)), datasets };
}

function ChartCard({
  title,
  summary,
  range,
  measure,
}: {
  title: string;
  summary: UsageSummary;
  range: UsageRange;
  measure: 'totalTokens' | 'costUsd';
}) {
  // Re-read the theme's colours when it changes: chart.js draws on a canvas, outside CSS.
  const theme = useUi((s) => s.theme);
  const data = useMemo(() => stackByModel(summary, range, measure), [summary, range, measure]);
  const options = useMemo((): ChartOptions<'bar'> => {
    const css = getComputedStyle(document.documentElement);
    const text = css.getPropertyValue('--muted').trim() || '#5e6778';
    const grid = css.getPropertyValue('--line').trim() || '#dde1e8';
    const format = (value: number): string => (measure === 'costUsd' ? formatUsd(value) : formatTokens(value));
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { position: 'bottom', labels: { color: text, boxWidth: 12 } },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label ?? ''}: ${format(Number(item.raw))}` } },
      },
      scales: {
        x: { stacked: true, ticks: { color: text, maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
        y: {
          stacked: true,
          beginAtZero: true,
          ticks: { color: text, callback: (value) => format(Number(value)) },
          grid: { color: grid },
        },
      },
    };
    // theme: a dependency on purpose, the colours above come from it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [measure, theme]);
  return (
    <section className="card chart-card" aria-label={title}>
      <h3>{title}</h3>
      <div className="chart-box">
        <Bar data={data} options={options} />
      </div>
    </section>
  );
}

export function UsageCharts({ summary, range }: { summary: UsageSummary; range: UsageRange }) {
  const per = range.bucket === 'hour' ? 'hour' : 'day';
  return (
    <div className="chart-grid">
      <ChartCard title={`Tokens per ${per}, by model`} summary={summary} range={range} measure="totalTokens" />
      <ChartCard title={`Cost per ${per}, by model`} summary={summary} range={range} measure="costUsd" />
    </div>
  );
}
