import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { AgentConfig } from '../config.js';
import { RELEASES_KEPT, ReleaseVersion, type ReleaseStatus } from '../contract/release.js';
import { HELPER_PATH, helperConfigFile } from '../modules/slots/accounts.js';
import { slotAccount } from '../modules/slots/paths.js';
import { databasePath } from '../server.js';
import { Pm2Supervisor } from '../supervisor/pm2.js';
import { acquireInstanceLock, InstanceLockedError } from '../util/instance-lock.js';
import {
  AgentUnderPm2,
  liveAgentState,
  logSize,
  logTail,
  stopAgentByPid,
  waitGone,
  waitHealthy,
  type AgentLaunch,
} from './agent-process.js';
import {
  backupDatabase,
  copyDatabaseFile,
  databaseSchema,
  restoreDatabase,
  slotAccountsIn,
} from './database-backup.js';
import { removeTree, type HistoryEntry, type ReleaseLayout } from './layout.js';
import type { ReleaseReporter } from './report.js';
import { systemdUnitPath, unitName } from './boot-unit.js';

/** Exit codes of `release ...`: 0 done as asked; 1 failed (or rolled back after a failed activation); 5 nothing to roll back to. */
export const EXIT_FAILED = 1;
export const EXIT_NO_PREVIOUS = 5;

export interface ReleaseContext {
  layout: ReleaseLayout;
  config: AgentConfig;
  /** Options for `serve` beside the command (--data-dir, --config, --port as the release command was given them). */
  serveOptions: string[];
  reporter: ReleaseReporter;
}

class ReleaseFailure extends Error {}

const agentLog = (layout: ReleaseLayout): string => join(layout.logsDir, 'agent.log');

function launchOf(ctx: ReleaseContext): AgentLaunch {
  const { layout } = ctx;
  // The wrapper follows `current` and the node host.sh chose; without it (a release unpacked by hand) the node
  // running this command runs the current release.
  const viaWrapper = existsSync(layout.wrapper);
  return {
    command: viaWrapper ? layout.wrapper : process.execPath,
    args: [...(viaWrapper ? [] : [join(layout.currentLink, 'bin', 'slotdeck-agent.js')]), 'serve', ...ctx.serveOptions],
    logFile: agentLog(layout),
    cwd: layout.root,
  };
}

/** One release command at a time per host account. */
async function withReleaseLock<T>(ctx: ReleaseContext, run: () => Promise<T>): Promise<T | null> {
  let lock: { release(): void };
  try {
    lock = await acquireInstanceLock(join(ctx.layout.root, '.release.lock'));
  } catch (error) {
    if (!(error instanceof InstanceLockedError)) throw error;
    ctx.reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: ctx.layout.current(),
      message: 'Another release command is running on this host. Wait for it to finish, then try again.',
    });
    return null;
  }
  try {
    return await run();
  } finally {
    lock.release();
  }
}

/** Stops whatever agent runs on the data dir: the PM2 process, or one started by hand. Slots keep running. */
async function stopAgent(ctx: ReleaseContext, pm2: AgentUnderPm2): Promise<string> {
  const state = liveAgentState(ctx.config.dataDir);
  const underPm2 = await pm2.remove();
  // PM2 waited for the process; one started by hand (or one PM2 lost) gets SIGTERM.
  const byHand = await stopAgentByPid(ctx.config.dataDir);
  if (state) await waitGone(state.pid, 20_000);
  if (underPm2) return `stopped the agent under PM2${state ? ` (pid ${state.pid})` : ''}`;
  if (byHand !== null) return `stopped the agent started by hand (pid ${byHand})`;
  return 'no agent was running';
}

function checkRuns(ctx: ReleaseContext, version: string): string {
  const cli = ctx.layout.releaseCli(version);
  if (!existsSync(cli))
    throw new ReleaseFailure(
      `Release ${version} is not installed in ${ctx.layout.releasesDir}. Upload its tarball and run host.sh unpack first.`,
    );
  const run = spawnSync(ctx.layout.releaseNode(version), [cli, '--version'], { encoding: 'utf8', timeout: 30_000 });
  const said = `${run.stdout ?? ''}`.trim();
  if (run.status !== 0 || said !== version)
    throw new ReleaseFailure(
      `Release ${version} does not run here (${run.error?.message ?? (said || run.stderr?.trim() || `exit ${run.status}`)}). Unpack it again.`,
    );
  return said;
}

/** Starts the current release under PM2 and waits for its health; on failure, the agent is stopped again. */
async function startAndCheck(
  ctx: ReleaseContext,
  pm2: AgentUnderPm2,
  version: string,
  timeoutMs: number,
): Promise<{ ok: true; pid: number } | { ok: false; why: string }> {
  const launch = launchOf(ctx);
  const logStart = logSize(launch.logFile);
  await pm2.start(launch);
  const result = await waitHealthy(ctx.config.dataDir, version, timeoutMs, pm2);
  if (result.ok) return result;
  await pm2.remove().catch(() => undefined);
  await stopAgentByPid(ctx.config.dataDir).catch(() => null);
  const tail = logTail(launch.logFile, logStart);
  return { ok: false, why: `${result.why}${tail ? `. Its last log lines:\n${tail}` : ''}` };
}

async function finish(ctx: ReleaseContext, pm2: AgentUnderPm2): Promise<void> {
  await ctx.reporter.step('save', 'Save the process list for boot', () => pm2.save());
  const removed = ctx.layout.prune(RELEASES_KEPT, [pm2.daemonRelease()]);
  if (removed.length > 0) ctx.reporter.note(`Removed old releases: ${removed.join(', ')} (${RELEASES_KEPT} are kept).`);
}

export async function activate(ctx: ReleaseContext, version: string, timeoutMs: number): Promise<number> {
  if (!ReleaseVersion.safeParse(version).success) {
    ctx.reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: ctx.layout.current(),
      message: `"${version}" is not a version like 1.2.3.`,
    });
    return EXIT_FAILED;
  }
  const code = await withReleaseLock(ctx, () => activateLocked(ctx, version, timeoutMs));
  return code ?? EXIT_FAILED;
}

async function activateLocked(ctx: ReleaseContext, version: string, timeoutMs: number): Promise<number> {
  const { layout, reporter, config } = ctx;
  const from = layout.current();
  const pm2 = new AgentUnderPm2(config.pm2Home);
  // Once the old agent is stopped, every failure goes back to it (see rollBackFailedActivation).
  let stopped = false;
  let activated = false;
  let backup: DatabaseCopy = { file: null, schema: 0 };
  try {
    try {
      await reporter.step('check', `Check that ${version} runs`, () => checkRuns(ctx, version));
    } catch (error) {
      reporter.emit({ kind: 'result', outcome: 'failed', version: from, message: (error as Error).message });
      return EXIT_FAILED;
    }
    await reporter.step('connect', 'Connect to PM2', () => pm2.connect());
    await reporter.step(
      'stop',
      from ? `Stop ${from} (slots keep running)` : 'Stop the running agent',
      () => stopAgent(ctx, pm2),
      (detail) => detail,
    );
    stopped = true;
    // After the stop: nothing the old agent wrote while it drained is missing from the copy.
    backup = await reporter.step(
      'backup',
      'Back up the agent database',
      () => copyDatabase(ctx, from),
      (copy) => copy.file ?? 'no database yet',
    );
    layout.switchCurrent(version);
    reporter.emit({ kind: 'step', step: 'switch', label: `Switch to ${version}`, state: 'done' });
    reporter.emit({ kind: 'step', step: 'start', label: `Start ${version}`, state: 'running' });
    const started = await startAndCheck(ctx, pm2, version, timeoutMs);
    if (!started.ok) {
      reporter.emit({ kind: 'step', step: 'start', label: `Start ${version}`, state: 'failed', detail: started.why });
      return await rollBackFailedActivation(ctx, pm2, version, from, backup, started.why, timeoutMs);
    }
    reporter.emit({
      kind: 'step',
      step: 'start',
      label: `Start ${version}`,
      state: 'done',
      detail: `healthy, pid ${started.pid}`,
    });
    const entry: HistoryEntry = { version, activatedAt: new Date().toISOString(), from, backup: backup.file };
    layout.writeHistory([...layout.history(), entry]);
    activated = true;
    await finish(ctx, pm2);
    reporter.emit({
      kind: 'result',
      outcome: 'activated',
      version,
      message: from ? `Upgraded from ${from} to ${version}.` : `Version ${version} is running.`,
    });
    return 0;
  } catch (error) {
    const why = (error as Error).message;
    if (stopped && !activated) {
      // Stopped but not running the new one (PM2 timed out, the switch failed, ...): back to the old one.
      try {
        return await rollBackFailedActivation(ctx, pm2, version, from, backup, why, timeoutMs);
      } catch (again) {
        reporter.emit({
          kind: 'result',
          outcome: 'failed',
          version: liveAgentState(config.dataDir)?.version ?? null,
          message: `Activating ${version} failed (${why}), and going back to ${from ?? 'no release'} failed too: ${(again as Error).message}. Run \`slotdeck-agent release resurrect\` on the host, or deploy again.`,
        });
        return EXIT_FAILED;
      }
    }
    reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: liveAgentState(config.dataDir)?.version ?? null,
      message: `Activating ${version} failed: ${why}`,
    });
    return EXIT_FAILED;
  } finally {
    await pm2.disconnect();
  }
}

/** A database copy and the schema it had (a rollback restores it only when the schema moved since). */
interface DatabaseCopy {
  file: string | null;
  schema: number;
}

async function copyDatabase(ctx: ReleaseContext, from: string | null): Promise<DatabaseCopy> {
  const database = databasePath(ctx.config.dataDir);
  const schema = databaseSchema(database);
  return { file: await backupDatabase(database, ctx.layout.backupsDir, from), schema };
}

/**
 * Back to `from` after `version` failed once the old agent was stopped: whatever is left of the new one stops, the
 * database goes back to the copy only if the new release changed its schema (so nothing written meanwhile is lost
 * otherwise), `current` points at `from` again, and it starts and is saved for boot.
 */
async function rollBackFailedActivation(
  ctx: ReleaseContext,
  pm2: AgentUnderPm2,
  version: string,
  from: string | null,
  backup: DatabaseCopy,
  why: string,
  timeoutMs: number,
): Promise<number> {
  const { layout, reporter, config } = ctx;
  await pm2.connect().catch(() => undefined);
  await pm2.remove().catch(() => false);
  await stopAgentByPid(config.dataDir).catch(() => null);
  const database = databasePath(config.dataDir);
  const schemaNow = databaseSchema(database);
  if (backup.file && schemaNow !== backup.schema)
    await reporter.step(
      'restore',
      'Restore the database backup',
      () => restoreDatabase(backup.file!, database),
      () => `${version} had moved the schema from ${backup.schema} to ${schemaNow}`,
    );
  else if (backup.file) reporter.skipped('restore', 'Restore the database backup', 'the schema did not change: kept');
  if (!from) {
    layout.switchCurrent(null);
    reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: null,
      message: `Version ${version} did not start: ${why}`,
    });
    return EXIT_FAILED;
  }
  layout.switchCurrent(from);
  reporter.emit({ kind: 'step', step: 'switch-back', label: `Switch back to ${from}`, state: 'done' });
  reporter.emit({ kind: 'step', step: 'start-previous', label: `Start ${from} again`, state: 'running' });
  const restarted = await startAndCheck(ctx, pm2, from, Math.max(timeoutMs, 30_000));
  if (!restarted.ok) {
    reporter.emit({
      kind: 'step',
      step: 'start-previous',
      label: `Start ${from} again`,
      state: 'failed',
      detail: restarted.why,
    });
    reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: null,
      message: `Version ${version} did not start (${why}), and ${from} did not start again either: ${restarted.why}`,
    });
    return EXIT_FAILED;
  }
  reporter.emit({
    kind: 'step',
    step: 'start-previous',
    label: `Start ${from} again`,
    state: 'done',
    detail: `healthy, pid ${restarted.pid}`,
  });
  await reporter.step('save', 'Save the process list for boot', () => pm2.save());
  reporter.emit({
    kind: 'result',
    outcome: 'rolled-back',
    version: from,
    message: `Version ${version} did not start, so ${from} runs again with its database as before: ${why}`,
  });
  return EXIT_FAILED;
}

/** The highest schema a release knows, from its own CLI on an empty data dir. */
function releaseSchema(ctx: ReleaseContext, version: string): number {
  const scratch = mkdtempSync(join(tmpdir(), 'slotdeck-schema-'));
  try {
    const run = spawnSync(
      ctx.layout.releaseNode(version),
      [ctx.layout.releaseCli(version), 'migrate', 'status', '--data-dir', scratch],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    const match = /schema version \d+ of (\d+)/.exec(run.stdout ?? '');
    if (!match) throw new ReleaseFailure(`cannot tell which database schema ${version} knows: ${run.stderr?.trim()}`);
    return Number(match[1]);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function rollback(ctx: ReleaseContext, timeoutMs: number): Promise<number> {
  const code = await withReleaseLock(ctx, () => rollbackLocked(ctx, timeoutMs));
  return code ?? EXIT_FAILED;
}

async function rollbackLocked(ctx: ReleaseContext, timeoutMs: number): Promise<number> {
  const { layout, reporter, config } = ctx;
  const current = layout.current();
  const previous = layout.previous();
  if (!current || !previous) {
    reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: liveAgentState(config.dataDir)?.version ?? current,
      message: current
        ? `No previous release to roll back to: ${current} is the only one activated on this host.`
        : 'No release is active on this host: deploy the agent first.',
    });
    return EXIT_NO_PREVIOUS;
  }
  const pm2 = new AgentUnderPm2(config.pm2Home);
  const history = layout.history();
  const currentEntry = history.at(-1)?.version === current ? history.at(-1)! : null;
  let stopped = false;
  try {
    await reporter.step('check', `Check that ${previous} runs`, () => checkRuns(ctx, previous));
    const target = releaseSchema(ctx, previous);
    const file = databasePath(config.dataDir);
    // Before anything stops: a schema that can neither move down nor be restored is refused with the agent running.
    if (databaseSchema(file) > target) await checkCanMoveDown(ctx, current, currentEntry, target);
    await reporter.step('connect', 'Connect to PM2', () => pm2.connect());
    await reporter.step(
      'stop',
      `Stop ${current} (slots keep running)`,
      () => stopAgent(ctx, pm2),
      (d) => d,
    );
    stopped = true;
    const schema = databaseSchema(file);
    if (schema > target) {
      await reporter.step(
        'migrate-down',
        `Move the database schema down to ${target}`,
        () => migrateDownOrRestore(ctx, current, currentEntry, target),
        (detail) => detail,
      );
    }
    layout.switchCurrent(previous);
    reporter.emit({ kind: 'step', step: 'switch', label: `Switch to ${previous}`, state: 'done' });
    reporter.emit({ kind: 'step', step: 'start', label: `Start ${previous}`, state: 'running' });
    const started = await startAndCheck(ctx, pm2, previous, timeoutMs);
    if (!started.ok) {
      reporter.emit({ kind: 'step', step: 'start', label: `Start ${previous}`, state: 'failed', detail: started.why });
      layout.switchCurrent(current);
      const back = await startAndCheck(ctx, pm2, current, Math.max(timeoutMs, 30_000));
      reporter.emit({
        kind: 'result',
        outcome: 'failed',
        version: back.ok ? current : null,
        message: `${previous} did not start (${started.why}); ${back.ok ? `${current} runs again` : `and ${current} did not start again: ${back.why}`}.`,
      });
      return EXIT_FAILED;
    }
    reporter.emit({
      kind: 'step',
      step: 'start',
      label: `Start ${previous}`,
      state: 'done',
      detail: `healthy, pid ${started.pid}`,
    });
    // The current release's activation is undone: the one before it is the last again.
    layout.writeHistory(currentEntry ? history.slice(0, -1) : history);
    await finish(ctx, pm2);
    reporter.emit({ kind: 'result', outcome: 'rolled-back', version: previous, message: `Back to ${previous}.` });
    return 0;
  } catch (error) {
    const why = (error as Error).message;
    if (stopped && !liveAgentState(config.dataDir)) {
      // Stopped and nothing runs: the current release starts again rather than leaving the host without an agent.
      try {
        await pm2.connect();
        layout.switchCurrent(current);
        const back = await startAndCheck(ctx, pm2, current, Math.max(timeoutMs, 30_000));
        if (back.ok) await pm2.save();
        reporter.emit({
          kind: 'result',
          outcome: 'failed',
          version: back.ok ? current : null,
          message: `Rolling back to ${previous} failed: ${why}; ${back.ok ? `${current} runs again` : `and ${current} did not start again: ${back.why}`}.`,
        });
        return EXIT_FAILED;
      } catch (again) {
        reporter.emit({
          kind: 'result',
          outcome: 'failed',
          version: null,
          message: `Rolling back to ${previous} failed (${why}), and starting ${current} again failed too: ${(again as Error).message}. Run \`slotdeck-agent release resurrect\` on the host.`,
        });
        return EXIT_FAILED;
      }
    }
    reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: liveAgentState(config.dataDir)?.version ?? null,
      message: `Rolling back to ${previous} failed: ${why}`,
    });
    return EXIT_FAILED;
  } finally {
    await pm2.disconnect();
  }
}

const migrateDown = (ctx: ReleaseContext, release: string, target: number, dataDir: string) =>
  spawnSync(
    ctx.layout.releaseNode(release),
    [ctx.layout.releaseCli(release), 'migrate', 'down', '--to', String(target), '--data-dir', dataDir],
    { encoding: 'utf8', timeout: 60_000 },
  );

/**
 * A dry run of migrateDownOrRestore on a copy of the database, while the agent still runs: throws the refusal when
 * moving down would drop rows and there is no backup to restore instead.
 */
async function checkCanMoveDown(
  ctx: ReleaseContext,
  current: string,
  currentEntry: HistoryEntry | null,
  target: number,
): Promise<void> {
  if (currentEntry?.backup && existsSync(currentEntry.backup)) return;
  const scratch = mkdtempSync(join(tmpdir(), 'slotdeck-rollback-'));
  try {
    await copyDatabaseFile(databasePath(ctx.config.dataDir), databasePath(scratch));
    const run = migrateDown(ctx, current, target, scratch);
    if (run.status === 0) return;
    const refusal = (run.stderr ?? '').replace(/^slotdeck-agent: /, '').trim();
    throw new ReleaseFailure(
      `${refusal} No backup from before ${current} was activated is left to restore instead; move the schema down by hand (slotdeck-agent migrate down --force) and roll back again. The agent was not stopped.`,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The current release's own `migrate down` (it knows the down migrations). When that would drop rows, the database
 * goes back to the copy taken when the current release was activated, and the admin is told what is lost.
 */
function migrateDownOrRestore(
  ctx: ReleaseContext,
  current: string,
  currentEntry: HistoryEntry | null,
  target: number,
): string {
  const run = migrateDown(ctx, current, target, ctx.config.dataDir);
  if (run.status === 0) return `migrated down to ${target}`;
  const refusal = (run.stderr ?? '').replace(/^slotdeck-agent: /, '').trim();
  if (!currentEntry?.backup || !existsSync(currentEntry.backup))
    throw new ReleaseFailure(
      `${refusal} No backup from before ${current} was activated is left to restore instead; move the schema down by hand (slotdeck-agent migrate down --force) and roll back again.`,
    );
  restoreDatabase(currentEntry.backup, databasePath(ctx.config.dataDir));
  const lost = /would delete (.*?)\. Nothing was changed/.exec(refusal)?.[1];
  const message = `restored the database as it was when ${current} was activated (${currentEntry.activatedAt}); changes made since then are lost${lost ? `, among them ${lost}` : ''}`;
  ctx.reporter.note(`Rollback ${message}.`);
  return message;
}

export function status(ctx: Omit<ReleaseContext, 'reporter' | 'serveOptions'>): ReleaseStatus {
  const { layout, config } = ctx;
  const state = liveAgentState(config.dataDir);
  const user = userInfo().username;
  return {
    root: layout.root,
    current: layout.current(),
    previous: layout.previous(),
    releases: layout.installed(),
    agent: { running: state !== null, pid: state?.pid ?? null, version: state?.version ?? null },
    mode: process.getuid?.() !== 0 && existsSync(helperConfigFile(user)) ? 'isolated' : 'single-user',
    boot: existsSync(systemdUnitPath(user)) ? 'systemd' : 'none',
  };
}

export async function uninstall(ctx: ReleaseContext, deleteData: boolean): Promise<number> {
  const code = await withReleaseLock(ctx, () => uninstallLocked(ctx, deleteData));
  return code ?? EXIT_FAILED;
}

async function uninstallLocked(ctx: ReleaseContext, deleteData: boolean): Promise<number> {
  const { layout, reporter, config } = ctx;
  try {
    const pm2 = new AgentUnderPm2(config.pm2Home);
    if (pm2.daemonRunning()) {
      await pm2.connect();
      await reporter.step(
        'stop',
        'Stop the agent',
        () => stopAgent(ctx, pm2),
        (d) => d,
      );
      await pm2.disconnect();
    } else {
      await reporter.step('stop', 'Stop the agent', async () =>
        (await stopAgentByPid(config.dataDir)) === null ? 'no agent was running' : 'stopped the agent',
      );
    }
    await reporter.step(
      'down',
      'Stop every slot and PM2',
      async () => {
        const supervisor = new Pm2Supervisor(config.pm2Home);
        if (supervisor.daemonPid() === null) return 'PM2 was not running';
        await supervisor.connect();
        await supervisor.shutdownDaemon();
        return 'stopped';
      },
      (detail) => detail,
    );
    const bootLine = removeCrontabLine(layout);
    if (bootLine) reporter.note('Removed the @reboot line from the crontab.');
    const unit = systemdUnitPath(userInfo().username);
    if (existsSync(unit))
      reporter.note(
        `The boot unit ${unit} stays (removing it needs root): sudo systemctl disable ${unitName(userInfo().username)} && sudo rm ${unit}`,
      );
    const leftBehind: string[] = [];
    const isolated = existsSync(helperConfigFile(userInfo().username));
    if (deleteData && isolated) {
      // End users' files live in slot accounts' homes outside the data dir: the root-owned helper removes them.
      await reporter.step(
        'remove-accounts',
        'Remove the slot accounts',
        () => {
          const accounts = slotAccountsIn(databasePath(config.dataDir), slotAccount);
          const failed: string[] = [];
          for (const account of accounts) {
            const removed = spawnSync('sudo', ['-n', HELPER_PATH, 'remove-account', account], {
              encoding: 'utf8',
              stdio: ['ignore', 'ignore', 'pipe'],
              timeout: 120_000,
            });
            if (removed.status !== 0)
              failed.push(
                `${account} (${removed.stderr?.trim() || removed.error?.message || `exit ${removed.status}`})`,
              );
          }
          if (failed.length > 0) leftBehind.push(`slot accounts ${failed.join(', ')}`);
          return `${accounts.length - failed.length} of ${accounts.length} removed`;
        },
        (detail) => detail,
      );
    }
    if (deleteData && isolated)
      leftBehind.push(
        `the helper ${HELPER_PATH}, its settings ${helperConfigFile(userInfo().username)} and the sudoers line (root's: the panel removes them with sudo)`,
      );
    if (deleteData) {
      await reporter.step('delete-data', 'Delete the agent data (database, slots, tokens)', () => {
        for (const dir of [config.dataDir, config.pm2Home, config.runDir]) removeTree(dir);
        return config.dataDir;
      });
    }
    // Last: this process runs from ROOT (its modules are loaded already).
    reporter.stopLogging();
    await reporter.step('remove', `Remove ${layout.root}`, () => removeTree(layout.root));
    reporter.emit({
      kind: 'result',
      outcome: 'uninstalled',
      version: null,
      message:
        (deleteData
          ? 'The agent, its slots and its data are gone.'
          : `The agent is gone; its data stays in ${config.dataDir} (a new deploy picks it up).`) +
        (leftBehind.length > 0 ? ` Not removed: ${leftBehind.join('; ')}.` : ''),
    });
    return 0;
  } catch (error) {
    reporter.emit({
      kind: 'result',
      outcome: 'failed',
      version: liveAgentState(config.dataDir)?.version ?? null,
      message: `Uninstalling failed: ${(error as Error).message}`,
    });
    return EXIT_FAILED;
  }
}

/** At boot (systemd unit or @reboot): PM2 from its saved list, and the agent if the list lacked it. */
export async function resurrect(ctx: ReleaseContext): Promise<number> {
  const { layout, reporter, config } = ctx;
  const current = layout.current();
  const pm2 = new AgentUnderPm2(config.pm2Home);
  try {
    await reporter.step('connect', 'Start PM2', () => pm2.connect());
    if (existsSync(join(config.pm2Home, 'dump.pm2')))
      await reporter.step('resurrect', 'Start the saved processes', () => pm2.resurrect());
    if (!current) {
      reporter.emit({ kind: 'result', outcome: 'failed', version: null, message: 'No release is active here.' });
      return EXIT_FAILED;
    }
    // A stale agent-state.json (its pid now another process's) must not stop the agent from starting.
    if (!(await pm2.describe()) && !liveAgentState(config.dataDir))
      await reporter.step('start', `Start ${current}`, () => pm2.start(launchOf(ctx)));
    reporter.emit({ kind: 'result', outcome: 'activated', version: current, message: `${current} is started.` });
    return 0;
  } catch (error) {
    reporter.emit({ kind: 'result', outcome: 'failed', version: null, message: (error as Error).message });
    return EXIT_FAILED;
  } finally {
    await pm2.disconnect();
  }
}

export { systemdUnitPath, unitName } from './boot-unit.js';

const reboot = (layout: ReleaseLayout): string => `@reboot ${layout.wrapper} release resurrect >/dev/null 2>&1`;

function readCrontab(): string | null {
  const listed = spawnSync('crontab', ['-l'], { encoding: 'utf8' });
  if (listed.error) return null; // no crontab command
  return listed.status === 0 ? listed.stdout : '';
}

/** Without systemd: an @reboot line in the account's crontab (kept once). */
export function installCrontabLine(layout: ReleaseLayout): 'added' | 'present' | 'no-crontab' {
  const table = readCrontab();
  if (table === null) return 'no-crontab';
  const line = reboot(layout);
  if (table.split('\n').includes(line)) return 'present';
  const written = spawnSync('crontab', ['-'], { input: `${table.replace(/\n?$/, '\n')}${line}\n`.replace(/^\n/, '') });
  if (written.status !== 0) throw new ReleaseFailure(`crontab refused the line: ${written.stderr?.toString().trim()}`);
  return 'added';
}

function removeCrontabLine(layout: ReleaseLayout): boolean {
  const table = readCrontab();
  if (!table) return false;
  const line = reboot(layout);
  const lines = table.split('\n');
  if (!lines.includes(line)) return false;
  spawnSync('crontab', ['-'], { input: lines.filter((l) => l !== line).join('\n') });
  return true;
}
