import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isRunning } from '../../remote-agent/src/util/procfs.js';
import { killAll, processesOf } from '../integration/helpers/processes.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** Resolves once `check` holds, polling; rejects after `ms` with `what`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `npm start` as the admin runs it, stopped with Ctrl-C. A terminal sends SIGINT to the whole foreground group; an IDE's
 * stop button, `kill -INT` or a process manager sends it to npm alone, which must be enough.
 */
describe('npm start (browser mode)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sd-start-'));
  let npm: ChildProcess | null = null;

  afterAll(() => {
    if (npm?.pid && isRunning(npm.pid)) npm.kill('SIGKILL');
    killAll(processesOf(dataDir));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops the panel and its local agent when only npm gets SIGINT', async () => {
    // npm start installs packages when a lockfile changed: never here, in a tree other tests are using.
    for (const dir of [ROOT, join(ROOT, 'remote-agent')]) {
      const lock = createHash('sha256')
        .update(readFileSync(join(dir, 'package-lock.json')))
        .digest('hex');
      const installed = readFileSync(join(dir, 'node_modules', '.slotdeck-installed'), 'utf8').trim();
      expect(installed, `run npm run setup first: ${dir}'s packages are older than its lockfile`).toBe(lock);
    }
    // Its own process group: the signal below reaches npm only, not its children.
    npm = spawn('npm', ['start'], {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, SLOTDECK_DATA_DIR: dataDir, SLOTDECK_AGENT_GATEWAY_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    npm.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let exited = false;
    npm.once('exit', () => (exited = true));
    await until(() => output.includes('SLOTDECK_READY ') || exited, 240_000, 'SLOTDECK_READY');
    expect(exited, output).toBe(false);
    const ready = JSON.parse(/SLOTDECK_READY (.*)/.exec(output)![1]!) as { pid: number };
    const agentState = JSON.parse(readFileSync(join(dataDir, 'agents', 'local', 'agent-state.json'), 'utf8')) as {
      pid: number;
    };
    expect(isRunning(ready.pid)).toBe(true);
    expect(isRunning(agentState.pid)).toBe(true);

    process.kill(npm.pid!, 'SIGINT');
    // Generous bounds, only so that a hang fails instead of blocking the suite.
    await until(() => exited, 30_000, 'npm to exit');
    await until(() => !isRunning(ready.pid) && !isRunning(agentState.pid), 15_000, 'the panel and its agent to stop');
    expect(output).toContain('Slotdeck stopped');
  });
});
