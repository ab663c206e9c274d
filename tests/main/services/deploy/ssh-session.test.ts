import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { inProcessGroup, plainKill } from '../../../../src/main/services/deploy/ssh-session';

describe('host-side commands run so that cancelling can stop all of them', () => {
  it('prints the process group first, then runs the command exactly as given, in that group', () => {
    const command = `echo "a b" 'c'"'"'d' && sh -c 'ps -o pgid= -p $$'`;
    // setsid: like sshd, which makes each session's shell a group leader of its own.
    const lines = execFileSync('setsid', ['-w', 'sh', '-c', inProcessGroup(command)], { encoding: 'utf8' }).split('\n');
    const marker = /^SLOTDECK_PGID (\d+)$/.exec(lines[0]!);
    expect(marker).not.toBeNull();
    expect(lines[1]).toBe("a b c'd");
    expect(Number(lines[2]!.trim())).toBe(Number(marker![1]));
  });

  it('signals the whole group', () => {
    expect(plainKill('TERM', 4242)).toBe('kill -TERM -- -4242');
  });
});
