import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pty from '@lydell/node-pty';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot, User } from '../../../remote-agent/src/contract/index.js';
import { LATEST_SCHEMA_VERSION } from '../../../remote-agent/src/db/migrations.js';
import { AGENT_CLI, AgentProcess } from '../helpers/agent.js';
import { stripAnsi } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

// `slotdeck-agent` as an admin runs it on a host: the built CLI against a real agent process, its SQLite and PM2.
let agent: AgentProcess;
let slot: Slot;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The CLI had not ended when the test gave up on it (and killed it). */
  hung: boolean;
}

function cli(dataDir: string, args: string[], timeoutMs = 30_000): Promise<CliRun> {
  const child = spawn(process.execPath, [AGENT_CLI, ...args], {
    env: { ...process.env, SLOTDECK_AGENT_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let hung = false;
  const guard = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr, hung });
    }),
  );
}

/** `slotdeck-agent attach` in a real terminal (a PTY), as an admin types into it. */
class AttachedTerminal {
  output = '';
  exitCode: number | null = null;
  private readonly term: pty.IPty;

  constructor(dataDir: string, args: string[]) {
    this.term = pty.spawn(process.execPath, [AGENT_CLI, 'attach', ...args], {
      name: 'xterm-256color',
      cols: 100,
      rows: 30,
      cwd: dataDir,
      env: { ...process.env, SLOTDECK_AGENT_DATA_DIR: dataDir },
    });
    this.term.onData((data) => (this.output += data));
    this.term.onExit(({ exitCode }) => (this.exitCode = exitCode));
  }

  get text(): string {
    return stripAnsi(this.output);
  }

  type(text: string): void {
    this.term.write(text);
  }

  resize(columns: number, rows: number): void {
    this.term.resize(columns, rows);
  }

  async waitFor(pattern: string | RegExp): Promise<string> {
    const found = (): boolean => (typeof pattern === 'string' ? this.text.includes(pattern) : pattern.test(this.text));
    await until(`${String(pattern)} in the attached terminal`, found, Boolean, { timeoutMs: 20_000 }).catch(
      (error: Error) => {
        throw new Error(`${error.message}\nit shows: ${JSON.stringify(this.text.slice(-1500))}`);
      },
    );
    return this.text;
  }

  async exited(): Promise<number> {
    return (await until(
      'the attach command to end',
      () => this.exitCode,
      (code) => code !== null,
    ))!;
  }

  kill(): void {
    if (this.exitCode === null) this.term.kill('SIGKILL');
  }
}

async function status(token: string): Promise<number> {
  const response = await fetch(`${agent.url}/api/v1/slots`, { headers: { authorization: `Bearer ${token}` } });
  await response.body?.cancel();
  return response.status;
}

beforeAll(async () => {
  agent = await AgentProcess.start();
  slot = await agent.createSlot({ name: 'cli-slot' });
});

afterAll(async () => {
  await agent?.destroy();
});

describe('slotdeck-agent health', () => {
  it('prints the running agent’s state and exits 0 when it is well', async () => {
    const run = await cli(agent.dataDir, ['health']);
    expect(run.code, run.stderr).toBe(0);
    const health = JSON.parse(run.stdout) as { status: string; database: { ok: boolean }; supervisor: { ok: boolean } };
    expect(health).toMatchObject({ status: 'ok', database: { ok: true }, supervisor: { ok: true } });
  });

  it('exits 1 when the agent answers that it is degraded, so scripts and monitors notice', async () => {
    // The schema the running agent sees no longer matches what it expects: its health says "degraded".
    const db = new Database(join(agent.dataDir, 'agent.db'));
    try {
      db.pragma(`user_version = ${LATEST_SCHEMA_VERSION - 1}`);
      const run = await cli(agent.dataDir, ['health']);
      expect(JSON.parse(run.stdout)).toMatchObject({ status: 'degraded', database: { ok: false } });
      expect(run.code).toBe(1);
    } finally {
      db.pragma(`user_version = ${LATEST_SCHEMA_VERSION}`);
      db.close();
    }
  });

  it('says no agent runs on a data dir without one, and exits 2', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'sd-cli-empty-'));
    try {
      const run = await cli(empty, ['health']);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`No agent is running with the data dir ${empty}`);
      expect(run.stderr).toContain('slotdeck-agent serve');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('gives up on an agent that does not answer and says so, instead of hanging', async () => {
    process.kill(agent.pid!, 'SIGSTOP');
    try {
      const run = await cli(agent.dataDir, ['health']);
      expect(run.hung, 'the CLI was still waiting after 30 s').toBe(false);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/did not answer/);
      expect(run.stderr).not.toMatch(/\n\s+at /); // a sentence, not a stack trace
    } finally {
      process.kill(agent.pid!, 'SIGCONT');
    }
  });
});

describe('slotdeck-agent attach', () => {
  it('runs what the admin types in the slot, follows the window size, and detaches on Ctrl-] with the slot still running', async () => {
    const attached = new AttachedTerminal(agent.dataDir, ['cli-slot']);
    try {
      await attached.waitFor('[attached to cli-slot; detach with Ctrl-]]');
      await attached.waitFor(/[#$] $/);
      attached.type('echo cli-$((6*7)) size=$(stty size)\r');
      await attached.waitFor('cli-42 size=30 100');
      attached.resize(120, 40);
      // The new size travels on its own path (SIGWINCH, then a resize message): type once the slot has it.
      await until(
        'the slot to take the new size',
        () => agent.slot(slot.id),
        (s) => s.size.cols === 120 && s.size.rows === 40,
      );
      attached.type('echo resized=$(stty size)\r');
      await attached.waitFor('resized=40 120');
      attached.type('\x1d');
      expect(await attached.exited()).toBe(0);
      expect(attached.text).toContain('[detached]');
    } finally {
      attached.kill();
    }
    // The shell did not end with the client: another client sees what was typed, and types on.
    const again = await agent.attach(slot.id);
    await again.waitFor('cli-42');
    again.type('echo after-detach-$((1+1))\r');
    await again.waitFor('after-detach-2');
    again.close();
  });

  it('--read-only shows the slot but does not let keystrokes reach it', async () => {
    const viewer = new AttachedTerminal(agent.dataDir, ['cli-slot', '--read-only']);
    const writer = await agent.attach(slot.id);
    try {
      await viewer.waitFor('[attached to cli-slot, read-only');
      viewer.type('echo typed-by-$((2+3))-viewer\r');
      writer.type('echo from-writer-$((3*3))\r');
      await viewer.waitFor('from-writer-9');
      await writer.waitFor('from-writer-9');
      expect(writer.text).not.toContain('typed-by-5-viewer');
      viewer.type('\x1d');
      expect(await viewer.exited()).toBe(0);
    } finally {
      viewer.kill();
      writer.close();
    }
  });

  it('names the slots there are when asked for one that does not exist', async () => {
    const run = await cli(agent.dataDir, ['attach', 'no-such-slot']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('No slot named "no-such-slot". Slots: cli-slot');
  });

  it('ends with exit 1 and says why when the agent goes away under it', async () => {
    const attached = new AttachedTerminal(agent.dataDir, ['cli-slot']);
    try {
      await attached.waitFor('[attached to cli-slot');
      await agent.stop();
      expect(await attached.exited()).toBe(1);
      expect(attached.text).toMatch(/\[detached: .+\]/);
    } finally {
      attached.kill();
      await agent.launch();
    }
  });
});

describe('slotdeck-agent token', () => {
  it('prints the token the agent accepts', async () => {
    const run = await cli(agent.dataDir, ['token']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(agent.token);
    expect(await status(run.stdout.trim())).toBe(200);
  });

  it('--rotate: the running agent refuses the old token and accepts the new one, and still does after a restart', async () => {
    const old = agent.token;
    const run = await cli(agent.dataDir, ['token', '--rotate']);
    expect(run.code).toBe(0);
    const fresh = run.stdout.trim();
    expect(fresh).toMatch(/^sdk_admin_[\w-]{43}$/);
    expect(fresh).not.toBe(old);
    expect(agent.token).toBe(fresh);
    expect(statSync(join(agent.dataDir, 'secrets', 'admin-token')).mode & 0o777).toBe(0o600);

    // "A running agent switches within a second": no restart needed.
    await until(
      'the running agent to refuse the old token',
      () => status(old),
      (code) => code === 401,
    );
    expect(await status(fresh)).toBe(200);
    // The CLI's own calls use the new token too.
    expect((await cli(agent.dataDir, ['attach', 'no-such-slot'])).stderr).toContain('No slot named');

    await agent.stop();
    await agent.launch();
    expect(await status(old)).toBe(401);
    expect(await status(fresh)).toBe(200);
  });
});

describe('slotdeck-agent migrate', () => {
  it('refuses while the agent runs, and leaves the schema alone', async () => {
    const run = await cli(agent.dataDir, ['migrate', 'down']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Stop the agent before migrating');
    const after = await cli(agent.dataDir, ['migrate', 'status']);
    expect(after.stdout).toContain(`schema version ${LATEST_SCHEMA_VERSION} of ${LATEST_SCHEMA_VERSION}`);
  });

  it('down refuses to drop rows unless told to (naming what it would lose); down then up leaves a working agent', async () => {
    const user = await agent.request<User>('POST', '/api/v1/users', { username: 'kept-until-forced' });
    expect(user.status).toBe(201);
    await agent.stop();

    const refused = await cli(agent.dataDir, ['migrate', 'down', '--to', '1']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/users \(1 row\)/);
    expect(refused.stderr).toContain('--force');
    expect((await cli(agent.dataDir, ['migrate', 'status'])).stdout).toContain(
      `schema version ${LATEST_SCHEMA_VERSION} of`,
    );

    const down = await cli(agent.dataDir, ['migrate', 'down', '--to', '1', '--force']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain('down 2 users, API keys');
    expect(down.stdout).toContain('schema version 1\n');
    const status1 = await cli(agent.dataDir, ['migrate', 'status']);
    expect(status1.stdout).toContain('[x] 1 slots and their events');
    expect(status1.stdout).toContain('[ ] 2 users, API keys');

    const up = await cli(agent.dataDir, ['migrate', 'up']);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('up 2 users, API keys');
    expect(up.stdout).toContain(`schema version ${LATEST_SCHEMA_VERSION}\n`);

    await agent.launch();
    const health = await cli(agent.dataDir, ['health']);
    expect(health.code, health.stdout).toBe(0);
    // The slot (version 1's table) survived; the dropped users are gone and new ones can be made.
    expect((await agent.slot(slot.id)).name).toBe('cli-slot');
    expect((await agent.request<{ users: User[] }>('GET', '/api/v1/users')).body.users).toEqual([]);
    expect((await agent.request('POST', '/api/v1/users', { username: 'after-up' })).status).toBe(201);
  });

  it('explains a database from a newer agent instead of printing a stack trace', async () => {
    await agent.stop();
    const db = new Database(join(agent.dataDir, 'agent.db'));
    db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
    try {
      const run = await cli(agent.dataDir, ['migrate', 'status']);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`newer than this agent knows (${LATEST_SCHEMA_VERSION})`);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    } finally {
      db.pragma(`user_version = ${LATEST_SCHEMA_VERSION}`);
      db.close();
      await agent.launch();
    }
  });
});
