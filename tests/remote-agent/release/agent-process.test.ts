import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAgentProcess } from '../../../remote-agent/src/release/agent-process.js';

const scratch = mkdtempSync(join(tmpdir(), 'sd-agent-process-'));
const children: Array<ReturnType<typeof spawn>> = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/** Until the child has exec'd (before that its command line is still this test's). */
async function execd(pid: number, word: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(word)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`pid ${pid} never ran ${word}`);
}

describe('a pid from agent-state.json is signalled only while it is still an agent (PID reuse)', () => {
  it('is not an agent: another program that now has the pid', async () => {
    const other = spawn('sleep', ['30']);
    children.push(other);
    await execd(other.pid!, 'sleep');
    expect(isAgentProcess(other.pid!)).toBe(false);
  });

  it('is an agent: node running a slotdeck-agent.js', async () => {
    const cli = join(scratch, 'bin', 'slotdeck-agent.js');
    rmSync(join(scratch, 'bin'), { recursive: true, force: true });
    mkdirSync(join(scratch, 'bin'));
    writeFileSync(cli, 'setTimeout(() => {}, 30000);\n');
    const agent = spawn(process.execPath, [cli, 'serve']);
    children.push(agent);
    await execd(agent.pid!, 'slotdeck-agent.js');
    expect(isAgentProcess(agent.pid!)).toBe(true);
  });

  it('is not an agent: a pid nothing runs under', () => {
    expect(isAgentProcess(2 ** 22 + 12345)).toBe(false);
  });
});
