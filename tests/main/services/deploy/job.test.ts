import { describe, expect, it } from 'vitest';
import { JobRecorder, redact, STEP_OUTPUT_BYTES } from '../../../../src/main/services/deploy/job';
import { planFor } from '../../../../src/main/services/deploy/plans';
import { DeployJob } from '../../../../src/shared/ipc/contract-cloud';

function recorder() {
  const saved: DeployJob[] = [];
  const emitted: DeployJob[] = [];
  const job = new JobRecorder(
    'h-1',
    'upgrade',
    planFor('upgrade'),
    { emit: (j) => emitted.push(j), save: (j) => saved.push(j) },
    '1.0.0',
  );
  return { job, saved, emitted };
}

describe('a deploy job as the panel shows it', () => {
  it('starts with every planned step pending and is saved and announced at once', () => {
    const { job, saved, emitted } = recorder();
    expect(DeployJob.parse(job.snapshot())).toMatchObject({ state: 'running', fromVersion: '1.0.0', hostId: 'h-1' });
    expect(job.job.steps.every((step) => step.state === 'pending')).toBe(true);
    expect(saved).toHaveLength(1);
    expect(emitted).toHaveLength(1);
  });

  it('records times and states; a skipped step has no start time; steps never reached stay pending', () => {
    const { job } = recorder();
    job.start('connect');
    job.end('connect', 'done', 'Logged in');
    job.end('detect', 'skipped', 'nothing to check');
    const ended = job.finish('failed', 'upload failed', { code: 'DEPLOY_FAILED', message: 'upload failed' });
    expect(ended.steps[0]).toMatchObject({ state: 'done', detail: 'Logged in' });
    expect(ended.steps[0]!.startedAt).not.toBeNull();
    expect(ended.steps[1]).toMatchObject({ state: 'skipped', startedAt: null });
    expect(ended.steps.at(-1)!.state).toBe('pending');
    expect(ended.endedAt).not.toBeNull();
  });

  it('keeps the last 8 KB of a step output, where a failure says why', () => {
    const { job } = recorder();
    job.start('unpack');
    job.output('unpack', 'x'.repeat(20_000));
    job.output('unpack', '\nnpm ERR! the reason\n');
    const output = job.step('unpack').output!;
    expect(output.length).toBe(STEP_OUTPUT_BYTES);
    expect(output.endsWith('npm ERR! the reason\n')).toBe(true);
  });

  it('puts the host release command steps under their parent, in the order they came', () => {
    const { job } = recorder();
    job.insertAfter('activate', { id: 'activate.backup', label: 'Back up the database' });
    job.insertAfter('activate', { id: 'activate.stop', label: 'Stop the old agent' });
    job.insertAfter('activate', { id: 'activate.backup', label: 'again' });
    expect(job.job.steps.map((step) => step.id)).toEqual([
      'connect',
      'detect',
      'upload',
      'unpack',
      'setup-host',
      'activate',
      'activate.backup',
      'activate.stop',
      'reconnect',
    ]);
  });

  it('never shows or keeps a bearer token, an admin token or a private key that a command printed', () => {
    const token = 'Zq9xK2m4N8p1R7s3T6u0V5w2Y4a8B1c3D5e7F9g0';
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
    const text = `authorization: Bearer ${token}\nadmin token: ${token}\n${key}\n`;
    const cleaned = redact(text);
    expect(cleaned).not.toContain(token);
    expect(cleaned).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    const { job, saved } = recorder();
    job.start('activate');
    job.output('activate', text);
    job.end('activate', 'failed', `token=${token}`);
    job.finish('failed', text, { code: 'DEPLOY_FAILED', message: text });
    const everything = JSON.stringify([job.snapshot(), saved]);
    expect(everything).not.toContain(token);
    expect(everything).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
  });

  it('redacts a token or a private key that arrives split across output chunks', () => {
    const token = 'Zq9xK2m4N8p1R7s3T6u0V5w2Y4a8B1c3D5e7F9g0';
    const text = `starting\nadmin token: ${token}\nauthorization: Bearer ${token}\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\ndone\n`;
    // Every place a chunk boundary can fall, including inside "token", the token itself and the key block.
    for (let at = 1; at < text.length; at += 3) {
      const { job, emitted, saved } = recorder();
      job.start('activate');
      job.output('activate', text.slice(0, at));
      const midway = JSON.stringify(job.snapshot());
      job.output('activate', text.slice(at));
      job.end('activate', 'done');
      const everything = JSON.stringify([midway, job.snapshot(), emitted, saved]);
      expect(everything).not.toContain(token.slice(0, 12));
      expect(everything).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
      expect(job.step('activate').output).toContain('done\n');
    }
  });

  it('shows an unfinished last line once its step ends', () => {
    const { job } = recorder();
    job.start('unpack');
    job.output('unpack', 'added 12 packages');
    expect(job.step('unpack').output ?? '').toBe('');
    job.end('unpack', 'done');
    expect(job.step('unpack').output).toBe('added 12 packages');
  });
});
