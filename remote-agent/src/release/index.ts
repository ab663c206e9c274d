import { join } from 'node:path';
import { userInfo } from 'node:os';
import type { AgentConfig } from '../config.js';
import { bootUnit } from './boot-unit.js';
import {
  activate,
  EXIT_FAILED,
  installCrontabLine,
  resurrect,
  rollback,
  status,
  uninstall,
  type ReleaseContext,
} from './commands.js';
import { ReleaseLayout, releaseRoot } from './layout.js';
import { ReleaseReporter } from './report.js';

export const RELEASE_USAGE = `  release activate <version> [--timeout-s 30]
                        Switch to an unpacked release: back up the database, stop the agent (slots keep
                        running), start <version> under PM2 and wait for its health; roll back by itself
                        when it does not come up
  release rollback      Back to the release activated before the current one
  release status        The releases on this host, the current and previous one, the agent (JSON)
  release uninstall [--delete-data]
                        Stop the agent, every slot and PM2, remove ~/.slotdeck-agent (and the data dir)
  release resurrect     Start PM2's saved processes and the agent (at boot)
  release boot-unit [--account NAME] [--crontab]
                        Print the systemd unit that runs resurrect at boot (--crontab: add an @reboot
                        line to this account's crontab instead)
`;

export class ReleaseUsageError extends Error {}

export interface ReleaseOptions {
  'timeout-s'?: string | undefined;
  'delete-data'?: boolean | undefined;
  account?: string | undefined;
  crontab?: boolean | undefined;
  'data-dir'?: string | undefined;
  config?: string | undefined;
  port?: string | undefined;
}

/**
 * `slotdeck-agent release <command>`: the agent's half of a deploy (the panel runs these over SSH after host.sh
 * unpacked a release). Long commands print ReleaseLine JSON lines; status and boot-unit print their answer.
 * Resolves the exit code.
 */
export async function runRelease(
  args: string[],
  options: ReleaseOptions,
  config: () => AgentConfig,
  write: (text: string) => void = (text) => process.stdout.write(text),
): Promise<number> {
  const [command, ...rest] = args;
  const layout = new ReleaseLayout(releaseRoot());
  const serveOptions = [
    ...(options['data-dir'] ? ['--data-dir', options['data-dir']] : []),
    ...(options.config ? ['--config', options.config] : []),
    ...(options.port ? ['--port', options.port] : []),
  ];
  const timeoutS = options['timeout-s'] === undefined ? 30 : Number(options['timeout-s']);
  if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 3600)
    throw new ReleaseUsageError('--timeout-s must be a whole number of seconds between 1 and 3600, e.g. 30');
  const long = (): ReleaseContext => {
    ReleaseReporter.detachFromSession();
    return {
      layout,
      config: config(),
      serveOptions,
      reporter: new ReleaseReporter(join(layout.logsDir, 'release.log'), write),
    };
  };
  switch (command) {
    case 'activate': {
      if (!rest[0]) throw new ReleaseUsageError('Name the version: slotdeck-agent release activate <version>');
      return activate(long(), rest[0], timeoutS * 1000);
    }
    case 'rollback':
      return rollback(long(), timeoutS * 1000);
    case 'uninstall':
      return uninstall(long(), options['delete-data'] === true);
    case 'resurrect':
      return resurrect(long());
    case 'status': {
      write(`${JSON.stringify(status({ layout, config: config() }))}\n`);
      return 0;
    }
    case 'boot-unit': {
      const account = options.account ?? userInfo().username;
      if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(account)) throw new ReleaseUsageError(`"${account}" is not an account name`);
      if (options.crontab) {
        const reporter = new ReleaseReporter(join(layout.logsDir, 'release.log'), write);
        try {
          const done = installCrontabLine(layout);
          reporter.emit({
            kind: 'result',
            outcome: done === 'no-crontab' ? 'failed' : 'activated',
            version: layout.current(),
            message:
              done === 'no-crontab'
                ? 'There is no crontab here: start the agent after a reboot with `slotdeck-agent release resurrect` (or install cron).'
                : `The agent starts at boot (@reboot in the crontab of ${userInfo().username}).`,
          });
          return done === 'no-crontab' ? EXIT_FAILED : 0;
        } catch (error) {
          reporter.emit({ kind: 'result', outcome: 'failed', version: layout.current(), message: String(error) });
          return EXIT_FAILED;
        }
      }
      write(bootUnit({ account, wrapper: layout.wrapper, env: process.env }));
      return 0;
    }
    default:
      throw new ReleaseUsageError(`Unknown release command "${command ?? ''}". Use:\n${RELEASE_USAGE}`);
  }
}
