import type { DeployAction, DeployJob, DeployStep } from '../../../../shared/ipc/contract';

/** How long until the idle stop, as the sidebar says it: "42 min", "1 h 5 min", "40 s". */
export function formatCountdown(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.ceil(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** The last minutes to the second, as a console's warning counts them down: "4:05". */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A step's elapsed time: "7 s", "1:05", "1:02:03". */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** How long a step took, or has been running at `now`; null before it started. */
export function stepElapsedMs(step: DeployStep, now: number): number | null {
  if (!step.startedAt) return null;
  const end = step.endedAt ? Date.parse(step.endedAt) : step.state === 'running' ? now : null;
  return end === null ? null : Math.max(0, end - Date.parse(step.startedAt));
}

export const STEP_ICON: Record<DeployStep['state'], string> = {
  pending: '○',
  running: '◌',
  done: '✓',
  failed: '✕',
  skipped: '–',
  cancelled: '⊘',
};

export const STEP_STATE_LABEL: Record<DeployStep['state'], string> = {
  pending: 'waiting',
  running: 'running',
  done: 'done',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
};

export const ACTION_TITLE: Record<DeployAction, string> = {
  deploy: 'Deploy the agent',
  upgrade: 'Update the agent',
  rollback: 'Roll back the agent',
  uninstall: 'Uninstall the agent',
};

/** What a job did, in one line: "Update the agent: 0.1.0 → 0.2.0". */
export function jobTitle(job: DeployJob): string {
  const versions =
    job.fromVersion && job.toVersion
      ? `: ${job.fromVersion} → ${job.toVersion}`
      : job.toVersion
        ? ` ${job.toVersion}`
        : job.fromVersion && job.action === 'uninstall'
          ? ` ${job.fromVersion}`
          : '';
  return `${ACTION_TITLE[job.action]}${versions}`;
}

export const JOB_STATE_LABEL: Record<DeployJob['state'], string> = {
  running: 'running',
  succeeded: 'done',
  failed: 'failed',
  cancelled: 'cancelled',
  'rolled-back': 'rolled back',
};
