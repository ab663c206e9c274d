import { describe, expect, it } from 'vitest';
import { cleanAgentEnv } from '../../../remote-agent/src/release/agent-process.js';
import { bootUnit } from '../../../remote-agent/src/release/boot-unit.js';

describe('the environment the agent gets under PM2', () => {
  it('keeps the basics and the agent settings, not secrets or the SSH session', () => {
    const env = cleanAgentEnv({
      PATH: '/usr/bin',
      HOME: '/home/slotdeck',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      SLOTDECK_AGENT_ADMIN_PORT: '7420',
      SLOTDECK_ROOT: '/home/slotdeck/.slotdeck-agent',
      SLOTDECK_AGENT_UPSTREAM_KEY: 'sk-ant-upstream',
      SLOTDECK_MASTER_KEY: 'master',
      ANTHROPIC_API_KEY: 'sk-ant-x',
      AWS_SECRET_ACCESS_KEY: 'aws',
      SSH_AUTH_SOCK: '/tmp/ssh-agent',
      SSH_CONNECTION: '10.0.0.1 22 10.0.0.2 22',
      npm_config_better_sqlite3_local_prebuilds: '/tmp/prebuilds',
    });
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/slotdeck',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      SLOTDECK_AGENT_ADMIN_PORT: '7420',
      SLOTDECK_ROOT: '/home/slotdeck/.slotdeck-agent',
    });
  });
});

describe('the boot unit', () => {
  it('resurrects the account PM2 at boot through the wrapper, with the agent settings and no secret', () => {
    const unit = bootUnit({
      account: 'slotdeck',
      wrapper: '/var/lib/slotdeck/.slotdeck-agent/bin/slotdeck-agent',
      env: { SLOTDECK_AGENT_ADMIN_PORT: '7500', SLOTDECK_AGENT_UPSTREAM_KEY: 'sk-ant-upstream' },
    });
    expect(unit).toContain('User=slotdeck\n');
    expect(unit).toContain('Type=oneshot\nRemainAfterExit=yes\n');
    expect(unit).toContain('ExecStart="/var/lib/slotdeck/.slotdeck-agent/bin/slotdeck-agent" release resurrect\n');
    expect(unit).toContain('Environment="SLOTDECK_AGENT_ADMIN_PORT=7500"\n');
    expect(unit).not.toContain('sk-ant-upstream');
    expect(unit).toContain('WantedBy=multi-user.target');
  });
});

describe('the boot unit quotes what systemd would expand', () => {
  it('doubles % (specifiers), escapes quotes and backslashes in Environment=, and $ in ExecStart=', () => {
    const unit = bootUnit({
      account: 'slotdeck',
      wrapper: '/srv/a b/$HOME%h/bin/slotdeck-agent',
      env: { SLOTDECK_AGENT_GATEWAY_HOST: '100%"\\x' },
    });
    expect(unit).toContain('Environment="SLOTDECK_AGENT_GATEWAY_HOST=100%%\\"\\\\x"\n');
    expect(unit).toContain('ExecStart="/srv/a b/$$HOME%%h/bin/slotdeck-agent" release resurrect\n');
  });

  it('refuses a value with a newline (it would start a new directive) and an account that is not a name', () => {
    expect(() =>
      bootUnit({ account: 'slotdeck', wrapper: '/x', env: { SLOTDECK_AGENT_X: 'a\nExecStartPre=/bin/sh' } }),
    ).toThrow(/newline/);
    expect(() => bootUnit({ account: 'root\nUser=root', wrapper: '/x' })).toThrow(/account name/);
  });
});
