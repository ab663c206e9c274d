import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';

export interface SshConfigEntry {
  alias: string;
  address: string;
  port: number;
  user: string | null;
  keyPath: string | null;
}

const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/**
 * The hosts of an OpenSSH client config, resolved as `ssh <alias>` would resolve them (HostName, Port, User and the
 * first IdentityFile, wildcards and defaults applied), for the admin to pick from when adding a host.
 */
export function readSshConfig(file = join(homedir(), '.ssh', 'config')): { file: string; entries: SshConfigEntry[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { file, entries: [] };
    throw new IpcError(IpcErrorCode.SSH_CONFIG_UNREADABLE, `${file} cannot be read (${(error as Error).message}).`);
  }
  let config: SSHConfig;
  try {
    config = SSHConfig.parse(text);
  } catch (error) {
    throw new IpcError(
      IpcErrorCode.SSH_CONFIG_UNREADABLE,
      `${file} could not be parsed (${(error as Error).message}).`,
    );
  }
  const aliases = new Set<string>();
  for (const line of config) {
    if (!('param' in line) || line.param.toLowerCase() !== 'host') continue;
    // `Host a b` parses into a list of values, `Host a` into a string.
    const names = typeof line.value === 'string' ? line.value.split(/\s+/) : line.value.map((entry) => entry.val);
    for (const alias of names) if (alias && !/[*?!]/.test(alias)) aliases.add(alias);
  }
  const entries = [...aliases].map((alias) => {
    const computed = config.compute(alias);
    const identity = first(computed.IdentityFile);
    const port = Number(first(computed.Port) ?? 22);
    return {
      alias,
      address: first(computed.HostName) ?? alias,
      port: Number.isInteger(port) && port > 0 && port < 65536 ? port : 22,
      user: first(computed.User) ?? null,
      keyPath: identity ? identity.replace(/^~(?=\/)/, homedir()) : null,
    };
  });
  return { file, entries };
}
