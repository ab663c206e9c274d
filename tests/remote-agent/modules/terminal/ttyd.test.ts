import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../../remote-agent/src/logger.js';
import { LAUNCHER_PATH, SlotPaths } from '../../../../remote-agent/src/modules/slots/paths.js';
import type { SlotRow } from '../../../../remote-agent/src/modules/slots/repository.js';
import { TicketStore } from '../../../../remote-agent/src/modules/terminal/tickets.js';
import { buildTtydCommand, tmuxConfig, TtydBridge } from '../../../../remote-agent/src/modules/terminal/ttyd.js';

const SLOT_ID = 'abcdefghij';
const paths = new SlotPaths('/var/lib/slotdeck-agent', '/run/sd');
const row = { id: SLOT_ID, argv: ['claude', '--model', 'opus 4'], workDir: '/srv/project' };

function command(secret = 'pa55word'): { script: string; args: string[] } {
  return buildTtydCommand({
    ttyd: '/usr/local/bin/ttyd',
    tmux: '/usr/bin/tmux',
    row,
    paths,
    launcher: LAUNCHER_PATH,
    secret,
  });
}

/** The value following `flag` in `args`. */
function option(args: string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index < 0 ? undefined : args[index + 1];
}

describe('buildTtydCommand (the argv only: no ttyd, real or stand-in, runs here)', () => {
  it("binds ttyd to a unix socket in the agent's run dir, never to a TCP port", () => {
    const { script, args } = command();
    expect(script).toBe('/usr/local/bin/ttyd');
    const ttydArgs = args.slice(0, args.indexOf('--'));
    const socket = option(ttydArgs, '--interface');
    expect(socket).toBe(paths.ttydSocket(SLOT_ID));
    expect(socket?.startsWith('/run/sd/')).toBe(true);
    // ttyd listens on a unix socket when the interface ends in .sock.
    expect(socket).toMatch(/\.sock$/);
    for (const flag of ['-p', '--port', '-i', '--ipv6']) expect(ttydArgs).not.toContain(flag);
    expect(ttydArgs.join(' ')).not.toMatch(/0\.0\.0\.0|127\.0\.0\.1|::/);
  });

  it('makes the terminal writable and guards it with the slot credential', () => {
    const { args } = command('s3cr3t-value');
    const ttydArgs = args.slice(0, args.indexOf('--'));
    expect(ttydArgs).toContain('--writable');
    expect(option(ttydArgs, '--credential')).toBe('slotdeck:s3cr3t-value');
    expect(option(ttydArgs, '--terminal-type')).toBe('xterm-256color');
  });

  it("runs the slot's program through the launcher inside one shared tmux session", () => {
    const { args } = command();
    expect(args.slice(args.indexOf('--') + 1)).toEqual([
      '/usr/bin/tmux',
      '-S',
      paths.tmuxSocket(SLOT_ID),
      '-f',
      paths.tmuxConfig(SLOT_ID),
      'new-session',
      '-A',
      '-s',
      'main',
      '-c',
      '/srv/project',
      '/bin/sh',
      LAUNCHER_PATH,
      paths.envFile(SLOT_ID),
      paths.exitFile(SLOT_ID),
    ]);
  });
});

describe('tmuxConfig (checked by the real tmux)', () => {
  it('sets the history limit to the scrollback and hides the status bar', () => {
    const lines = tmuxConfig(5000).split('\n');
    expect(lines).toContain('set -g history-limit 5000');
    expect(lines).toContain('set -g status off');
    expect(lines).toContain('set -g default-terminal xterm-256color');
  });

  it('is a config the real tmux accepts, with the history limit applied', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-tmux-'));
    try {
      writeFileSync(join(dir, 'tmux.conf'), tmuxConfig(4321));
      const shown = execFileSync(
        'tmux',
        ['-S', join(dir, 'tmux.sock'), '-f', join(dir, 'tmux.conf'), 'new-session', '-d', 'sleep 30'].concat([
          ';',
          'show-options',
          '-gv',
          'history-limit',
          ';',
          'show-options',
          '-gv',
          'status',
          ';',
          'kill-server',
        ]),
        { encoding: 'utf8', timeout: 10_000 },
      );
      expect(shown.trim().split('\n')).toEqual(['4321', 'off']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TtydBridge.processSpec (a made-up ttyd path that is never run; tests/integration/agent/ttyd.test.ts runs one)', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'sd-ttyd-'));
  });

  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  function bridge(tools: { ttyd: string | null; tmux: string | null }): { bridge: TtydBridge; paths: SlotPaths } {
    const slotPaths = new SlotPaths(dataDir, join(dataDir, 'run'));
    mkdirSync(slotPaths.slotDir(SLOT_ID), { recursive: true });
    const options = {
      paths: slotPaths,
      launcher: LAUNCHER_PATH,
      tools,
      tickets: new TicketStore(),
      logger: createLogger('silent'),
    };
    return {
      bridge: new TtydBridge({ ...options, opening: { timeoutMs: 2000, allowedOrigins: [] }, scrollbackLines: 2500 }),
      paths: slotPaths,
    };
  }

  it('writes the tmux config and a private per-slot secret that stays the same across restarts', () => {
    const { bridge: ttyd, paths: slotPaths } = bridge({ ttyd: '/usr/local/bin/ttyd', tmux: '/usr/bin/tmux' });
    const slot = { ...row, workDir: dataDir } as SlotRow;
    const first = ttyd.processSpec(slot);
    expect(first.script).toBe('/usr/local/bin/ttyd');
    expect(first.cwd).toBe(dataDir);
    expect(readFileSync(slotPaths.tmuxConfig(SLOT_ID), 'utf8')).toContain('set -g history-limit 2500');

    const secretFile = slotPaths.ttydSecretFile(SLOT_ID);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretFile, 'utf8');
    expect(Buffer.from(secret, 'base64url').length).toBeGreaterThanOrEqual(24);
    expect(option(first.args, '--credential')).toBe(`slotdeck:${secret}`);
    expect(option(ttyd.processSpec(slot).args, '--credential')).toBe(`slotdeck:${secret}`);
  });

  it('refuses to build a ttyd slot when ttyd or tmux is not installed', () => {
    const slot = { ...row, workDir: dataDir } as SlotRow;
    expect(() => bridge({ ttyd: null, tmux: '/usr/bin/tmux' }).bridge.processSpec(slot)).toThrow(
      'ttyd and tmux are required',
    );
    expect(() => bridge({ ttyd: '/usr/local/bin/ttyd', tmux: null }).bridge.processSpec(slot)).toThrow(
      'ttyd and tmux are required',
    );
  });
});
