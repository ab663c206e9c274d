import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { accessKeyHint, credentialsFor, listProfiles } from '../../../../src/main/services/aws/credentials';
import type { SecretVault } from '../../../../src/main/services/secrets/vault';

const dir = mkdtempSync(join(tmpdir(), 'sd-aws-profiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: dir,
  AWS_CONFIG_FILE: join(dir, 'config'),
  AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
  ...extra,
});

const emptyVault: SecretVault = {
  status: () => ({ backend: 'keychain', state: 'ready', detail: '' }),
  unlock: () => Promise.reject(new Error('unused')),
  get: () => Promise.resolve(null),
  set: () => Promise.resolve(),
  delete: () => Promise.resolve(),
};

describe('AWS credentials', () => {
  it('lists profiles of both files with their kind and region, never a key', () => {
    writeFileSync(
      join(dir, 'config'),
      '[default]\nregion = eu-west-1\n[profile dev]\nrole_arn = arn:aws:iam::1:role/dev\nsource_profile = default\n[profile corp]\nsso_session = corp\n[sso-session corp]\nsso_region = us-east-1\n[profile tool]\ncredential_process = /bin/creds\n',
    );
    writeFileSync(
      join(dir, 'credentials'),
      '[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t\n',
    );
    const profiles = listProfiles(env());
    expect(profiles.profiles).toEqual([
      { name: 'corp', kind: 'sso', region: null },
      { name: 'default', kind: 'static', region: 'eu-west-1' },
      { name: 'dev', kind: 'role', region: null },
      { name: 'tool', kind: 'process', region: null },
    ]);
    expect(JSON.stringify(profiles)).not.toContain('s3cr3t');
    expect(profiles.environment).toBe(false);
    expect(listProfiles(env({ AWS_PROFILE: 'dev' })).environment).toBe(true);
  });

  it('reads a profile with the SDK provider, and the environment from the panel env', async () => {
    const fromProfile = credentialsFor(
      { id: 'aws-0000000001', name: 'x', source: 'profile', profile: 'default' },
      emptyVault,
      env(),
    );
    await expect(fromProfile()).resolves.toMatchObject({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 's3cr3t' });
    const fromEnv = credentialsFor(
      { id: 'aws-0000000001', name: 'x', source: 'environment', profile: null },
      emptyVault,
      env({ AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'envsecret' }),
    );
    await expect(fromEnv()).resolves.toMatchObject({ accessKeyId: 'AKIAENV', secretAccessKey: 'envsecret' });
    const none = credentialsFor(
      { id: 'aws-0000000001', name: 'x', source: 'environment', profile: null },
      emptyVault,
      env(),
    );
    await expect(none()).rejects.toMatchObject({ code: 'AWS_CREDENTIALS_MISSING' });
    const gone = credentialsFor(
      { id: 'aws-0000000001', name: 'x', source: 'access-key', profile: null },
      emptyVault,
      env(),
    );
    await expect(gone()).rejects.toMatchObject({ code: 'AWS_CREDENTIALS_MISSING' });
  });

  it('hides the middle of a key id', () => {
    expect(accessKeyHint('AKIAIOSFODNN7EXAMPLE')).toBe('AKIA…MPLE');
  });
});
