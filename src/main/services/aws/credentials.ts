import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fromIni, fromSSO } from '@aws-sdk/credential-providers';
import type { AwsProfiles } from '../../../shared/ipc/contract-cloud';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { AwsAccountRow } from '../db/store';
import type { SecretVault } from '../secrets/vault';

/** Where a pasted access key lives: the vault only (SQLite keeps a hint of its id). */
export const accessKeySecret = (accountId: string): string => `aws/${accountId}/access-key`;

/** AKIA…WXYZ: enough to recognise a key, not to use it. */
export const accessKeyHint = (accessKeyId: string): string => `${accessKeyId.slice(0, 4)}…${accessKeyId.slice(-4)}`;

export function awsFiles(env: NodeJS.ProcessEnv): { configFile: string; credentialsFile: string } {
  const home = env.HOME ?? homedir();
  return {
    configFile: env.AWS_CONFIG_FILE ?? join(home, '.aws', 'config'),
    credentialsFile: env.AWS_SHARED_CREDENTIALS_FILE ?? join(home, '.aws', 'credentials'),
  };
}

/** Sections of an INI file (the AWS CLI's format), keys lower-cased. */
function readIni(file: string): Map<string, Record<string, string>> {
  const sections = new Map<string, Record<string, string>>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return sections;
  }
  let current: Record<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]!.trim()) ?? {};
      sections.set(section[1]!.trim(), current);
      continue;
    }
    const pair = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (pair && current && !/^\s/.test(raw)) current[pair[1]!.toLowerCase()] = pair[2]!;
  }
  return sections;
}

/** The profiles of ~/.aws/config and ~/.aws/credentials, by name and kind (never their keys). */
export function listProfiles(env: NodeJS.ProcessEnv): AwsProfiles {
  const { configFile, credentialsFile } = awsFiles(env);
  const merged = new Map<string, Record<string, string>>();
  for (const [section, values] of readIni(configFile)) {
    const name = section === 'default' ? 'default' : /^profile\s+(.+)$/.exec(section)?.[1]?.trim();
    if (name) merged.set(name, { ...merged.get(name), ...values });
  }
  for (const [name, values] of readIni(credentialsFile)) merged.set(name, { ...merged.get(name), ...values });
  const kind = (values: Record<string, string>): AwsProfiles['profiles'][number]['kind'] => {
    if (values.sso_session || values.sso_start_url) return 'sso';
    if (values.role_arn) return 'role';
    if (values.credential_process) return 'process';
    if (values.aws_access_key_id) return 'static';
    return 'other';
  };
  return {
    profiles: [...merged.entries()]
      .map(([name, values]) => ({ name, kind: kind(values), region: values.region ?? null }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    environment: Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE),
    configFile,
    credentialsFile,
  };
}

/** A provider as the SDK's clients take it (typed from the SDK's own exports, not its internal packages). */
export type CredentialsProvider = () => Promise<AwsCredentialIdentity>;
type AwsCredentialIdentity = Awaited<ReturnType<ReturnType<typeof fromIni>>>;

export interface StaticKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/**
 * The credentials of an account, resolved when a client needs them (and again when they expire): a profile through
 * the SDK's own INI provider (static keys, roles, SSO after `aws sso login`, credential_process), the panel's
 * environment, or the pasted key read from the vault.
 */
export function credentialsFor(
  account: Pick<AwsAccountRow, 'id' | 'name' | 'source' | 'profile'>,
  vault: SecretVault,
  env: NodeJS.ProcessEnv,
  /** The SSO and STS clients a profile may need talk to this endpoint instead (tests: the stand-in). */
  endpoint?: string,
): CredentialsProvider {
  const { configFile, credentialsFile } = awsFiles(env);
  const files = { filepath: credentialsFile, configFilepath: configFile, ignoreCache: true };
  const clientConfig = endpoint ? { clientConfig: { endpoint } } : {};
  // fromIni hands SSO profiles to fromSSO without the file paths, so SSO profiles go to fromSSO directly: the
  // panel's AWS_CONFIG_FILE may not be the process's.
  const profile =
    (name: string): CredentialsProvider =>
    () => {
      const sso = listProfiles(env).profiles.some((p) => p.name === name && p.kind === 'sso');
      return (sso ? fromSSO : fromIni)({ profile: name, ...files, ...clientConfig })();
    };
  if (account.source === 'profile') return profile(account.profile ?? 'default');
  if (account.source === 'environment') {
    if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      const key: AwsCredentialIdentity = {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
      };
      return () => Promise.resolve(key);
    }
    if (env.AWS_PROFILE) return profile(env.AWS_PROFILE);
    return () =>
      Promise.reject(
        new IpcError(
          IpcErrorCode.AWS_CREDENTIALS_MISSING,
          `Slotdeck was started without AWS_ACCESS_KEY_ID or AWS_PROFILE, so "${account.name}" has no credentials. Start Slotdeck with them set, or use a profile or a pasted key.`,
        ),
      );
  }
  return async () => {
    const stored = await vault.get(accessKeySecret(account.id));
    if (!stored)
      throw new IpcError(
        IpcErrorCode.AWS_CREDENTIALS_MISSING,
        `The access key of "${account.name}" is no longer in the keychain. Paste it again in the account's settings.`,
      );
    return JSON.parse(stored) as StaticKey;
  };
}
