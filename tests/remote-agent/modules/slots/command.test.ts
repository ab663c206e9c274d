import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SlotCommand } from '../../../../remote-agent/src/contract/index.js';
import { loginShell, missingProgramMessage, resolveArgv } from '../../../../remote-agent/src/modules/slots/command.js';

const COMMAND_MODULE = resolve(import.meta.dirname, '../../../../remote-agent/src/modules/slots/command.ts');

describe('resolveArgv', () => {
  it('runs the shell preset as a login shell, the given one or the agent user’s', () => {
    expect(resolveArgv({ preset: 'shell' }, '/bin/zsh')).toEqual(['/bin/zsh', '-l']);
    expect(resolveArgv({ preset: 'shell', shell: '/bin/dash' }, '/bin/zsh')).toEqual(['/bin/dash', '-l']);
    expect(resolveArgv({ preset: 'shell' })).toEqual([loginShell(), '-l']);
  });

  it('runs claudebox with its arguments', () => {
    expect(resolveArgv({ preset: 'claudebox' })).toEqual(['claudebox']);
    expect(resolveArgv({ preset: 'claudebox', args: ['--profile', 'dev'] })).toEqual(['claudebox', '--profile', 'dev']);
  });

  it('builds docker exec -it <container> with bash unless another shell is named', () => {
    expect(resolveArgv({ preset: 'docker-exec', container: 'web-1' })).toEqual([
      'docker',
      'exec',
      '-it',
      'web-1',
      'bash',
    ]);
    expect(resolveArgv({ preset: 'docker-exec', container: 'db', shell: 'sh' })).toEqual([
      'docker',
      'exec',
      '-it',
      'db',
      'sh',
    ]);
  });

  it('keeps a custom command and its arguments exactly as given, spaces and quotes included', () => {
    const command: SlotCommand = { preset: 'custom', command: 'python3', args: ['-c', 'print("a b")', "it's", ''] };
    expect(resolveArgv(command)).toEqual(['python3', '-c', 'print("a b")', "it's", '']);
    expect(resolveArgv({ preset: 'custom', command: '/opt/tool' })).toEqual(['/opt/tool']);
  });
});

describe('missingProgramMessage', () => {
  it('says what to install for each preset', () => {
    expect(missingProgramMessage({ preset: 'claudebox' }, 'claudebox')).toMatch(/Install ClaudeBox on the host/);
    expect(missingProgramMessage({ preset: 'docker-exec', container: 'web' }, 'docker')).toMatch(/Install Docker/);
    const shell = missingProgramMessage({ preset: 'shell', shell: '/bin/fish' }, '/bin/fish');
    expect(shell).toContain('/bin/fish');
    expect(shell).toContain('such as /bin/bash');
    const custom = missingProgramMessage({ preset: 'custom', command: 'mytool' }, 'mytool');
    expect(custom).toContain('"mytool"');
    expect(custom).toContain('Use an absolute path, install it, or set PATH');
  });
});

describe('loginShell', () => {
  it("uses the agent user's login shell from the password database rather than $SHELL", () => {
    const shell = userInfo().shell;
    expect(shell).toBeTruthy();
    expect(loginShell({ SHELL: '/bin/some-other-shell' })).toBe(shell);
  });

  it('falls back to /bin/bash for a service account whose shell is nologin', () => {
    // Runs as nobody (shell /usr/sbin/nologin), as an agent under a service account would; needs root to switch.
    expect(process.getuid?.(), 'this test switches to the user nobody, which takes root').toBe(0);
    const script = `import(${JSON.stringify(COMMAND_MODULE)}).then((m) => {
      process.stdout.write(JSON.stringify({ passwd: require('node:os').userInfo().shell, shell: m.loginShell({}) }));
    });`;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: resolve(import.meta.dirname, '../../../..'),
      uid: 65534,
      gid: 65534,
      env: { PATH: process.env.PATH, HOME: '/nonexistent', SHELL: '/usr/sbin/nologin' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(JSON.parse(output)).toEqual({ passwd: '/usr/sbin/nologin', shell: '/bin/bash' });
  });
});
