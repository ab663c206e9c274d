import { describe, expect, it } from 'vitest';
import { ipcContract, SshHostInput } from '../../../src/shared/ipc/contract';

const validHost = {
  name: 'Production',
  address: 'prod.example.com',
  user: 'ubuntu',
  auth: { method: 'agent' },
};

/** The messages zod gives for an input, or an empty list when it is accepted. */
function problems(schema: { safeParse(input: unknown): { success: boolean; error?: unknown } }, input: unknown) {
  const result = schema.safeParse(input);
  if (result.success) return [];
  return (result.error as { issues: Array<{ path: PropertyKey[]; message: string }> }).issues.map(
    (issue) => `${issue.path.map(String).join('.')}: ${issue.message}`,
  );
}

describe('SshHostInput', () => {
  it('accepts a minimal host and fills in port 22, agent port 7420 and the slotdeck-agent command', () => {
    expect(SshHostInput.parse(validHost)).toEqual({
      ...validHost,
      port: 22,
      agentPort: 7420,
      agentCommand: 'slotdeck-agent',
    });
  });

  it('refuses an empty or blank name and asks for one', () => {
    expect(problems(SshHostInput, { ...validHost, name: '' })).toEqual(['name: give the host a name']);
    expect(problems(SshHostInput, { ...validHost, name: '   ' })).toEqual(['name: give the host a name']);
  });

  it('refuses ports outside 1-65535', () => {
    expect(problems(SshHostInput, { ...validHost, port: 0 })).toEqual(['port: ports are 1-65535']);
    expect(problems(SshHostInput, { ...validHost, port: 70000 })).toEqual(['port: ports are 1-65535']);
    expect(problems(SshHostInput, { ...validHost, agentPort: 70000 })).toEqual(['agentPort: ports are 1-65535']);
    expect(problems(SshHostInput, { ...validHost, port: 2222 })).toEqual([]);
  });

  it('refuses a user name with spaces', () => {
    const messages = problems(SshHostInput, { ...validHost, user: 'john smith' });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/^user: must be a user name/);
  });

  it('refuses key authentication with neither a pasted key nor a key file', () => {
    const messages = problems(SshHostInput, { ...validHost, auth: { method: 'key' } });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/paste a private key/);
    expect(messages[0]).toMatch(/key file/);
  });

  it('refuses key authentication with a blank pasted key and no key file', () => {
    expect(problems(SshHostInput, { ...validHost, auth: { method: 'key', privateKey: '  \n' } })).toHaveLength(1);
  });

  it('refuses key authentication with both a pasted key and a key file', () => {
    const auth = { method: 'key', privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----', keyPath: '/home/me/.ssh/id' };
    const messages = problems(SshHostInput, { ...validHost, auth });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/one of the two/);
  });

  it('accepts key authentication with either a pasted key or a key file', () => {
    expect(problems(SshHostInput, { ...validHost, auth: { method: 'key', keyPath: '~/.ssh/id' } })).toEqual([]);
    const pasted = { method: 'key', privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----', passphrase: 'p' };
    expect(problems(SshHostInput, { ...validHost, auth: pasted })).toEqual([]);
  });

  it('refuses fields it does not know', () => {
    expect(problems(SshHostInput, { ...validHost, password: 'hunter2' })).not.toEqual([]);
  });
});

describe('invoke inputs', () => {
  const trust = ipcContract['hosts:trust-key'].input;
  const fingerprint = `SHA256:${'A'.repeat(42)}8`;

  it('hosts:trust-key accepts a SHA256 fingerprint and does not replace a pinned key unless asked', () => {
    expect(trust.parse({ id: 'prod', fingerprint })).toEqual({ id: 'prod', fingerprint, replace: false });
  });

  it('hosts:trust-key refuses anything but SHA256: and 43 base64 characters', () => {
    const message = 'fingerprint: must be a SHA256 fingerprint';
    expect(problems(trust, { id: 'prod', fingerprint: fingerprint.slice(0, -1) })).toEqual([message]);
    expect(problems(trust, { id: 'prod', fingerprint: `${fingerprint}A` })).toEqual([message]);
    expect(problems(trust, { id: 'prod', fingerprint: fingerprint.replace('SHA256:', 'MD5:') })).toEqual([message]);
    expect(problems(trust, { id: 'prod', fingerprint: `SHA256:${'A'.repeat(42)}=` })).toEqual([message]);
    expect(problems(trust, { id: 'prod', fingerprint: `SHA256:${'-'.repeat(43)}` })).toEqual([message]);
  });

  it('secrets:unlock refuses a passphrase shorter than 8 characters', () => {
    const unlock = ipcContract['secrets:unlock'].input;
    expect(problems(unlock, { passphrase: '1234567' })).toEqual(['passphrase: use at least 8 characters']);
    expect(problems(unlock, { passphrase: '12345678' })).toEqual([]);
  });
});
