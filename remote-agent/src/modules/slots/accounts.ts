import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import type { Logger } from 'pino';
import { findExecutable } from '../../util/executables.js';
import type { IsolationLayout } from './paths.js';

/** Where `slotdeck-agent setup-host` installs the helper and its settings (root-owned, outside the agent's reach). */
export const HELPER_DIR = '/usr/local/libexec/slotdeck';
export const HELPER_PATH = `${HELPER_DIR}/slotdeck-helper`;
export const helperConfigFile = (agentUser: string): string => `/etc/slotdeck/agents/${agentUser}.conf`;
export const DEFAULT_SLOT_NPROC = 1024;

const HELPER_TIMEOUT_MS = 15_000;

export class IsolationError extends Error {}

/** Parses the helper's settings file: `key=value` lines (homes, run, nproc). */
export function parseHelperConfig(text: string): { homes: string; run: string; nproc: number } | null {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([a-z]+)=(.*)$/.exec(line.trim());
    if (match) values.set(match[1]!, match[2]!);
  }
  const homes = values.get('homes');
  const run = values.get('run');
  const safePath = /^\/[A-Za-z0-9/._-]+$/;
  if (!homes || !run || !safePath.test(homes) || !safePath.test(run)) return null;
  const nproc = Number(values.get('nproc') ?? DEFAULT_SLOT_NPROC);
  return { homes, run, nproc: Number.isInteger(nproc) && nproc > 0 ? nproc : DEFAULT_SLOT_NPROC };
}

const runHelper = (layout: IsolationLayout, args: string[], timeoutMs = HELPER_TIMEOUT_MS): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      layout.sudo,
      ['-n', layout.helper, ...args],
      { timeout: timeoutMs, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
      (error, stdout, stderr) => {
        if (error) reject(new IsolationError(`slotdeck-helper ${args[0]} failed: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      },
    );
  });

/**
 * Finds out whether this host was set up for isolated slots: the agent is not root, and setup-host wrote the
 * helper's settings for this account. Then the helper must answer, or the agent refuses to start: slots must never
 * run unisolated by accident on a host that was meant to isolate them.
 */
export async function detectIsolation(logger: Logger): Promise<IsolationLayout | null> {
  if (process.getuid?.() === 0) {
    logger.warn(
      'the agent runs as root, so every slot does too: run `slotdeck-agent setup-host` and serve as its account',
    );
    return null;
  }
  const agentUser = userInfo().username;
  const configFile = helperConfigFile(agentUser);
  if (!existsSync(configFile)) return null;
  const settings = parseHelperConfig(readFileSync(configFile, 'utf8'));
  const sudo = findExecutable('sudo', '/usr/bin:/bin:/usr/sbin:/sbin');
  if (!settings || !sudo) {
    throw new IsolationError(
      `${configFile} says this host isolates slots, but ${!sudo ? 'sudo is not installed' : 'the file is not valid'}. Run slotdeck-agent setup-host again as root.`,
    );
  }
  const layout: IsolationLayout = { helper: HELPER_PATH, sudo, ...settings };
  const answer = await runHelper(layout, ['check']).catch((error: Error) => {
    throw new IsolationError(
      `This host isolates slots, but the helper did not answer (${error.message}). Run slotdeck-agent setup-host --user ${agentUser} again as root.`,
    );
  });
  if (answer.trim() !== `ok ${agentUser}`) {
    throw new IsolationError(`The helper answered "${answer.trim()}" instead of "ok ${agentUser}".`);
  }
  return layout;
}

/** The accounts slots run as on an isolated host, managed only through the helper. */
export class SlotAccounts {
  private readonly ensured = new Set<string>();

  constructor(readonly layout: IsolationLayout) {}

  /** Creates the account and its folders once per agent run (the run folder is on a tmpfs after a reboot). */
  async ensure(account: string): Promise<void> {
    if (this.ensured.has(account)) return;
    await runHelper(this.layout, ['ensure-account', account]);
    // s/: where the account's dtach binds its sockets. The agent makes it in its own folder (the account can write
    // in s/ but not replace it); it inherits the account's group from the folder.
    const sockets = join(this.layout.run, account, 's');
    mkdirSync(sockets, { recursive: true, mode: 0o770 });
    chmodSync(sockets, 0o770);
    this.ensured.add(account);
  }

  /**
   * Takes the socket the account's dtach made in s/ into the agent's own folder, where the account cannot swap
   * it, and checks it there: a socket (not a link) of the account's uid. The agent connects only to the taken
   * socket, so a slot cannot point the agent at another slot's session (a check followed by a connect on a path
   * the account can change could be raced).
   */
  claimSocket(incoming: string, claimed: string, account: string): void {
    try {
      renameSync(incoming, claimed);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // Nothing new: the socket taken before (the agent restarted while the session ran), if any.
    }
    const stat = lstatSync(claimed);
    if (!stat.isSocket() || stat.uid !== this.uid(account)) {
      try {
        rmSync(claimed, { recursive: true, force: true });
      } catch {
        // a folder of the account's it cannot empty: it only keeps that account's own slot from attaching
      }
      throw new IsolationError(`${incoming} was not a socket of ${account}; removed it`);
    }
  }

  /** Ends the slot's holder and program, which the agent cannot signal itself. */
  async stop(account: string, slotId: string): Promise<void> {
    await runHelper(this.layout, ['stop', account, slotId]);
  }

  async removeSlot(account: string, slotId: string): Promise<void> {
    await runHelper(this.layout, ['remove-slot', account, slotId]);
  }

  async removeAccount(account: string): Promise<void> {
    this.ensured.delete(account);
    // It searches the shared temp folders for the account's files: on a host with a large /tmp that takes longer
    // than other verbs, and a helper killed half-way leaves the account behind.
    await runHelper(this.layout, ['remove-account', account], 4 * HELPER_TIMEOUT_MS);
  }

  /** The account's uid, from the password database (the socket the agent connects to must be the account's). */
  uid(account: string): number | null {
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const fields = line.split(':');
        if (fields[0] === account) return Number(fields[2]);
      }
    } catch {
      // no password database: nothing to compare with
    }
    return null;
  }
}
