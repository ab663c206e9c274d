import type { DeployJob, DeployStatus, DeployStep, IdleStatus } from '../../../src/shared/ipc/contract';

export const step = (id: string, changes: Partial<DeployStep> = {}): DeployStep => ({
  id,
  label: id,
  state: 'pending',
  startedAt: null,
  endedAt: null,
  detail: null,
  output: null,
  progress: null,
  ...changes,
});

export const job = (changes: Partial<DeployJob> = {}): DeployJob => ({
  id: 'job-1',
  hostId: 'prod',
  action: 'deploy',
  state: 'running',
  steps: [],
  message: null,
  error: null,
  fromVersion: null,
  toVersion: '0.2.0',
  startedAt: '2026-12-01T10:00:00.000Z',
  endedAt: null,
  ...changes,
});

export const deployStatus = (changes: Partial<DeployStatus> = {}): DeployStatus => ({
  bundled: { version: '0.2.0', contractVersion: 2, minContract: 1, maxContract: 2 },
  host: {
    root: '/home/ec2-user/.slotdeck-agent',
    current: '0.1.0',
    previous: '0.0.9',
    releases: [
      { version: '0.0.9', installedAt: '2026-11-01T00:00:00.000Z' },
      { version: '0.1.0', installedAt: '2026-11-20T00:00:00.000Z' },
    ],
    agent: { running: true, pid: 4242, version: '0.1.0' },
    mode: 'isolated',
    boot: 'systemd',
  },
  lastJob: null,
  ...changes,
});

export const idleStatus = (changes: Partial<IdleStatus> = {}): IdleStatus => ({
  policy: { enabled: true, minutes: 60 },
  stopCommand: 'sudo -n shutdown -h now',
  lastActivityAt: '2026-12-01T10:00:00.000Z',
  lastActivity: 'terminal',
  keepAwakeUntil: null,
  stopAt: '2026-12-01T11:00:00.000Z',
  secondsLeft: 2520,
  state: 'counting',
  lastStop: null,
  ...changes,
});
