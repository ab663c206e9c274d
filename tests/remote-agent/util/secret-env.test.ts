import { afterEach, describe, expect, it } from 'vitest';
import { SECRET_ENV_PATTERN, scrubSecretEnv } from '../../../remote-agent/src/util/secret-env.js';

describe('scrubSecretEnv', () => {
  afterEach(() => {
    delete process.env.SLOTDECK_TEST_API_KEY;
  });

  it('removes every secret-looking variable from an environment children will inherit, and keeps the rest', () => {
    const env: NodeJS.ProcessEnv = {
      PATH: '/usr/bin',
      HOME: '/home/a',
      SSH_AUTH_SOCK: '/tmp/agent.sock',
      SLOTDECK_MASTER_KEY: 'vault',
      SLOTDECK_AGENT_UPSTREAM_KEY: 'sk-ant-x',
      ANTHROPIC_API_KEY: 'sk-ant-y',
      GITHUB_TOKEN: 'ghp_z',
      AWS_SECRET_ACCESS_KEY: 'aws',
      AWS_SESSION_TOKEN: 'aws-session',
      DB_PASSWORD: 'pw',
      SLOTDECK_AGENT_ADMIN_PORT: '7420',
    };
    scrubSecretEnv(env);
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/a',
      SSH_AUTH_SOCK: '/tmp/agent.sock',
      SLOTDECK_AGENT_ADMIN_PORT: '7420',
    });
  });

  it('treats KEYBOARD-like names as harmless (only whole words count)', () => {
    expect(SECRET_ENV_PATTERN.test('XKB_KEYBOARD')).toBe(false);
    expect(SECRET_ENV_PATTERN.test('MONKEY')).toBe(false);
    expect(SECRET_ENV_PATTERN.test('OPENAI_API_KEY')).toBe(true);
  });
});
