import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ClaudeStatus } from '../../contract/index.js';
import { childrenOf, processTree, readProcessTable, type ProcessInfo } from '../../util/procfs.js';

/** A .claude.json larger than this is not read (it is a few KB; a huge one is not Claude Code's). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * Whether a process is Claude Code: its name (Claude Code sets its process title to `claude`, which Linux keeps as
 * the command name; an installed `claude` launcher script has that name too) or the program it runs.
 */
function isClaude(info: ProcessInfo, cmdline: (pid: number) => string[]): boolean {
  if (info.command === 'claude') return true;
  const args = cmdline(info.pid);
  const program = args[0] ? basename(args[0]) : '';
  if (program === 'claude') return true;
  // `node /…/@anthropic-ai/claude-code/cli.js`: the npm package run by node.
  return /^node(js)?$/.test(program) && args.slice(1, 3).some((arg) => /claude-code\/cli\.m?js$/.test(arg));
}

function readCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * 'unreadable' (→ status `unknown`): the agent may not look, or the path is not a plain regular file (a symlink, a FIFO,
 * a device). The slot's user controls its home, so a hostile entry must neither block the agent's event loop (a FIFO
 * or /dev/zero read synchronously stops the gateway) nor let the slot probe files the agent can read (a symlink).
 */
type Presence = 'present' | 'absent' | 'unreadable';

function errorPresence(error: unknown): Presence {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' ? 'absent' : 'unreadable';
}

/** Existence only: the credentials file holds the slot's OAuth tokens and is never opened. lstat: a link is not it. */
function fileExists(path: string): Presence {
  try {
    return lstatSync(path).isFile() ? 'present' : 'unreadable';
  } catch (error) {
    return errorPresence(error);
  }
}

/**
 * The file's text when it is a regular file (not a link: O_NOFOLLOW; not a FIFO/device: O_NONBLOCK + fstat) of at
 * most `MAX_CONFIG_BYTES`; read only through the checked descriptor, so a swap after the check changes nothing.
 */
function readRegularFile(path: string): { text: string } | Presence {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    // ELOOP: the last component is a symlink.
    return errorPresence(error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MAX_CONFIG_BYTES) return 'unreadable';
    const buffer = Buffer.alloc(stat.size);
    let filled = 0;
    while (filled < buffer.length) {
      const read = readSync(fd, buffer, filled, buffer.length - filled, filled);
      if (read === 0) break;
      filled += read;
    }
    return { text: buffer.subarray(0, filled).toString('utf8') };
  } catch (error) {
    return errorPresence(error);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether Claude Code's state file records a signed-in account: its `oauthAccount` is an object (account and
 * organisation names, no token). The parsed file is dropped at once; nothing of it is kept or logged.
 */
function hasOAuthAccount(path: string): Presence {
  const file = readRegularFile(path);
  if (typeof file === 'string') return file;
  try {
    const account = (JSON.parse(file.text) as { oauthAccount?: unknown } | null)?.oauthAccount;
    return typeof account === 'object' && account !== null ? 'present' : 'absent';
  } catch {
    // Not JSON (Claude Code writing it right now): not signed in as far as we can tell.
    return 'absent';
  }
}

/**
 * Claude Code's status in one slot. `holderPid`: the slot's supervised process (its terminal's session holder), whose
 * tree holds everything the slot runs; null when the slot is not running. `homeDir`: the slot's home, whose
 * `.claude` folder is its CLAUDE_CONFIG_DIR (see slots/launch.ts); Claude Code keeps `.credentials.json` and
 * `.claude.json` there (`.claude.json` in the home itself when run without CLAUDE_CONFIG_DIR).
 *
 * On a host set up for isolation, a slot's home belongs to the slot's account and the agent may not be allowed in:
 * then the answer is `unknown` unless Claude Code is running.
 */
export function claudeStatus(
  slot: { holderPid: number | null; homeDir: string },
  table: Map<number, ProcessInfo> | null,
  cmdline: (pid: number) => string[] = readCmdline,
): ClaudeStatus {
  if (slot.holderPid !== null && table?.has(slot.holderPid)) {
    const pids = processTree(slot.holderPid, childrenOf(table));
    if (pids.some((pid) => pid !== slot.holderPid && isClaude(table.get(pid)!, cmdline))) return 'running';
  }
  const configDir = join(slot.homeDir, '.claude');
  const checks = [
    fileExists(join(configDir, '.credentials.json')),
    hasOAuthAccount(join(configDir, '.claude.json')),
    hasOAuthAccount(join(slot.homeDir, '.claude.json')),
  ];
  if (checks.includes('present')) return 'signed-in';
  if (checks.includes('unreadable')) return 'unknown';
  return 'signed-out';
}

/** The process table once for a whole list of slots. */
export function processSnapshot(): Map<number, ProcessInfo> {
  return readProcessTable();
}
