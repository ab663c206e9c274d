import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess, pm2Processes } from '../helpers/agent.js';

let agent: AgentProcess;
let bin: string;

beforeAll(async () => {
  // ttyd is not packaged for Debian 12: a stand-in speaking its protocol goes first on the agent's PATH.
  bin = mkdtempSync(join(tmpdir(), 'sd-ttyd-bin-'));
  const fake = resolve(import.meta.dirname, '../fixtures/fake-ttyd.mjs');
  writeFileSync(join(bin, 'ttyd'), `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`);
  chmodSync(join(bin, 'ttyd'), 0o755);
  agent = await AgentProcess.start({ env: { PATH: `${bin}:${process.env.PATH}` } });
});

afterAll(async () => {
  await agent?.destroy();
  rmSync(bin, { recursive: true, force: true });
});

describe('slots on a real ttyd (the ttyd backend)', () => {
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
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const now = (await pm2Processes(agent)).find((p) => p.name === `slot-${slot.id}`);
      if (now && now.status === 'online' && now.pid !== ttydPid) break;
      await sleep(100);
    }
    await sleep(300);
    const back = await agent.attach(slot.id);
    await back.waitFor('ttyd-42');
    back.type('echo shell-again=$$\r');
    await back.waitFor(`shell-again=${shellPid}`);
    back.close();

    // Stopping the slot ends tmux too: nothing of it keeps running.
    const tmuxSocket = join(agent.dataDir, 'run', `${slot.id}.tmux.sock`);
    expect(existsSync(tmuxSocket)).toBe(true);
    await agent.request('POST', `/api/v1/slots/${slot.id}/stop`);
    const { execFileSync } = await import('node:child_process');
    expect(() => execFileSync('tmux', ['-S', tmuxSocket, 'has-session'], { stdio: 'ignore' })).toThrow();
  });
});
