import { renameSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
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

/** `export NAME='value'` with the value single-quoted, so the launcher's shell takes it literally. */
export function envFileContents(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([key, value]) => `export ${key}='${value.replaceAll("'", `'\\''`)}'\n`)
    .join('');
}

/** Written on every start, private to the agent user: values may be secrets. */
export function writeEnvFile(file: string, env: Record<string, string>): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, envFileContents(env), { mode: 0o600 });
  renameSync(temporary, file);
}

/**
 * PM2 runs the holder script, which becomes dtach (so PM2 tracks dtach's pid); dtach holds the slot's terminal and
 * runs the launcher, which runs the program.
 */
export function builtinProcessSpec(slot: SlotRow, paths: SlotPaths, dtachPath: string): ProcessSpec {
  return {
    name: processName(slot.id),
    script: '/bin/sh',
    args: [HOLDER_PATH, dtachPath, paths.socket(slot.id), LAUNCHER_PATH, paths.slotDir(slot.id), ...slot.argv],
    cwd: slot.workDir,
    env: {},
    outFile: paths.outLog(slot.id),
    errorFile: paths.errorLog(slot.id),
    restartDelayMs: 200,
  };
}
