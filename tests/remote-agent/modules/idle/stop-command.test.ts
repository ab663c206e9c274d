/** The stop command as the agent runs it: real programs, a fixed argv, no shell, a minimal environment. */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../../remote-agent/src/config.js';
import {
  defaultStopCommand,
  displayCommand,
  explainStopFailure,
  runStopCommand,
  STOP_OUTPUT_CHARS,
} from '../../../../remote-agent/src/modules/idle/stop-command.js';

let dir: string;

function script(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-idle-stop-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('runStopCommand', () => {
  it('runs the argv as given and reports exit code 0 with what it printed', async () => {
    const log = join(dir, 'ran.log');
    const stop = script('stop.sh', 'echo "stopping $1" >> "$2"; echo "system going down"');
    const outcome = await runStopCommand([stop, 'now', log]);
    expect(outcome).toEqual({ exitCode: 0, output: 'system going down' });
    expect(readFileSync(log, 'utf8')).toBe('stopping now\n');
  });

  it('never interprets an argument: quotes, $(…) and ; reach the program as plain text', async () => {
    const marker = join(dir, 'injected');
    const echo = script('args.sh', 'for a in "$@"; do printf "[%s]\\n" "$a"; done');
    const outcome = await runStopCommand([echo, `$(touch ${marker})`, `; touch ${marker}`, "it's"]);
    expect(outcome.output).toBe(`[$(touch ${marker})]\n[; touch ${marker}]\n[it's]`);
    expect(existsSync(marker)).toBe(false);
  });

  it('reports a failure with its exit code and the end of stderr', async () => {
    const failing = script('fail.sh', 'echo "sudo: a password is required" >&2; exit 1');
    expect(await runStopCommand([failing])).toEqual({ exitCode: 1, output: 'sudo: a password is required' });
  });

  it('reports a program that does not exist instead of throwing', async () => {
    const outcome = await runStopCommand([join(dir, 'no-such-program')]);
    expect(outcome.exitCode).toBeNull();
    expect(outcome.output).toMatch(/Could not run .*no-such-program: .*ENOENT/);
  });

  it('kills a command that never ends and says so', async () => {
    const hanging = script('hang.sh', 'echo "waiting for a password"; exec sleep 60');
    const outcome = await runStopCommand([hanging], 300);
    expect(outcome.exitCode).toBeNull();
    expect(outcome.output).toContain('waiting for a password');
    expect(outcome.output).toContain('did not end within');
  });

  it('keeps only the end of a long output', async () => {
    const chatty = script('chatty.sh', 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; echo LAST');
    const outcome = await runStopCommand([chatty]);
    expect(outcome.output.length).toBeLessThanOrEqual(STOP_OUTPUT_CHARS);
    expect(outcome.output.endsWith('LAST')).toBe(true);
    expect(outcome.output).not.toContain('line 0\n');
  });

  it('gives the command no secret of the agent: its environment is PATH, HOME and LANG only', async () => {
    const secret = 'sk-ant-api03-agent-secret-in-env-0000000000';
    process.env.SLOTDECK_AGENT_UPSTREAM_KEY = secret;
    process.env.SOME_TOKEN = 'tok-abcdef-0123456789';
    try {
      const printEnv = script('env.sh', 'env | sort');
      const outcome = await runStopCommand([printEnv]);
      const names = outcome.output.split('\n').map((line) => line.split('=')[0]);
      expect(names.filter((name) => !['PATH', 'HOME', 'LANG', 'PWD', 'SHLVL', '_'].includes(name!))).toEqual([]);
      expect(outcome.output).not.toContain(secret);
      expect(outcome.output).not.toContain('tok-abcdef');
    } finally {
      delete process.env.SLOTDECK_AGENT_UPSTREAM_KEY;
      delete process.env.SOME_TOKEN;
    }
  });

  it('redacts secrets the command prints before they are stored', async () => {
    const leaky = script(
      'leaky.sh',
      [
        'echo "using key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"',
        'echo "admin sdk_admin_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"',
        'echo "user key sk_user_AbCdEfGhIjKlMnOpQrStUv123456"',
        'echo "Authorization: Bearer abc.def.ghi"',
        'echo "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        'echo "password=hunter2 and exit"',
      ].join('\n'),
    );
    const { output } = await runStopCommand([leaky]);
    for (const secret of [
      'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
      'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA',
      'AbCdEfGhIjKlMnOpQrStUv123456',
      'abc.def.ghi',
      'wJalrXUtnFEMI',
      'hunter2',
    ]) {
      expect(output).not.toContain(secret);
    }
    // Enough is left to tell which key it was.
    expect(output).toContain('sk-ant-api');
    expect(output).toContain('sk_user_AbC');
  });
});

describe('the stop command shown and the default', () => {
  it('shows the argv as an admin would type it, quoting what a shell would split', () => {
    expect(displayCommand(['/usr/bin/sudo', '-n', 'shutdown', '-h', 'now'])).toBe('/usr/bin/sudo -n shutdown -h now');
    expect(displayCommand(['/opt/stop me.sh', "it's"])).toBe(`'/opt/stop me.sh' 'it'\\''s'`);
  });

  it('is the helper poweroff verb on an isolated host, else sudo shutdown', () => {
    const layout = {
      helper: '/usr/local/libexec/slotdeck/slotdeck-helper',
      sudo: '/usr/bin/sudo',
      homes: '/h',
      run: '/r',
      nproc: 1,
    };
    expect(defaultStopCommand(layout)).toEqual([
      '/usr/bin/sudo',
      '-n',
      '/usr/local/libexec/slotdeck/slotdeck-helper',
      'poweroff',
    ]);
    expect(defaultStopCommand(null).slice(-4)).toEqual(['-n', 'shutdown', '-h', 'now']);
    expect(defaultStopCommand(null)[0]).toMatch(/(^|\/)sudo$/);
  });

  it('reads idle.stopCommand from SLOTDECK_AGENT_IDLE_STOP_COMMAND as a JSON array, and refuses anything else', () => {
    const base = { SLOTDECK_AGENT_DATA_DIR: dir };
    expect(loadConfig({ env: base }).idle).toEqual({ stopCommand: null, tickMs: 10_000 });
    const config = loadConfig({
      env: { ...base, SLOTDECK_AGENT_IDLE_STOP_COMMAND: '["/bin/stop", "--now"]', SLOTDECK_AGENT_IDLE_TICK_MS: '200' },
    });
    expect(config.idle).toEqual({ stopCommand: ['/bin/stop', '--now'], tickMs: 200 });
    const refusals: Array<[string, string]> = [
      ['sudo shutdown -h now', 'JSON array'],
      ['{"cmd": "x"}', 'JSON array'],
      ['[]', 'must name a program'],
      ['[""]', 'must not be empty'],
      ['[1, 2]', 'idle.stopCommand.0'],
    ];
    for (const [bad, says] of refusals) {
      let error: unknown;
      try {
        loadConfig({ env: { ...base, SLOTDECK_AGENT_IDLE_STOP_COMMAND: bad } });
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message, bad).toContain('idle.stopCommand');
      expect((error as ConfigError).message, bad).toContain(says);
    }
  });
});

describe('a stop that cannot work says so in lastStop', () => {
  it('explains a real sudo that wants a password (a single-user host without passwordless sudo)', async () => {
    // `nobody` stands for an account without sudo rights; `true` instead of shutdown, should it ever be allowed.
    const argv = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', 'sudo', '-n', 'true'];
    const outcome = explainStopFailure(await runStopCommand(argv), 'sudo -n shutdown -h now');
    expect(outcome.exitCode).not.toBe(0);
    expect(outcome.output).toMatch(/password is required/);
    expect(outcome.output).toContain('cannot run "sudo -n shutdown -h now" without a password');
    expect(outcome.output).toContain('idle.stopCommand');
  });

  it('leaves a success and an unknown failure as they were', () => {
    expect(explainStopFailure({ exitCode: 0, output: 'bye' }, 'x')).toEqual({ exitCode: 0, output: 'bye' });
    expect(explainStopFailure({ exitCode: 3, output: 'disk on fire' }, 'x')).toEqual({
      exitCode: 3,
      output: 'disk on fire',
    });
  });
});
