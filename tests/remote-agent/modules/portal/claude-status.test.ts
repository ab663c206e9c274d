/**
 * Claude Code's status in a slot, from a real process tree and a real home folder: running (a `claude` process under
 * the slot's holder), signed in (the credentials file exists, or .claude.json names an account), signed out.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claudeStatus, processSnapshot } from '../../../../remote-agent/src/modules/portal/claude-status.js';
import { until } from '../../../integration/helpers/until.js';

let dir: string;
let home: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-claude-status-'));
  home = join(dir, 'home');
  mkdirSync(home);
});

afterEach(() => {
  // Each holder leads its own process group: end the group, its program included.
  for (const child of children.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A holder like the slot's: a shell with the given program as its child. */
function holder(program: string): number {
  const child = spawn('/bin/sh', ['-c', `${program} & wait`], { stdio: 'ignore', detached: true });
  children.push(child);
  return child.pid!;
}

describe('Claude Code status of a slot', () => {
  it('is running while a claude process runs under the slot’s holder, and not for a claude elsewhere', async () => {
    const claude = join(dir, 'claude');
    writeFileSync(claude, '#!/bin/sh\nsleep 30\n');
    chmodSync(claude, 0o755);
    const slotHolder = holder(claude);
    const otherHolder = holder('sleep 30');
    await until(
      'the claude process',
      () => claudeStatus({ holderPid: slotHolder, homeDir: home }, processSnapshot()),
      (status) => status === 'running',
    );
    expect(claudeStatus({ holderPid: otherHolder, homeDir: home }, processSnapshot())).toBe('signed-out');
    expect(claudeStatus({ holderPid: null, homeDir: home }, processSnapshot())).toBe('signed-out');
  });

  it('is signed in when the credentials file exists, whatever it holds (it is never opened)', () => {
    const config = join(home, '.claude');
    mkdirSync(config);
    // Not JSON and mode 000: only its existence can say "signed in".
    writeFileSync(join(config, '.credentials.json'), 'not json at all', { mode: 0o000 });
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('signed-in');
  });

  it('is signed in when .claude.json (in the config folder or the home) records an account, else signed out', () => {
    const config = join(home, '.claude');
    mkdirSync(config);
    writeFileSync(join(config, '.claude.json'), '{"oauthAccount": "not an object"}');
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('signed-out');
    writeFileSync(join(config, '.claude.json'), '{ half written');
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('signed-out');
    writeFileSync(join(home, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: 'a@example.com' } }));
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('signed-in');
  });
});

/**
 * The slot's user owns its home: a FIFO, a link to /dev/zero or a link to the agent's own files must neither stop the
 * agent (a synchronous read of a FIFO never returns) nor be followed. Run in a child with a time limit, so a hang
 * fails the test instead of freezing the runner.
 */
describe('Claude Code status with hostile files in the slot home', () => {
  function statusInChild(homeDir: string): { status: string | null; timedOut: boolean } {
    const moduleUrl = new URL('../../../../remote-agent/src/modules/portal/claude-status.ts', import.meta.url).href;
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => process.stdout.write(m.claudeStatus({ holderPid: null, homeDir: ${JSON.stringify(homeDir)} }, null)))`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      timeout: 20_000,
      encoding: 'utf8',
    });
    return {
      status: result.status === 0 ? result.stdout : null,
      timedOut: result.error !== undefined || result.signal !== null,
    };
  }

  it('answers unknown at once for a FIFO as .claude.json (a blocking read would stop the agent)', () => {
    mkdirSync(join(home, '.claude'));
    execFileSync('mkfifo', [join(home, '.claude', '.claude.json')]);
    expect(statusInChild(home)).toEqual({ status: 'unknown', timedOut: false });
  });

  it('answers unknown for .claude.json linked to /dev/zero, and never follows a link to a signed-in file', () => {
    symlinkSync('/dev/zero', join(home, '.claude.json'));
    expect(statusInChild(home)).toEqual({ status: 'unknown', timedOut: false });
    rmSync(join(home, '.claude.json'));
    // A file the agent can read (its secrets, say) that happens to look signed in: the link must not be followed.
    const agentFile = join(dir, 'agent-secret.json');
    writeFileSync(agentFile, JSON.stringify({ oauthAccount: { emailAddress: 'agent@example.com' } }));
    symlinkSync(agentFile, join(home, '.claude.json'));
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('unknown');
  });

  it('does not count a link named .credentials.json as signed in, nor a file over 1 MiB', () => {
    mkdirSync(join(home, '.claude'));
    const agentFile = join(dir, 'agent-secret');
    writeFileSync(agentFile, 'secret');
    symlinkSync(agentFile, join(home, '.claude', '.credentials.json'));
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('unknown');
    rmSync(join(home, '.claude', '.credentials.json'));
    writeFileSync(
      join(home, '.claude.json'),
      JSON.stringify({ oauthAccount: { emailAddress: 'a@example.com' }, pad: 'x'.repeat(1024 * 1024) }),
    );
    expect(claudeStatus({ holderPid: null, homeDir: home }, null)).toBe('unknown');
  });
});
