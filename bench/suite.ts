export interface Figure {
  value: number;
  unit: string;
  /** What the value measures, in words, as the README's table shows it. */
  what: string;
  /** The goal the issue sets, as text (`<= 300`, `>= 0.8`). */
  goal?: string;
  /** What the value is compared with, measured in the same run. */
  baseline?: { value: number; unit: string; what: string };
  ratio?: number;
  /** Further numbers that explain the value. */
  detail?: Record<string, number | string>;
}

export interface Suite {
  run(log: (message: string) => void): Promise<Record<string, Figure>>;
}

/** One `npm run bench` invocation: every suite it runs records the same run. */
export interface BenchRun {
  /** The commit the bench ran on, and how many files differed from it (a shared tree may hold others' edits). */
  commit: string;
  uncommittedFiles: number;
  startedAt: string;
  suites: string[];
}

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  os: string;
}

export interface SuiteResult {
  suite: string;
  run: BenchRun;
  machine: Machine;
  /** Load averages (1, 5 and 15 minutes, as `uptime` prints them) before and after the suite: others' work on it. */
  load: { before: number[]; after: number[] };
  durationS: number;
  at: string;
  metrics: Record<string, Figure>;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const median = (values: number[]): number => percentile(values, 50);
export const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
