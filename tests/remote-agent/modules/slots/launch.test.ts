import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  builtinProcessSpec,
  envFileContents,
  readSmallFile,
  slotEnvironment,
  writeEnvFile,
} from '../../../../remote-agent/src/modules/slots/launch.js';
import { HOLDER_PATH, LAUNCHER_PATH, SlotPaths } from '../../../../remote-agent/src/modules/slots/paths.js';
import type { SlotRow } from '../../../../remote-agent/src/modules/slots/repository.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-launch-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const paths = new SlotPaths('/var/lib/slotdeck-agent', '/run/sd');

function slot(overrides: Partial<SlotRow> = {}): SlotRow {
  return {
    id: 'abcdefghij',
    name: 'dev',
    command: { preset: 'shell' },
    argv: ['/bin/bash', '-l'],
    env: {},
    workDir: '/srv/project',
    workDirManaged: false,
    homeDir: '/var/lib/slotdeck-agent/slots/abcdefghij/home',
    memoryLimitMb: null,
    terminal: 'builtin',
    desiredState: 'running',
    failedReason: null,
    failedAt: null,
    cols: 120,
    rows: 32,
    restarts: 0,
    supervisorRestartsSeen: 0,
    lastActivityAt: null,
    ownerId: null,
    meteredKeyId: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

/** The environment a program started by /bin/sh after sourcing `file` sees, as the launcher does it. */
function sourcedEnvironment(file: string): Record<string, string> {
  const output = execFileSync(
    '/bin/sh',
    ['-c', '. "$1"; exec "$2" -e "process.stdout.write(JSON.stringify(process.env))"', 'sh', file, process.execPath],
    { env: { PATH: '/usr/bin:/bin', HOME: '/root-of-agent' }, encoding: 'utf8' },
  );
  return JSON.parse(output) as Record<string, string>;
}

describe('envFileContents', () => {
  it('gives the program every value literally when the launcher sources it with /bin/sh', () => {
    const env = {
      QUOTE: "it's a 'quoted' value",
      ONLY_QUOTE: "'",
      NEWLINES: 'line one\nline two\n\nline four\n',
      DOLLAR: '$HOME ${PATH} $(id -u) $1 $$',
      BACKTICKS: '`id` and `rm -rf /nonexistent`',
      BACKSLASHES: 'C:\\path\\to \\n \\\\ \\',
      DOUBLE_QUOTES: 'say "hi"; echo done',
      SPACES: '  leading and trailing  ',
      EMPTY: '',
      UNICODE: 'héllo ✓ 🙂',
      GLOB: '* ? [a-z] ~',
    };
    const file = join(dir, 'env.sh');
    writeEnvFile(file, env);
    const seen = sourcedEnvironment(file);
    for (const [key, value] of Object.entries(env)) expect(seen[key], key).toBe(value);
  });

  it('writes one export line per variable', () => {
    expect(envFileContents({ A: 'x', B: "y'z" })).toBe("export A='x'\nexport B='y'\\''z'\n");
    expect(envFileContents({})).toBe('');
  });
});

describe('writeEnvFile', () => {
  it('leaves only the finished file, private to the agent user, replacing an older one', () => {
    const file = join(dir, 'env.sh');
    writeEnvFile(file, { SECRET: 'old' });
    writeEnvFile(file, { SECRET: 'new' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['env.sh']);
    expect(sourcedEnvironment(file).SECRET).toBe('new');
  });
});

describe('slotEnvironment', () => {
  it('gives the slot its own HOME, Claude config dir, terminal type and identity', () => {
    const env = slotEnvironment(slot(), paths, '/bin/zsh', { PATH: '/usr/bin:/bin', LANG: 'en_US.UTF-8' });
    expect(env.HOME).toBe('/var/lib/slotdeck-agent/slots/abcdefghij/home');
    expect(env.CLAUDE_CONFIG_DIR).toBe('/var/lib/slotdeck-agent/slots/abcdefghij/home/.claude');
    expect(env.TERM).toBe('xterm-256color');
    expect(env.COLORTERM).toBe('truecolor');
    expect(env.SLOTDECK_SLOT_ID).toBe('abcdefghij');
    expect(env.SLOTDECK_SLOT_NAME).toBe('dev');
    expect(env.SLOTDECK_COLS).toBe('120');
    expect(env.SLOTDECK_ROWS).toBe('32');
    expect(env.SHELL).toBe('/bin/zsh');
    expect(env.PATH).toBe('/usr/bin:/bin');
    expect(env.LANG).toBe('en_US.UTF-8');
    expect(env.USER).toBeTruthy();
    expect(env.LOGNAME).toBe(env.USER);
  });

  it("passes none of the agent's other variables (its secrets, PM2's settings) to the slot", () => {
    const env = slotEnvironment(slot(), paths, '/bin/sh', {
      PATH: '/usr/bin',
      HOME: '/root',
      ANTHROPIC_API_KEY: 'sk-agent-secret',
      PM2_HOME: '/var/lib/slotdeck-agent/pm2',
      TZ: 'Europe/Berlin',
    });
    expect(env.ANTHROPIC_API_KEY).toBeUndefined();
    expect(env.PM2_HOME).toBeUndefined();
    expect(env.HOME).not.toBe('/root');
    expect(env.TZ).toBe('Europe/Berlin');
  });

  it('falls back to a standard PATH and a UTF-8 locale when the agent has none', () => {
    const env = slotEnvironment(slot(), paths, '/bin/sh', { PATH: '' });
    expect(env.PATH?.split(':')).toEqual(expect.arrayContaining(['/usr/local/bin', '/usr/bin', '/bin']));
    expect(env.LANG).toBe('C.UTF-8');
    expect(env.TZ).toBeUndefined();
  });

  it("lets the slot's env set PATH, TERM and its own variables, but never HOME or the slot's identity", () => {
    const env = slotEnvironment(
      slot({
        env: {
          PATH: '/opt/tools/bin:/usr/bin',
          TERM: 'screen-256color',
          API_KEY: 'slot-secret',
          HOME: '/tmp/elsewhere',
          CLAUDE_CONFIG_DIR: '/tmp/claude',
          SLOTDECK_SLOT_ID: 'zzzzzzzzzz',
        },
      }),
      paths,
      '/bin/sh',
      { PATH: '/usr/bin:/bin' },
    );
    expect(env.PATH).toBe('/opt/tools/bin:/usr/bin');
    expect(env.TERM).toBe('screen-256color');
    expect(env.API_KEY).toBe('slot-secret');
    expect(env.HOME).toBe('/var/lib/slotdeck-agent/slots/abcdefghij/home');
    expect(env.CLAUDE_CONFIG_DIR).toBe('/var/lib/slotdeck-agent/slots/abcdefghij/home/.claude');
    expect(env.SLOTDECK_SLOT_ID).toBe('abcdefghij');
  });
});

describe('builtinProcessSpec', () => {
  it("has PM2 run the holder script with dtach, the slot's socket, the launcher and the program", () => {
    const spec = builtinProcessSpec(slot({ argv: ['claude', '--resume'] }), paths, '/usr/bin/dtach');
    expect(spec.name).toBe('slot-abcdefghij');
    expect(spec.script).toBe('/bin/sh');
    expect(spec.args).toEqual([
      HOLDER_PATH,
      '/usr/bin/dtach',
      '/run/sd/abcdefghij.sock',
      LAUNCHER_PATH,
      '/var/lib/slotdeck-agent/slots/abcdefghij/env.sh',
      '/var/lib/slotdeck-agent/slots/abcdefghij/last-exit',
    ]);
    expect(spec.cwd).toBe('/srv/project');
    expect(spec.outFile).toBe('/var/lib/slotdeck-agent/logs/slot-abcdefghij.out.log');
    expect(existsSync(HOLDER_PATH)).toBe(true);
    expect(existsSync(LAUNCHER_PATH)).toBe(true);
  });

  it('on an isolated host has PM2 run only the helper, with the account, the slot id and the limits', () => {
    const isolated = new SlotPaths('/var/lib/slotdeck-agent', '/run/sd', {
      helper: '/usr/local/libexec/slotdeck/slotdeck-helper',
      sudo: '/usr/bin/sudo',
      homes: '/home/slotdeck-slots',
      run: '/run/slotdeck-slots',
      nproc: 256,
    });
    const row = slot({ argv: ['claude', '--resume; rm -rf /'], ownerId: 'u_0123456789', memoryLimitMb: 2048 });
    const spec = builtinProcessSpec(row, isolated, '/usr/bin/dtach');
    expect(spec.script).toBe('/usr/bin/sudo');
    expect(spec.args).toEqual([
      '-n',
      '/usr/local/libexec/slotdeck/slotdeck-helper',
      'run',
      'sdu-0123456789',
      'abcdefghij',
      '256',
      '2048',
    ]);
    // The agent's own folders are not the account's: the launcher changes to the work dir itself.
    expect(spec.cwd).toBe('/');
    // dtach binds in s/ (the account's); the agent connects where it moved it (its own folder).
    expect(isolated.incomingSocket(row.id)).toBe('/run/slotdeck-slots/sds-abcdefghij/s/abcdefghij.sock');
    expect(isolated.socket(row.id)).toBe('/run/slotdeck-slots/sds-abcdefghij/abcdefghij.sock');
    expect(isolated.homeDir(row.id, row.ownerId)).toBe('/home/slotdeck-slots/sdu-0123456789/abcdefghij/home');
  });
});

describe('launchFileContents', () => {
  it('quotes the program and its arguments so that the launcher runs them literally', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-launch-'));
    try {
      const file = join(dir, 'env');
      writeEnvFile(
        file,
        { A: "it's" },
        { workDir: dir, argv: ['printf', '%s|', 'a b', "c'd", '$(id)'], isolated: false },
      );
      const out = execFileSync('sh', ['-c', '. "$0"; printf "%s/" "$A" "$slot_work_dir"; "$@"', file], {
        encoding: 'utf8',
      });
      expect(out).toBe(`it's/${dir}/a b|c'd|$(id)|`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to write through a link planted in place of its temporary file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-launch-'));
    try {
      const target = join(dir, 'secret');
      writeFileSync(target, 'precious');
      symlinkSync(target, join(dir, 'env.tmp'));
      writeEnvFile(join(dir, 'env'), { A: 'x' });
      expect(readFileSync(target, 'utf8')).toBe('precious');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('readSmallFile', () => {
  it('reads a file, and neither follows a link nor blocks on a FIFO', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-launch-'));
    try {
      writeFileSync(join(dir, 'exit'), '0 1\n');
      expect(readSmallFile(join(dir, 'exit'))).toBe('0 1\n');
      symlinkSync(join(dir, 'exit'), join(dir, 'link'));
      expect(readSmallFile(join(dir, 'link'))).toBeNull();
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      expect(readSmallFile(join(dir, 'fifo'))).toBeNull();
      // A file grown without bound is read from its tail only.
      writeFileSync(join(dir, 'big'), `${'x'.repeat(1 << 20)}\n7 1\n`);
      expect(readSmallFile(join(dir, 'big'), 16)).toBe('xxxxxxxxxxx\n7 1\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
