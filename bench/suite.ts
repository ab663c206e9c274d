export interface Figure {
  value: number;
  unit: string;
  /** The goal the issue sets, as text (`<= 300`). */
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

export interface SuiteResult {
  suite: string;
  metrics: Record<string, Figure>;
  environment: Record<string, string | number>;
  durationS: number;
  at: string;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const median = (values: number[]): number => percentile(values, 50);
export const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
