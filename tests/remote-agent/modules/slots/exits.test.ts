import { describe, expect, it } from 'vitest';
import { describeExitStatus } from '../../../../remote-agent/src/modules/slots/exits.js';

describe('how a program ended, in words', () => {
  it('names the shell statuses an admin meets: not found, not executable, killed by a signal', () => {
    expect(describeExitStatus('sh', 127)).toBe('sh exited with code 127 (command not found)');
    expect(describeExitStatus('./run', 126)).toBe(
      './run exited with code 126 (found but could not be run: not executable?)',
    );
    expect(describeExitStatus('claude', 137)).toBe('claude was ended by SIGKILL (exit status 137)');
    expect(describeExitStatus('claude', 143)).toBe('claude was ended by SIGTERM (exit status 143)');
    expect(describeExitStatus('make', 2)).toBe('make exited with code 2');
    expect(describeExitStatus('odd', 255)).toBe('odd exited with code 255');
  });
});
