import { RELEASE_ROOT_NAME } from '../../../../remote-agent/src/contract/index';
import { compareVersions } from '../../../shared/agent-compat';
import type { DeployAction } from '../../../shared/ipc/contract-cloud';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { StepPlan } from './job';

/** The steps each action shows, in order (the release command adds its own under `activate`/`rollback`). */
export function planFor(action: DeployAction, mode: 'unknown' | 'isolated' | 'single-user' = 'unknown'): StepPlan[] {
  const connect = { id: 'connect', label: 'Connect over SSH' };
  const detect = { id: 'detect', label: 'Check the host' };
  const upload = { id: 'upload', label: 'Upload the agent' };
  const unpack = { id: 'unpack', label: 'Unpack and install dependencies' };
  switch (action) {
    case 'deploy':
      return [
        connect,
        detect,
        { id: 'mode', label: 'Choose how slots are isolated' },
        { id: 'node', label: 'Install Node.js' },
        { id: 'dtach', label: 'Install dtach' },
        upload,
        unpack,
        ...(mode === 'single-user' ? [] : [{ id: 'setup-host', label: 'Set up slot accounts' }]),
        { id: 'activate', label: 'Start the agent' },
        { id: 'boot', label: 'Start the agent at boot' },
        { id: 'reconnect', label: 'Read the admin token and connect' },
      ];
    case 'upgrade':
      return [
        connect,
        detect,
        upload,
        unpack,
        { id: 'setup-host', label: 'Update the slot helper' },
        { id: 'activate', label: 'Switch to the new agent' },
        { id: 'reconnect', label: 'Reconnect' },
      ];
    case 'rollback':
      return [
        connect,
        detect,
        { id: 'rollback', label: 'Go back one release' },
        { id: 'reconnect', label: 'Reconnect' },
      ];
    case 'uninstall':
      return [
        connect,
        detect,
        { id: 'uninstall', label: 'Stop and remove the agent' },
        { id: 'disconnect', label: 'Disconnect' },
      ];
  }
}

/** Quotes a word for the remote POSIX shell. */
export function shq(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Who runs the host-side commands: the login user itself, or the agent's account through sudo. */
export interface RunAs {
  /** The agent's account; null: the login user (single-user mode). */
  account: string | null;
  /** Extra environment for the host-side commands (not secret: it shows in the host's process list). */
  env: Record<string, string>;
}

/** `<prefix> <command>`: the agent's account via `sudo -n -u`, with the extra environment, as one command line. */
export function asAgent(runAs: RunAs, words: string[]): string {
  const env = Object.entries(runAs.env).map(([key, value]) => `${key}=${value}`);
  const prefix = runAs.account ? ['sudo', '-n', '-u', runAs.account, '-H'] : [];
  const all = [...prefix, ...(env.length ? ['env', ...env] : []), ...words];
  // The login user's home may be closed to the agent's account: start from / instead.
  return `${runAs.account ? 'cd / && ' : ''}${all.map(shq).join(' ')}`;
}

/** As root (sudo -n), with the extra environment. */
export function asRoot(env: Record<string, string>, words: string[]): string {
  const pairs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  return ['sudo', '-n', ...(pairs.length ? ['env', ...pairs] : []), ...words].map(shq).join(' ');
}

export const releaseRoot = (home: string): string => `${home.replace(/\/+$/, '')}/${RELEASE_ROOT_NAME}`;

/** The command the host profile runs the agent's CLI with (the admin token, `release status`). */
export function agentCommandFor(root: string, account: string | null): string {
  const cli = shq(`${root}/bin/slotdeck-agent`);
  return account ? `sudo -n -u ${shq(account)} ${cli}` : cli;
}

/** The agent account named in a profile's agent command (`sudo -n -u NAME ...`), null when there is none. */
export function accountFromCommand(command: string | null): string | null {
  return command ? (/sudo\s+-n\s+-u\s+([a-z_][a-z0-9_-]*)\s/.exec(command)?.[1] ?? null) : null;
}

/** An upgrade never goes to an older agent: its database may be newer than that agent knows. Rollback goes back. */
export function refuseDowngrade(hostVersion: string | null, bundledVersion: string, label: string): void {
  if (hostVersion === null || compareVersions(bundledVersion, hostVersion) >= 0) return;
  throw new IpcError(
    IpcErrorCode.DEPLOY_DOWNGRADE,
    `${label} runs the agent ${hostVersion}, newer than the ${bundledVersion} this Slotdeck bundles. Update Slotdeck to upgrade it, or use Rollback to go back to the release it ran before.`,
    { hostVersion, bundledVersion },
  );
}

/** Names that say "secret": such values would show in the host's process list (they go on the command line). */
const SECRET_NAME = /token|auth|passw|secret|key|credential/i;

/**
 * The extra environment for host-side commands goes into the remote argv (visible to every user of the host):
 * names that look like secrets are refused, and names must be plain variable names.
 */
export function checkHostEnv(env: Record<string, string>): void {
  for (const name of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_FAILED,
        `The host environment for deploys (SLOTDECK_DEPLOY_HOST_ENV) has "${name}", which is not a variable name. Use letters, digits and _ only.`,
      );
    }
    if (SECRET_NAME.test(name)) {
      throw new IpcError(
        IpcErrorCode.DEPLOY_FAILED,
        `The host environment for deploys (SLOTDECK_DEPLOY_HOST_ENV) has ${name}, which looks like a secret: it would be on the host's command lines, visible to every user there. Remove it; put credentials in the host's own config (an .npmrc of the agent's account).`,
      );
    }
  }
}
