import { userInfo } from 'node:os';
import type { SlotCommand } from '../../contract/index.js';

const NOT_A_SHELL = /(?:nologin|false|sync|halt|shutdown)$/;

/** The agent user's login shell; service accounts often have none, and then bash (or sh) stands in. */
export function loginShell(env: NodeJS.ProcessEnv = process.env): string {
  let shell: string | null;
  try {
    shell = userInfo().shell;
  } catch {
    shell = null;
  }
  shell ??= env.SHELL ?? null;
  if (!shell || NOT_A_SHELL.test(shell)) return '/bin/bash';
  return shell;
}

/** The program and arguments a slot runs. */
export function resolveArgv(command: SlotCommand, shell: string = loginShell()): string[] {
  switch (command.preset) {
    case 'shell':
      return [command.shell ?? shell, '-l'];
    case 'claudebox':
      return ['claudebox', ...(command.args ?? [])];
    case 'docker-exec':
      return ['docker', 'exec', '-it', command.container, command.shell ?? 'bash'];
    case 'custom':
      return [command.command, ...(command.args ?? [])];
  }
}

/** What to tell the admin when a slot's program is not installed. */
export function missingProgramMessage(command: SlotCommand, program: string): string {
  switch (command.preset) {
    case 'claudebox':
      return 'claudebox is not installed on this host (not found in PATH). Install ClaudeBox on the host, or choose another preset.';
    case 'docker-exec':
      return 'docker is not installed on this host (not found in PATH). Install Docker, or choose another preset.';
    case 'shell':
      return `The shell ${program} does not exist or is not executable on this host. Pick an installed shell such as /bin/bash.`;
    case 'custom':
      return `The program "${program}" was not found in PATH on this host (or is not executable). Use an absolute path, install it, or set PATH in the slot's env.`;
  }
}
