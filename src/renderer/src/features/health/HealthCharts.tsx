import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineElement,
  PointElement,
  Tooltip,
  type ChartOptions,
} from 'chart.js';
import { useMemo } from 'react';
import { Line } from 'react-chartjs-2';
import type { MetricsSample } from '../../../../shared/ipc/contract';
import { useUi } from '../../stores';

Chart.register(LineElement, PointElement, CategoryScale, LinearScale, Tooltip, Legend);

const COLORS = {
  requests: '#3b7be0',
  errors: '#c4384a',
  tokens: '#2a7f5a',
  cpu: '#8a5cd1',
  memory: '#e07b39',
};
const STATE_COLORS: Record<string, string> = {
  running: '#2a7f5a',
  starting: '#1f9bb4',
  restarting: '#d6a11c',
  stopped: '#6b7a8f',
  failed: '#c4384a',
};

interface Series {
  label: string;
  color: string;
  values: number[];
}

function LineCard({
  title,
  labels,
  series,
  unit,
}: {
  title: string;
  labels: string[];
  series: Series[];
  unit?: string;
}) {
  // Re-read the theme's colours when it changes: chart.js draws on a canvas, outside CSS.
  const theme = useUi((s) => s.theme);
  const data = useMemo(
    () => ({
      labels,
      datasets: series.map((s) => ({
        label: s.label,
        data: s.values,
        borderColor: s.color,
        backgroundColor: s.color,
        borderWidth: 2,
        // A line needs two samples: until then the one point is drawn.
        pointRadius: labels.length < 3 ? 3 : 0,
        tension: 0.2,
      })),
    }),
    [labels, series],
  );
  const options = useMemo((): ChartOptions<'line'> => {
    const css = getComputedStyle(document.documentElement);
    const text = css.getPropertyValue('--muted').trim() || '#5e6778';
    const grid = css.getPropertyValue('--line').trim() || '#dde1e8';
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { position: 'bottom', labels: { color: text, boxWidth: 12 } } },
      scales: {
        x: { ticks: { color: text, maxRotation: 0, autoSkipPadding: 16 }, grid: { display: false } },
        y: {
          beginAtZero: true,
          ticks: { color: text, callback: (value) => `${Number(value)}${unit ?? ''}` },
          grid: { color: grid },
        },
      },
    };
    // theme: a dependency on purpose, the colours above come from it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [theme, unit]);
  return (
    <section className="card chart-card" aria-label={title}>
      <h3>{title}</h3>
      <div className="chart-box health-chart">
        <Line data={data} options={options} />
      </div>
    </section>
  );
}

/** Live charts of the agent's short series: traffic, tokens, slots by state, CPU and memory. */
export function HealthCharts({ samples }: { samples: MetricsSample[] }) {
  const labels = useMemo(
    () => samples.map((s) => new Date(s.at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })),
    [samples],
  );
  const charts = useMemo(() => {
    const states = [...new Set(samples.flatMap((s) => Object.keys(s.slots)))].sort();
    return {
      traffic: [
        { label: 'requests/s', color: COLORS.requests, values: samples.map((s) => s.requestsPerS) },
        { label: 'errors/s', color: COLORS.errors, values: samples.map((s) => s.errorsPerS) },
      ],
      tokens: [{ label: 'tokens/min', color: COLORS.tokens, values: samples.map((s) => s.tokensPerMin) }],
      slots: states.map((state) => ({
        label: state,
        color: STATE_COLORS[state] ?? '#6b7a8f',
        values: samples.map((s) => s.slots[state] ?? 0),
      })),
      load: [
        { label: 'agent CPU %', color: COLORS.cpu, values: samples.map((s) => s.agentCpuPercent) },
        { label: 'host memory %', color: COLORS.memory, values: samples.map((s) => s.hostMemoryPercent) },
      ],
    };
  }, [samples]);
  if (samples.length === 0)
    return <p className="empty padded">The charts fill in as the agent takes a sample every 10 seconds.</p>;
  return (
    <div className="chart-grid health-charts">
      <LineCard title="Requests and errors per second" labels={labels} series={charts.traffic} />
      <LineCard title="Tokens per minute" labels={labels} series={charts.tokens} />
      <LineCard title="Slots by state" labels={labels} series={charts.slots} />
      <LineCard title="CPU and memory" labels={labels} series={charts.load} unit="%" />
    </div>
  );
}
