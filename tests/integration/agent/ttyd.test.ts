import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess, pm2Processes } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

let agent: AgentProcess;
let bin: string;

/** A real ttyd when one is installed; else (Debian 12 does not package it) a stand-in that speaks its protocol. */
const realTtyd = spawnSync('sh', ['-c', 'command -v ttyd'], { encoding: 'utf8' }).stdout.trim() || null;
const backend = realTtyd
  ? `a real ttyd (${realTtyd})`
  : 'a stand-in for ttyd (tests/integration/fixtures/fake-ttyd.mjs: its protocol, not ttyd itself)';

beforeAll(async () => {
  bin = mkdtempSync(join(tmpdir(), 'sd-ttyd-bin-'));
  if (!realTtyd) {
    // The stand-in goes first on the agent's PATH, as `ttyd`.
    const fake = resolve(import.meta.dirname, '../fixtures/fake-ttyd.mjs');
    writeFileSync(join(bin, 'ttyd'), `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`);
    chmodSync(join(bin, 'ttyd'), 0o755);
  }
  agent = await AgentProcess.start({ env: { PATH: `${bin}:${process.env.PATH}` } });
});

afterAll(async () => {
  await agent?.destroy();
  rmSync(bin, { recursive: true, force: true });
});

describe(`slots on the ttyd backend, run by ${backend}`, () => {
  it('proxies clients to ttyd with its credential, keeps read-only viewers read-only, and survives ttyd restarts', async () => {
    const created = await agent.request<Slot>('POST', '/api/v1/slots', { name: 'via-ttyd', terminal: 'ttyd' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const slot = created.body;
    expect(slot.terminal).toBe('ttyd');

    const writer = await agent.attach(slot.id);
    await writer.waitFor(/[#$] /);
    writer.type('echo ttyd-$((7*6)); echo shell=$$\r');
    await writer.waitFor('ttyd-42');
    const shellPid = /shell=(\d+)/.exec(await writer.waitFor(/shell=\d+/))![1];

    const viewer = await agent.attach(slot.id, 'read-only');
    await viewer.waitFor('ttyd-42');
    viewer.type('echo typed-by-viewer\r');
    writer.type('echo writer-again\r');
    await writer.waitFor('writer-again');
    expect(writer.text).not.toContain('typed-by-viewer');
    expect((await agent.request<Slot>('GET', `/api/v1/slots/${slot.id}`)).body.viewers).toEqual({
      writable: 1,
      readOnly: 1,
    });
    writer.close();
    viewer.close();

    // ttyd goes down; PM2 brings it back and the program inside tmux is still the same.
    const ttydPid = (await pm2Processes(agent)).find((p) => p.name === `slot-${slot.id}`)!.pid;
    process.kill(ttydPid, 'SIGKILL');
    await until(
      'PM2 to start ttyd again',
      async () => (await pm2Processes(agent)).find((p) => p.name === `slot-${slot.id}`),
      (now) => now?.status === 'online' && now.pid !== ttydPid,
    );
    // Online in PM2 comes before ttyd listens: until it does, the agent closes a client at once.
    const back = await until(
      'the restarted ttyd to show the screen to a client',
      async () => {
        const client = await agent.attach(slot.id);
        try {
          await client.waitFor('ttyd-42', 5000);
          return client;
        } catch {
          client.close();
          return null;
        }
      },
      (client) => client !== null,
      { timeoutMs: 30_000, everyMs: 100 },
    );
    back!.type('echo shell-again=$$\r');
    await back!.waitFor(`shell-again=${shellPid}`);
    back!.close();

    // Stopping the slot ends tmux too: nothing of it keeps running.
    const tmuxSocket = join(agent.dataDir, 'run', `${slot.id}.tmux.sock`);
    expect(existsSync(tmuxSocket)).toBe(true);
    await agent.request('POST', `/api/v1/slots/${slot.id}/stop`);
    const { execFileSync } = await import('node:child_process');
    expect(() => execFileSync('tmux', ['-S', tmuxSocket, 'has-session'], { stdio: 'ignore' })).toThrow();
  });
});
