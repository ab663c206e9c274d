import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReleaseLine } from '../../../remote-agent/src/contract/release.js';
import { ReleaseReporter } from '../../../remote-agent/src/release/report.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-report-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('release lines', () => {
  it('prints a step as running, then done with its detail, each line a ReleaseLine', async () => {
    const out: string[] = [];
    const reporter = new ReleaseReporter(join(dir, 'logs/release.log'), (text) => out.push(text));
    const value = await reporter.step(
      'backup',
      'Back up',
      () => '/x.db',
      (file) => `to ${file}`,
    );
    expect(value).toBe('/x.db');
    const lines = out.map((text) => ReleaseLine.parse(JSON.parse(text)));
    expect(lines).toEqual([
      { kind: 'step', step: 'backup', label: 'Back up', state: 'running' },
      { kind: 'step', step: 'backup', label: 'Back up', state: 'done', detail: 'to /x.db' },
    ]);
    expect(out.every((text) => text.endsWith('\n') && !text.slice(0, -1).includes('\n'))).toBe(true);
  });

  it('marks a step failed with the error and rethrows it', async () => {
    const out: string[] = [];
    const reporter = new ReleaseReporter(null, (text) => out.push(text));
    await expect(
      reporter.step('stop', 'Stop', () => {
        throw new Error('PM2 did not answer');
      }),
    ).rejects.toThrow('PM2 did not answer');
    expect(JSON.parse(out[1]!)).toMatchObject({ state: 'failed', detail: 'PM2 did not answer' });
  });

  it('goes on when stdout is gone (the SSH session dropped) and keeps every line in the log', () => {
    let writes = 0;
    const reporter = new ReleaseReporter(join(dir, 'logs/release.log'), () => {
      writes++;
      throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    });
    reporter.note('one');
    reporter.emit({ kind: 'result', outcome: 'activated', version: '1.2.3', message: 'done' });
    expect(writes).toBe(1);
    const log = readFileSync(join(dir, 'logs/release.log'), 'utf8').trim().split('\n');
    expect(log).toHaveLength(2);
    expect(log[1]).toContain('"outcome":"activated"');
  });

  it('writes nothing more to the log once told to stop (uninstall removes its folder)', () => {
    const reporter = new ReleaseReporter(join(dir, 'logs/release.log'), () => undefined);
    reporter.note('before');
    reporter.stopLogging();
    rmSync(join(dir, 'logs'), { recursive: true });
    reporter.note('after');
    expect(() => readFileSync(join(dir, 'logs/release.log'))).toThrow();
  });
});
