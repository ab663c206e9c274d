import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Pm2Supervisor } from '../../../remote-agent/src/supervisor/pm2.js';
import { commandLineOf } from '../../../remote-agent/src/util/procfs.js';
import { until } from '../../integration/helpers/until.js';

// `slotdeck-agent down` and the agent's watchdog decide from PM2's pid file whether its daemon runs; a dying daemon
// not yet reaped (CI: down said it stopped a daemon killed a moment before) or a pid the system gave to another
// program since is none. No real PM2 here: processes that look like one or not.
const home = mkdtempSync(join(tmpdir(), 'sd-pm2-pid-'));
const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

const supervisor = new Pm2Supervisor(home);
const pidFile = (pid: number | string): void => writeFileSync(join(home, 'pm2.pid'), String(pid));

function titled(title: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ['-e', `process.title = ${JSON.stringify(title)}; setInterval(() => {}, 1000);`],
    {
      stdio: 'ignore',
    },
  );
  started.push(child);
  return child;
}

const cmdline = (pid: number): string => commandLineOf(pid)?.join(' ') ?? '';

describe('Pm2Supervisor.daemonPid (stand-in processes, no PM2)', () => {
  it("names a running process PM2 titled as this home's daemon", async () => {
    const daemon = titled(`PM2 v7.0.4: God Daemon (${home})`);
    await until(
      'the title to be set',
      () => cmdline(daemon.pid!),
      (line) => line.includes('God Daemon'),
    );
    pidFile(daemon.pid!);
    expect(supervisor.daemonPid()).toBe(daemon.pid);
  });

  it('finds none when the pid file names another program, a dead process or nothing readable', () => {
    pidFile(process.pid);
    expect(supervisor.daemonPid()).toBeNull();
    pidFile(2 ** 22 + 7);
    expect(supervisor.daemonPid()).toBeNull();
    pidFile('not a pid');
    expect(supervisor.daemonPid()).toBeNull();
    rmSync(join(home, 'pm2.pid'));
    expect(supervisor.daemonPid()).toBeNull();
  });

  it('finds none for a daemon killed and not yet reaped (a zombie), which kill(pid, 0) still reaches', async () => {
    // The shell's exec'd sleep is the daemon's parent and never reaps it.
    const parent = spawn(
      '/bin/sh',
      [
        '-c',
        `${JSON.stringify(process.execPath)} -e 'process.title = "PM2 v0: God Daemon"; setInterval(() => {}, 1000)' & exec sleep 60`,
      ],
      {
        stdio: 'ignore',
      },
    );
    started.push(parent);
    const daemon = await until(
      'the stand-in daemon to start',
      () => Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(/\s+/)[0] ?? 0),
      (pid) => pid > 0 && cmdline(pid).includes('God Daemon'),
    );
    pidFile(daemon);
    expect(supervisor.daemonPid()).toBe(daemon);
    process.kill(daemon, 'SIGKILL');
    await until(
      'it to be a zombie',
      () => readFileSync(`/proc/${daemon}/stat`, 'utf8'),
      (stat) => / Z /.test(stat),
    );
    expect(() => process.kill(daemon, 0)).not.toThrow();
    expect(supervisor.daemonPid()).toBeNull();
  });
});
