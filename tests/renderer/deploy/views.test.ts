import { createElement, type ReactElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  agentAccountOf,
  DeployLayer,
  reviewHostKey,
  uninstallConfirmed,
  uninstallRemoves,
} from '../../../src/renderer/src/features/deploy/DeployDialog';
import { formatClock, formatCountdown, formatElapsed } from '../../../src/renderer/src/features/deploy/format';
import { AgentErrorActions, HostAgentLine } from '../../../src/renderer/src/features/deploy/HostAgent';
import {
  IdleConsoleWarning,
  idleSummary,
  IdleStoppedNote,
  singleUserStopWarning,
} from '../../../src/renderer/src/features/deploy/idle';
import { createAppStores, StoresContext, type AppStores } from '../../../src/renderer/src/stores';
import { deployStoreOf, type HostDeploy } from '../../../src/renderer/src/stores/deploy';
import type { Host } from '../../../src/shared/ipc/contract';
import { fakeIpc, host, status } from '../fake-ipc';
import { deployStatus, idleStatus, job, step } from './fixtures';

const NOW = Date.parse('2026-12-01T10:01:00.000Z');

function setup(hosts: Host[]) {
  const ipc = fakeIpc({ 'deploy:status': () => deployStatus() });
  const stores = createAppStores(ipc.client);
  stores.hosts.setState({ hosts, loaded: true });
  return { ipc, stores, deploy: deployStoreOf(stores) };
}

/**
 * The markup of `element` with the stores as they are now. Server rendering reads a store's initial state (zustand
 * hands React `getInitialState` as the server snapshot), so the stores' current state is made their initial one.
 */
function render(stores: AppStores, element: ReactElement): string {
  for (const store of [stores.hosts, deployStoreOf(stores)] as Array<{ getState(): unknown; getInitialState: unknown }>)
    store.getInitialState = () => store.getState();
  return renderToStaticMarkup(createElement(StoresContext.Provider, { value: stores }, element));
}

const entry = (changes: Partial<HostDeploy>): HostDeploy => ({
  status: deployStatus(),
  statusError: null,
  loadingStatus: false,
  job: null,
  runError: null,
  lastRun: null,
  ...changes,
});

/** The visible text of some markup, tags dropped and spaces folded. */
const text = (html: string): string =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#x27;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});
afterEach(() => vi.useRealTimers());

describe('the deploy dialog', () => {
  const prod = host('prod', {
    status: status('connected', { agent: { version: '0.1.0', contractVersion: 2, update: 'available' } }),
  });

  it('lists the steps with their state, elapsed time (a running step’s up to now) and detail', () => {
    const { stores, deploy } = setup([prod]);
    const running = job({
      action: 'upgrade',
      fromVersion: '0.1.0',
      steps: [
        step('connect', {
          label: 'Connect',
          state: 'done',
          startedAt: '2026-12-01T10:00:00.000Z',
          endedAt: '2026-12-01T10:00:03.000Z',
          detail: 'ssh ec2-user@prod',
        }),
        step('upload', {
          label: 'Upload the agent',
          state: 'running',
          startedAt: '2026-12-01T10:00:03.000Z',
          progress: { done: 30, total: 120 },
        }),
        step('unpack', { label: 'Unpack and install dependencies' }),
      ],
    });
    deploy.setState({ dialog: { hostId: 'prod', confirm: null }, byHost: { prod: entry({ job: running }) } });
    const html = render(stores, createElement(DeployLayer));
    expect(text(html)).toContain('Update the agent: 0.1.0 → 0.2.0');
    expect(html).toMatch(/data-step="connect" data-state="done">.*aria-label="done".*Connect.*3 s.*ssh ec2-user@prod/);
    // The running step counts from its start to now (57 s), with its upload progress.
    expect(html).toMatch(/data-step="upload" data-state="running">.*aria-label="running".*Upload the agent.*57 s/);
    expect(html).toContain('aria-valuenow="25"');
    expect(html).toMatch(/data-step="unpack" data-state="pending">.*aria-label="waiting"/);
    // While it runs: Cancel, and Close (which leaves it running); no Retry.
    expect(text(html)).toContain('Cancel update');
    expect(text(html)).toContain('Closing this leaves the job running.');
    expect(text(html)).not.toContain('Retry');
  });

  it('shows a failed step’s output in a scrollable box, the final message, and Retry', () => {
    const { stores, deploy } = setup([prod]);
    const failed = job({
      action: 'upgrade',
      state: 'rolled-back',
      fromVersion: '0.1.0',
      message: 'rolled back to 0.1.0 because the new agent did not answer /health within 30 s',
      steps: [
        step('activate', {
          label: 'Start the new agent',
          state: 'failed',
          startedAt: '2026-12-01T10:00:00.000Z',
          endedAt: '2026-12-01T10:00:31.000Z',
          output: 'Error: Cannot find module better-sqlite3\n    at start (server.js:1)',
        }),
      ],
    });
    deploy.setState({ dialog: { hostId: 'prod', confirm: null }, byHost: { prod: entry({ job: failed }) } });
    const html = render(stores, createElement(DeployLayer));
    expect(html).toMatch(
      /<pre class="deploy-output" tabindex="0" aria-label="Output of Start the new agent">Error: Cannot find module better-sqlite3\n {4}at start/,
    );
    expect(text(html)).toContain('rolled back to 0.1.0 because the new agent did not answer /health within 30 s');
    expect(text(html)).toContain('Retry');
    expect(text(html)).toContain('31 s');
    expect(text(html)).not.toContain('Cancel update');
  });

  it('offers the host key dialog when a job failed on an unknown host key, and runs the job again once trusted', async () => {
    const { ipc, stores, deploy } = setup([prod]);
    const refused = job({
      action: 'deploy',
      state: 'failed',
      message: 'The host key of prod is not trusted yet.',
      error: {
        code: 'HOST_KEY_UNKNOWN',
        message: 'The host key of prod is not trusted yet.',
        details: { fingerprint: 'SHA256:newinstancekey', algorithm: 'ssh-ed25519' },
      },
      steps: [step('connect', { label: 'Connect over SSH', state: 'failed' })],
    });
    deploy.setState({ dialog: { hostId: 'prod', confirm: null }, byHost: { prod: entry({ job: refused }) } });
    const shown = text(render(stores, createElement(DeployLayer)));
    // A Retry would fail the same way: the way on is to check the key.
    expect(shown).toContain('Review host key…');
    expect(shown).not.toContain('Retry');

    ipc.handle('deploy:run', () => job({ state: 'succeeded', id: 'job-2' }));
    reviewHostKey(stores, 'prod', refused);
    const dialog = stores.ui.getState().dialog;
    expect(dialog).toMatchObject({
      kind: 'trust-key',
      hostId: 'prod',
      fingerprint: 'SHA256:newinstancekey',
      algorithm: 'ssh-ed25519',
    });
    expect(ipc.calls.some((call) => call.channel === 'deploy:run')).toBe(false);
    (dialog as { onTrusted: () => void }).onTrusted();
    await vi.waitFor(() =>
      expect(ipc.calls.find((call) => call.channel === 'deploy:run')?.input).toMatchObject({
        hostId: 'prod',
        action: 'deploy',
      }),
    );
  });

  it('keeps Retry for a failure that is not about the host key', () => {
    const { stores, deploy } = setup([prod]);
    const failed = job({
      state: 'failed',
      error: { code: 'SSH_UNREACHABLE', message: 'no route', details: { fingerprint: 'x' } },
    });
    deploy.setState({ dialog: { hostId: 'prod', confirm: null }, byHost: { prod: entry({ job: failed }) } });
    const shown = text(render(stores, createElement(DeployLayer)));
    expect(shown).toContain('Retry');
    expect(shown).not.toContain('Review host key');
  });

  it('without a job, offers what fits the host: update to the bundled version, roll back, uninstall', () => {
    const { stores, deploy } = setup([prod]);
    deploy.setState({ dialog: { hostId: 'prod', confirm: null }, byHost: { prod: entry({}) } });
    const shown = text(render(stores, createElement(DeployLayer)));
    expect(shown).toContain('Agent on prod');
    expect(shown).toContain('agent 0.1.0');
    expect(shown).toContain('Update to 0.2.0');
    expect(shown).toContain('Roll back…');
    expect(shown).toContain('Uninstall…');
    expect(shown).toContain('Rollback goes to 0.0.9');
  });

  it('asks before a rollback, naming the version it goes back to', () => {
    const { stores, deploy } = setup([prod]);
    deploy.setState({ dialog: { hostId: 'prod', confirm: 'rollback' }, byHost: { prod: entry({}) } });
    const shown = text(render(stores, createElement(DeployLayer)));
    expect(shown).toContain('Roll back the agent on prod?');
    expect(shown).toContain('Roll back to 0.0.9');
  });

  it('names what an uninstall loses, with deleting the data unchecked and the host’s name typed to delete it', () => {
    const { stores, deploy } = setup([prod]);
    deploy.setState({ dialog: { hostId: 'prod', confirm: 'uninstall' }, byHost: { prod: entry({}) } });
    const html = render(stores, createElement(DeployLayer));
    const shown = text(html);
    expect(shown).toContain('Uninstall the agent from prod?');
    expect(shown).toContain('Every slot’s program stops');
    expect(shown).toContain('/home/ec2-user/.slotdeck-agent');
    expect(shown).toContain('Slots, users, API keys and usage stay on the host');
    expect(html).toMatch(/<input type="checkbox"\/>Also delete every slot and all users, keys and usage/);
    expect(shown).not.toContain('Type prod to confirm');
    expect(uninstallConfirmed(false, '', 'prod')).toBe(true);
    expect(uninstallConfirmed(true, '', 'prod')).toBe(false);
    expect(uninstallConfirmed(true, 'prd', 'prod')).toBe(false);
    expect(uninstallConfirmed(true, ' prod ', 'prod')).toBe(true);
  });
});

describe('the sidebar’s agent line and notes', () => {
  it('shows the agent’s version, Update agent when the panel bundles a newer one, and the idle countdown', () => {
    const prod = host('prod', {
      status: status('connected', { agent: { version: '0.1.0', contractVersion: 2, update: 'available' } }),
    });
    const { stores, deploy } = setup([prod]);
    deploy.setState({ idle: { prod: { status: idleStatus({ secondsLeft: 2520 }), receivedAt: NOW, error: null } } });
    const shown = text(render(stores, createElement(HostAgentLine, { host: prod })));
    expect(shown).toBe('agent 0.1.0 Update agent stops in 42 min');
  });

  it('offers to deploy the agent when the host has none, and says what to do about an incompatible one', () => {
    const bare = host('bare', {
      status: status('failed', { error: { code: 'AGENT_NOT_RUNNING', message: 'No agent answers on port 7420.' } }),
    });
    const old = host('old', {
      status: status('failed', {
        error: {
          code: 'AGENT_INCOMPATIBLE',
          message: 'Update the agent.',
          details: { agentVersion: '0.0.1', contractVersion: '0' },
        },
      }),
    });
    const newer = host('newer', {
      status: status('failed', {
        error: {
          code: 'AGENT_INCOMPATIBLE',
          message: 'Update Slotdeck.',
          details: { agentVersion: '9.0.0', contractVersion: '99' },
        },
      }),
    });
    const { stores } = setup([bare, old, newer]);
    expect(text(render(stores, createElement(AgentErrorActions, { host: bare })))).toBe('Deploy the agent');
    expect(text(render(stores, createElement(AgentErrorActions, { host: old })))).toBe('Update agent');
    expect(text(render(stores, createElement(AgentErrorActions, { host: newer })))).toContain(
      'Update Slotdeck on this computer',
    );
  });

  it('says when the idle policy stopped the host, with Start and connect only for a linked instance', () => {
    const linked = host('linked', {
      idleStoppedAt: '2026-12-01T09:30:00.000Z',
      instance: { accountId: 'aws-0123456789', region: 'eu-west-1', instanceId: 'i-0123456789abcdef0' },
      status: status('failed'),
    });
    const plain = host('plain', { idleStoppedAt: '2026-12-01T09:30:00.000Z', status: status('failed') });
    const { stores } = setup([linked, plain]);
    const at = new Date('2026-12-01T09:30:00.000Z').toLocaleTimeString();
    expect(text(render(stores, createElement(IdleStoppedNote, { host: linked })))).toBe(
      `Stopped by idle policy at ${at}. Start and connect`,
    );
    expect(text(render(stores, createElement(IdleStoppedNote, { host: plain })))).toBe(
      `Stopped by idle policy at ${at}. Start the machine, then connect.`,
    );
  });
});

describe('idle countdown', () => {
  it('formats the time left as the sidebar and the console say it', () => {
    expect(formatCountdown(2520)).toBe('42 min');
    expect(formatCountdown(2490)).toBe('42 min');
    expect(formatCountdown(3900)).toBe('1 h 5 min');
    expect(formatCountdown(7200)).toBe('2 h');
    expect(formatCountdown(40.2)).toBe('41 s');
    expect(formatCountdown(-3)).toBe('0 s');
    expect(formatClock(245)).toBe('4:05');
    expect(formatElapsed(7_400)).toBe('7 s');
    expect(formatElapsed(65_000)).toBe('1:05');
    expect(formatElapsed(3_723_000)).toBe('1:02:03');
  });

  it('summarises the policy for the sidebar: nothing when off, soon in the last 5 minutes, the failure', () => {
    const at = NOW;
    const idle = (changes: Parameters<typeof idleStatus>[0]) => ({
      status: idleStatus(changes),
      receivedAt: at,
      error: null,
    });
    expect(
      idleSummary(idle({ policy: { enabled: false, minutes: 60 }, state: 'off', secondsLeft: null }), at),
    ).toBeNull();
    expect(idleSummary(idle({ secondsLeft: 2520 }), at)).toMatchObject({ text: 'stops in 42 min', tone: 'normal' });
    expect(idleSummary(idle({ secondsLeft: 299 }), at)).toMatchObject({ text: 'stops in 5 min', tone: 'soon' });
    expect(
      idleSummary(
        idle({ state: 'failed', lastStop: { at: '', exitCode: 1, output: 'sudo: a password is required' } }),
        at,
      ),
    ).toMatchObject({
      text: 'idle stop failed',
      tone: 'failed',
    });
  });

  it('warns in the host’s open consoles in its last 5 minutes only, with Keep awake for 1 h', () => {
    const prod = host('prod', { status: status('connected') });
    const { stores, deploy } = setup([prod]);
    deploy.setState({ idle: { prod: { status: idleStatus({ secondsLeft: 301 }), receivedAt: NOW, error: null } } });
    expect(render(stores, createElement(IdleConsoleWarning, { hostId: 'prod' }))).toBe('');
    // Two seconds later (the countdown runs here between polls) it is inside the last 5 minutes.
    deploy.setState({
      idle: { prod: { status: idleStatus({ secondsLeft: 301 }), receivedAt: NOW - 2000, error: null } },
    });
    const shown = text(render(stores, createElement(IdleConsoleWarning, { hostId: 'prod' })));
    expect(shown).toContain('prod stops in 4:59');
    expect(shown).toContain('Keep awake for 1 h');
    // Another host's countdown is not this console's business.
    expect(render(stores, createElement(IdleConsoleWarning, { hostId: 'stage' }))).toBe('');
  });

  it('warns a single-user host that the default stop command needs passwordless sudo, once the policy is on', () => {
    const status = idleStatus();
    expect(singleUserStopWarning('single-user', status, true, 'ubuntu')).toMatch(
      /needs passwordless sudo for shutdown for ubuntu/,
    );
    expect(singleUserStopWarning('single-user', status, false, 'ubuntu')).toBeNull();
    expect(
      singleUserStopWarning(
        'isolated',
        idleStatus({ stopCommand: 'sudo -n /usr/local/libexec/slotdeck-helper poweroff' }),
        true,
        'ubuntu',
      ),
    ).toBeNull();
    expect(
      singleUserStopWarning('single-user', idleStatus({ stopCommand: '/usr/local/bin/my-stop' }), true, 'ubuntu'),
    ).toBeNull();
  });

  it('lists exactly what an uninstall removes: with the data on an isolated host, its sudoers line and helper config too', () => {
    const account = agentAccountOf('sudo -n -u slotdeck /var/lib/slotdeck/.slotdeck-agent/bin/slotdeck-agent');
    expect(account).toBe('slotdeck');
    expect(agentAccountOf('/home/ubuntu/.slotdeck-agent/bin/slotdeck-agent')).toBeNull();
    const root = '/var/lib/slotdeck/.slotdeck-agent';
    expect(uninstallRemoves(root, account, false)).toEqual([
      `The agent's files: its releases, database backups and the Node it installed (${root}).`,
    ]);
    const all = uninstallRemoves(root, account, true).join('\n');
    expect(all).toContain('/etc/sudoers.d/slotdeck-slotdeck');
    expect(all).toContain('/etc/slotdeck/agents/slotdeck.conf');
    expect(all).toContain('/home/slotdeck-slots');
    expect(all).toMatch(/slot helper .* when no other agent account/);
    expect(uninstallRemoves(root, null, true).join('\n')).not.toContain('sudoers');
  });
});
