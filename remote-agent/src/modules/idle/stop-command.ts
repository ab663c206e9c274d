import { spawn } from 'node:child_process';
import { findExecutable } from '../../util/executables.js';
import type { IsolationLayout } from '../slots/paths.js';

/** The outcome of one run of the stop command, as lastStop shows it. */
export interface StopOutcome {
  exitCode: number | null;
  output: string;
}

/** Most of what the command printed that the status keeps: the end, where the reason for a failure usually is. */
export const STOP_OUTPUT_CHARS = 2000;
/** A stop command that has not ended by then is killed and counts as failed (sudo waiting for a password, say). */
export const STOP_TIMEOUT_MS = 120_000;

const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The stop command when the config names none. On an isolated host the agent's account may run the root-owned
 * helper and nothing else, so the helper's fixed `poweroff` verb; elsewhere the agent's own sudo rights.
 */
export function defaultStopCommand(isolation: IsolationLayout | null): string[] {
  if (isolation) return [isolation.sudo, '-n', isolation.helper, 'poweroff'];
  return [findExecutable('sudo', SYSTEM_PATH) ?? 'sudo', '-n', 'shutdown', '-h', 'now'];
}

/** The argv as an admin would type it, for the status (display only: it is never given to a shell). */
export function displayCommand(argv: readonly string[]): string {
  return argv.map((arg) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Anything shaped like a key or token keeps a short, recognisable start; `name=value` secrets lose their value. */
const KEY_LIKE = /\b((?:sk|sdk)[-_][A-Za-z0-9]{0,6}[-_]?[A-Za-z0-9]{3})[A-Za-z0-9_-]{8,}/g;
const NAMED_SECRET =
  /\b([A-Za-z_]*(?:token|secret|password|passphrase|api[-_]?key|authorization)[A-Za-z_]*\s*[=:]\s*)(?:Bearer\s+)?\S+/gi;
const BEARER = /\b(Bearer\s+)\S+/gi;

/**
 * Removes secrets from command output before it is stored or shown: the same kinds the logger keeps out of log
 * lines (tokens, keys, authorization), found in free text rather than in named fields.
 */
export function redactSecrets(text: string): string {
  return text.replace(NAMED_SECRET, '$1[redacted]').replace(BEARER, '$1[redacted]').replace(KEY_LIKE, '$1…[redacted]');
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/**
 * Runs the stop command once, as a fixed argv (no shell: nothing in it is interpreted), with a minimal environment
 * (never the agent's own, which may name secrets), and resolves with its exit code and the end of its output.
 * Never rejects: a program that cannot start, or never ends, is an outcome with a null exit code.
 */
export function runStopCommand(argv: readonly string[], timeoutMs = STOP_TIMEOUT_MS): Promise<StopOutcome> {
  return new Promise((resolve) => {
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-4 * STOP_OUTPUT_CHARS);
    };
    let settled = false;
    const finish = (exitCode: number | null, note?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = (note ? `${output}${output && !output.endsWith('\n') ? '\n' : ''}${note}` : output)
        .replace(CONTROL, '')
        .trimEnd();
      resolve({ exitCode, output: redactSecrets(text).slice(-STOP_OUTPUT_CHARS) });
    };
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH || SYSTEM_PATH, LANG: 'C' };
    if (process.env.HOME) env.HOME = process.env.HOME;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: '/' });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(null, `The stop command did not end within ${Math.round(timeoutMs / 1000)} s and was killed.`);
    }, timeoutMs);
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (error) => finish(null, `Could not run ${argv[0]}: ${error.message}`));
    child.once('close', (code, signal) => finish(code, signal ? `Ended by signal ${signal}.` : undefined));
  });
}

/**
 * A failed stop's output with what to do next, when the cause is the usual one: sudo wanting a password (a
 * single-user host without passwordless sudo) or a helper that lacks the poweroff verb (set up by an older release).
 */
export function explainStopFailure(outcome: StopOutcome, command: string): StopOutcome {
  if (outcome.exitCode === 0) return outcome;
  let hint: string | null = null;
  if (
    /password is required|a terminal is required|may not run sudo|is not allowed to (run|execute)|not in the sudoers/i.test(
      outcome.output,
    )
  )
    hint = `This account cannot run "${command}" without a password, so the idle stop cannot work here: allow it in sudoers (NOPASSWD) or set idle.stopCommand in the agent's config to a command it may run.`;
  else if (/unknown verb poweroff/.test(outcome.output))
    hint =
      'The root-owned helper predates the poweroff verb: run setup-host again (Deploy does it) so the idle stop can work.';
  if (!hint) return outcome;
  const output = `${outcome.output}${outcome.output ? '\n' : ''}${hint}`;
  return { exitCode: outcome.exitCode, output: output.slice(-STOP_OUTPUT_CHARS) };
}
