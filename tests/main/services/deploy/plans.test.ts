import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accountFromCommand,
  agentCommandFor,
  asAgent,
  asRoot,
  checkHostEnv,
  planFor,
  refuseDowngrade,
  releaseRoot,
  shq,
} from '../../../../src/main/services/deploy/plans';

/** What a POSIX shell makes of a command line: each word on a line of its own. */
function words(line: string): string[] {
  return execFileSync('sh', ['-c', `for word in ${line}; do printf '%s\\n' "$word"; done`], { encoding: 'utf8' })
    .split('\n')
    .slice(0, -1);
}

describe('the host-side command lines', () => {
  it('quotes any word so that the remote shell sees exactly it (no expansion, no splitting)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 40 }).filter((w) => !w.includes('\0')),
        (word) => {
          expect(words(shq(word))).toEqual([word]);
        },
      ),
      { numRuns: 200 },
    );
    expect(words(shq("it's $(rm -rf ~) `x` *"))).toEqual(["it's $(rm -rf ~) `x` *"]);
  });

  it('runs as the login user in single-user mode and through sudo -u as the agent account in isolated mode', () => {
    const env = { npm_config_cache: '/tmp/npm cache' };
    expect(asAgent({ account: null, env: {} }, ['sh', '/tmp/x/host.sh', 'detect'])).toBe('sh /tmp/x/host.sh detect');
    expect(asAgent({ account: 'slotdeck', env }, ['sh', 'host.sh', 'unpack'])).toBe(
      "cd / && sudo -n -u slotdeck -H env 'npm_config_cache=/tmp/npm cache' sh host.sh unpack",
    );
    expect(asRoot({}, ['sh', 'host.sh', 'ensure-account', 'slotdeck'])).toBe(
      'sudo -n sh host.sh ensure-account slotdeck',
    );
  });

  it('names the agent command the host profile keeps, for each mode', () => {
    const root = releaseRoot('/home/ec2-user/');
    expect(root).toBe('/home/ec2-user/.slotdeck-agent');
    expect(agentCommandFor(root, null)).toBe('/home/ec2-user/.slotdeck-agent/bin/slotdeck-agent');
    expect(agentCommandFor('/home/slotdeck/.slotdeck-agent', 'slotdeck')).toBe(
      'sudo -n -u slotdeck /home/slotdeck/.slotdeck-agent/bin/slotdeck-agent',
    );
  });

  it('plans the steps each action shows, setting up slot accounts only where slots are isolated', () => {
    const ids = (action: Parameters<typeof planFor>[0], mode?: Parameters<typeof planFor>[1]) =>
      planFor(action, mode).map((step) => step.id);
    expect(ids('deploy')).toEqual([
      'connect',
      'detect',
      'mode',
      'node',
      'dtach',
      'upload',
      'unpack',
      'setup-host',
      'activate',
      'boot',
      'reconnect',
    ]);
    expect(ids('deploy', 'single-user')).not.toContain('setup-host');
    expect(ids('upgrade')).toEqual(['connect', 'detect', 'upload', 'unpack', 'setup-host', 'activate', 'reconnect']);
    expect(ids('rollback')).toEqual(['connect', 'detect', 'rollback', 'reconnect']);
    expect(ids('uninstall')).toEqual(['connect', 'detect', 'uninstall', 'disconnect']);
  });

  it('quotes the release root and the account in the agent command, whatever the path holds', () => {
    const path = fc
      .array(
        fc.oneof(fc.constantFrom(' ', '$', '$(id)', '`x`', "'", '"', '*', ';', '\\'), fc.string({ maxLength: 6 })),
        {
          maxLength: 8,
        },
      )
      .map((parts) => `/home/${parts.join('')}`.replace(/\0/g, ''));
    fc.assert(
      fc.property(path, (home) => {
        const root = releaseRoot(home);
        expect(words(agentCommandFor(root, null))).toEqual([`${root}/bin/slotdeck-agent`]);
        expect(words(agentCommandFor(root, 'slotdeck'))).toEqual([
          'sudo',
          '-n',
          '-u',
          'slotdeck',
          `${root}/bin/slotdeck-agent`,
        ]);
      }),
      { numRuns: 200 },
    );
    const spaced = agentCommandFor('/home/a b/$HOME/.slotdeck-agent', 'slot-deck');
    expect(words(spaced)).toEqual([
      'sudo',
      '-n',
      '-u',
      'slot-deck',
      '/home/a b/$HOME/.slotdeck-agent/bin/slotdeck-agent',
    ]);
    expect(accountFromCommand(spaced)).toBe('slot-deck');
  });

  it('refuses host environment names that look like secrets (they would be on the host command lines)', () => {
    expect(() =>
      checkHostEnv({ npm_config_cache: '/tmp/npm', npm_config_registry: 'http://127.0.0.1:1' }),
    ).not.toThrow();
    for (const name of [
      'NPM_TOKEN',
      'npm_config__auth',
      'DB_PASSWORD',
      'aws_secret_access_key',
      'API_KEY',
      'MyCredentials',
    ]) {
      expect(() => checkHostEnv({ [name]: 'x' })).toThrow(expect.objectContaining({ code: 'DEPLOY_FAILED' }));
      expect(() => checkHostEnv({ [name]: 'x' })).toThrow(new RegExp(`${name}, which looks like a secret`));
    }
    expect(() => checkHostEnv({ 'A B': 'x' })).toThrow(/not a variable name/);
  });

  it('refuses to upgrade a host to an older agent than it runs, pointing at Rollback', () => {
    expect(() => refuseDowngrade('1.3.0', '1.2.9', 'web-1')).toThrow(/newer than the 1\.2\.9.*Rollback/);
    expect(() => refuseDowngrade('1.3.0', '1.2.9', 'web-1')).toThrow(
      expect.objectContaining({ code: 'DEPLOY_DOWNGRADE' }) as Error,
    );
    expect(() => refuseDowngrade('1.2.0-rc.10', '1.2.0-rc.9', 'web-1')).toThrow(
      expect.objectContaining({ code: 'DEPLOY_DOWNGRADE' }),
    );
    expect(() => refuseDowngrade('1.2.0-rc.9', '1.2.0-rc.10', 'web-1')).not.toThrow();
    expect(() => refuseDowngrade('1.2.0', '1.2.0', 'web-1')).not.toThrow();
    expect(() => refuseDowngrade(null, '1.0.0', 'web-1')).not.toThrow();
  });
});
