import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { constants as fsConstants } from 'node:fs';
import type { ProcessSpec } from '../../supervisor/supervisor.js';
import { HOLDER_PATH, LAUNCHER_PATH, processName, type SlotPaths } from './paths.js';
import type { SlotRow } from './repository.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The complete environment of a slot's program: a few basics from the agent, the slot's own home, then its env. */
export function slotEnvironment(
  slot: SlotRow,
  paths: SlotPaths,
  shell: string,
  agentEnv: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  let user = agentEnv.USER ?? 'slotdeck';
  try {
    user = userInfo().username;
  } catch {
    // keep the variable
  }
  // On an isolated host the program runs as the slot's own account.
  user = paths.account(slot.id, slot.ownerId) ?? user;
  const base: Record<string, string> = {
    PATH: agentEnv.PATH || DEFAULT_PATH,
    LANG: agentEnv.LANG || 'C.UTF-8',
    TERM: 'xterm-256color',
    COLORTERM: 'truecolor',
    USER: user,
    LOGNAME: user,
    SHELL: shell,
  };
  if (agentEnv.TZ) base.TZ = agentEnv.TZ;
  return {
    ...base,
    ...slot.env,
    HOME: slot.homeDir,
    CLAUDE_CONFIG_DIR: `${slot.homeDir}/.claude`,
    SLOTDECK_SLOT_ID: slot.id,
    SLOTDECK_SLOT_NAME: slot.name,
    SLOTDECK_COLS: String(slot.cols),
    SLOTDECK_ROWS: String(slot.rows),
  };
}

const quote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/** `export NAME='value'` with the value single-quoted, so the launcher's shell takes it literally. */
export function envFileContents(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([key, value]) => `export ${key}=${quote(value)}\n`)
    .join('');
}

/** What the launcher needs besides the environment: where to start, what to run, and whether it is isolated. */
export interface LaunchPlan {
  workDir: string;
  argv: string[];
  isolated: boolean;
}

/** The launcher's file: the slot's environment, then its work dir and program as shell assignments. */
export function launchFileContents(env: Record<string, string>, plan: LaunchPlan): string {
  return (
    envFileContents(env) +
    `slot_work_dir=${quote(plan.workDir)}\n` +
    `slot_isolated=${plan.isolated ? 1 : 0}\n` +
    `set -- ${plan.argv.map(quote).join(' ')}\n`
  );
}

/**
 * Written on every start. Values may be secrets: 0600 for the agent user, or 0640 where the slot's account reads it
 * through its group (isolated hosts: the folder's group is the account's). The temporary file is created afresh
 * (O_EXCL), so a link planted in its place is refused rather than followed.
 */
export function writeEnvFile(
  file: string,
  env: Record<string, string>,
  plan?: LaunchPlan,
  mode: 0o600 | 0o640 = 0o600,
): void {
  const temporary = `${file}.tmp`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, plan ? launchFileContents(env, plan) : envFileContents(env), { mode, flag: 'wx' });
  renameSync(temporary, file);
}

/** Reads a small file the slot's account may also write, without following a link or blocking on a FIFO. */
export function readSmallFile(file: string, maxBytes = 64 * 1024): string | null {
  try {
    // O_NOFOLLOW | O_NONBLOCK: a planted symlink or FIFO fails instead of leaking or hanging the agent.
    const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) return null;
      // Only the tail: the account may have grown the file without bound.
      const length = Math.min(stat.size, maxBytes);
      const buffer = Buffer.alloc(length);
      const read = readSync(fd, buffer, 0, length, stat.size - length);
      return buffer.subarray(0, read).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/**
 * The holder and launcher scripts as PM2 will keep them in the slot's spec. Under the host.sh wrapper,
 * SLOTDECK_RESOURCES_DIR is ROOT/current/resources, a path that stays valid after the release this agent runs from
 * is pruned (PM2 restarts a slot, or resurrects it at boot, long after); else the scripts beside this code.
 */
export function slotScripts(env: NodeJS.ProcessEnv = process.env): { holder: string; launcher: string } {
  const dir = env.SLOTDECK_RESOURCES_DIR;
  if (dir && isAbsolute(dir)) return { holder: join(dir, 'slot-holder.sh'), launcher: join(dir, 'slot-launch.sh') };
  return { holder: HOLDER_PATH, launcher: LAUNCHER_PATH };
}

/**
 * PM2 runs the holder script, which becomes dtach (so PM2 tracks dtach's pid); dtach holds the slot's terminal and
 * runs the launcher, which runs the program.
 */
export function builtinProcessSpec(
  slot: Pick<SlotRow, 'id' | 'ownerId' | 'memoryLimitMb' | 'workDir'>,
  paths: SlotPaths,
  dtachPath: string,
): ProcessSpec {
  const account = paths.account(slot.id, slot.ownerId);
  const { isolation } = paths;
  return {
    name: processName(slot.id),
    // On an isolated host the root-owned helper starts the same holder as the slot's account; it takes only the
    // account, the slot id and the limits (processes, memory in MB), and finds everything else itself.
    ...(account && isolation
      ? {
          script: isolation.sudo,
          args: [
            '-n',
            isolation.helper,
            'run',
            account,
            slot.id,
            String(isolation.nproc),
            String(slot.memoryLimitMb ?? 0),
          ],
          // The work dir is the account's, not the agent's: the launcher goes there.
          cwd: '/',
          // The agent cannot signal another account's processes (the helper ends them); PM2's tree kill waits
          // for them to be gone and reaped, which removing the account afterwards needs.
          treeKill: true,
        }
      : {
          script: '/bin/sh',
          args: [
            slotScripts().holder,
            dtachPath,
            paths.socket(slot.id),
            slotScripts().launcher,
            paths.envFile(slot.id),
            paths.exitFile(slot.id),
          ],
          cwd: slot.workDir,
        }),
    env: {},
    outFile: paths.outLog(slot.id),
    errorFile: paths.errorLog(slot.id),
    restartDelayMs: 200,
  };
}
