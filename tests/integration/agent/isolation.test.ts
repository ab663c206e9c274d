/**
 * A host set up as a server (`slotdeck-agent setup-host`, then `serve` as the agent's own account): every slot runs
 * as an account of its own, and a program inside a slot can read no secret of the agent, of another slot or of the
 * panel. Real accounts, sudo, the root-owned helper, PM2 and dtach; the tests run as root, as the README's command
 * does, so that they can create accounts.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_DIR, AgentProcess } from '../helpers/agent';
import { filesUnder, secretsInProcesses } from '../helpers/secrets';
import { TerminalTestClient } from '../helpers/terminal-client';

const suffix = Math.random().toString(36).slice(2, 8);
const agentUser = `sdit${suffix}`;
const root = `/var/tmp/slotdeck-isolation-${suffix}`;
const dataDir = join(root, 'data');
const homes = `/home/${agentUser}-slots`;
const runRoot = `/run/${agentUser}-slots`;
const upstreamKey = `sk-ant-upstream-${suffix}-${'u'.repeat(24)}`;

let agent: AgentProcess;
let token = '';
let legacySlotId = '';

interface SlotView {
  id: string;
  account?: string | null;
  pid: number | null;
  programPid: number | null;
  state: string;
  homeDir: string;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${agent.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${agent?.logs.slice(-20).join('\n')}`);
    await sleep(100);
  }
}

/** The slot's program is its login shell by now (not the launcher's brief children while it waits). */
function runsShell(pid: number | null): boolean {
  try {
    return pid !== null && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('/bin/bash');
  } catch {
    return false;
  }
}

const ownerOfPid = (pid: number): string =>
  execFileSync('ps', ['-o', 'user=', '-p', String(pid)], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('The isolation tests create accounts: run them as root (as CI does).');
  // The agent's account must be able to read the agent's code: a copy outside the (possibly private) checkout.
  mkdirSync(root, { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  const code = join(root, 'agent');
  for (const entry of ['bin', 'dist', 'resources', 'package.json', 'node_modules']) {
    cpSync(join(AGENT_DIR, entry), join(code, entry), { recursive: true });
  }
  // The host ran the agent without isolation first (as root here), with a slot: the way an existing host moves over.
  const before = await AgentProcess.start({ dataDir, cli: join(code, 'dist/cli.js') });
  const legacy = await fetch(`${before.url}/api/v1/slots`, {
    method: 'POST',
    headers: { authorization: `Bearer ${before.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'legacy' }),
  });
  legacySlotId = ((await legacy.json()) as { id: string }).id;
  await before.stop();
  execFileSync(process.execPath, [join(code, 'dist/cli.js'), 'down', '--data-dir', dataDir], { stdio: 'pipe' });
  execFileSync(
    process.execPath,
    [join(code, 'dist/cli.js'), 'setup-host', '--user', agentUser, '--data-dir', dataDir],
    { stdio: 'pipe' },
  );
  agent = await AgentProcess.start({ dataDir, runAs: agentUser, cli: join(code, 'dist/cli.js') });
  token = agent.token;
}, 180_000);

/** Ends an account's processes and removes it, retrying while a process it had is still going away. */
function removeAccount(name: string): void {
  execFileSync(
    'sh',
    [
      '-c',
      `for i in $(seq 50); do pkill -KILL -u "$0"; userdel "$0" 2>/dev/null && break; sleep 0.1; done; groupdel "$0" 2>/dev/null; true`,
      name,
    ],
    { stdio: 'ignore' },
  );
}

afterAll(async () => {
  // The agent, then every process of its accounts (its PM2 daemon and the slots) ends with the accounts.
  await agent?.stop().catch(() => undefined);
  // Every account this agent made carries the helper's mark: end and remove them, then the agent's own.
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , , , comment] = line.split(':');
    if (name && comment === `slotdeck slot account of ${agentUser}`) {
      removeAccount(name);
    }
  }
  removeAccount(agentUser);
  rmSync(`/var/lib/${agentUser}`, { recursive: true, force: true });
  for (const path of [
    root,
    homes,
    runRoot,
    `/etc/slotdeck/agents/${agentUser}.conf`,
    `/etc/sudoers.d/slotdeck-${agentUser}`,
  ])
    rmSync(path, { recursive: true, force: true });
}, 60_000);

describe('a host set up with setup-host', () => {
  it('runs the agent as its own account, with a private data dir and one sudoers line for the helper only', () => {
    expect(ownerOfPid(agent.pid!)).toBe(agentUser);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(readFileSync(`/etc/sudoers.d/slotdeck-${agentUser}`, 'utf8').trim()).toBe(
      `${agentUser} ALL=(root) NOPASSWD: /usr/local/libexec/slotdeck/slotdeck-helper`,
    );
    const helper = statSync('/usr/local/libexec/slotdeck/slotdeck-helper');
    expect(helper.uid).toBe(0);
    expect(helper.mode & 0o022).toBe(0);
  });

  it('moves a slot made before setup-host to an account of its own, with a fresh home', async () => {
    const slot = await waitFor('the legacy slot to run', async () => {
      const view = (await api<SlotView>('GET', `/api/v1/slots/${legacySlotId}`)).body;
      return runsShell(view.programPid) ? view : null;
    });
    expect(ownerOfPid(slot.programPid!)).toBe(`sds-${legacySlotId}`);
    expect(slot.account).toBe(`sds-${legacySlotId}`);
    expect(slot.homeDir).toBe(`${homes}/sds-${legacySlotId}/${legacySlotId}/home`);
    const events = (await api<{ events: Array<{ kind: string }> }>('GET', `/api/v1/slots/${legacySlotId}/events`)).body;
    expect(events.events.map((event) => event.kind)).toContain('isolated');
  });

  it('refuses helper arguments outside its grammar, and other accounts than its own', () => {
    const helper = (...args: string[]): string => {
      try {
        execFileSync(
          'setpriv',
          [
            `--reuid=${agentUser}`,
            `--regid=${agentUser}`,
            '--init-groups',
            'sudo',
            '-n',
            '/usr/local/libexec/slotdeck/slotdeck-helper',
            ...args,
          ],
          { stdio: 'pipe', encoding: 'utf8' },
        );
        return 'accepted';
      } catch (error) {
        return String((error as { stderr?: string }).stderr);
      }
    };
    expect(helper('ensure-account', 'root')).toMatch(/bad account name/);
    expect(helper('run', 'sds-0123456789', '../../etc', '10', '0')).toMatch(/bad slot id/);
    expect(helper('run', 'sds-0123456789', '0123456789', '10; id', '0')).toMatch(/bad process limit/);
    expect(helper('run', 'sds-0123456789', '0123456789', '10', '$(id)')).toMatch(/bad memory limit/);
    expect(helper('run', 'sds-0123456789', '0123456789', '10')).toMatch(/usage: run/);
    expect(helper('stop', 'sds-0123456789', '0123456789')).toMatch(/not an account of/);
    expect(helper('sh', '-c', 'id')).toMatch(/unknown verb/);
    // The idle auto-stop's verb takes nothing: no delay, no reboot, no message reach shutdown.
    expect(helper('poweroff', '-r', 'now')).toMatch(/poweroff takes no arguments/);
  });

  it("runs each slot as an account of its own; nothing in a slot can read the agent's or another slot's secrets", async () => {
    expect((await api('PUT', '/api/v1/gateway/upstream-key', { apiKey: upstreamKey })).status).toBeLessThan(300);
    const user = await api<{ id: string }>('POST', '/api/v1/users', { username: `victim${suffix}` });
    expect(user.status).toBe(201);
    // The victim: a metered slot of an end user, with its own gateway key in its environment.
    const victim = await api<SlotView>('POST', '/api/v1/slots', {
      name: 'victim',
      ownerId: user.body.id,
      metered: true,
    });
    expect(victim.status).toBe(201);
    const victimAccount = `sdu-${user.body.id.replace(/^u_/, '')}`;
    const running = await waitFor('the victim slot to run', async () => {
      const slot = (await api<SlotView>('GET', `/api/v1/slots/${victim.body.id}`)).body;
      return runsShell(slot.programPid) ? slot : null;
    });
    expect(ownerOfPid(running.programPid!)).toBe(victimAccount);
    const victimUid = statSync(`/proc/${running.programPid}`).uid;
    const slotKey = readFileSync(join(dataDir, 'secrets', `slot-key-${victim.body.id}`), 'utf8').trim();

    // The attacker: a slot whose program tries to read everything that is not its own.
    const probe = join(root, 'probe.sh');
    writeFileSync(
      probe,
      `exec >"$HOME/probe.out" 2>&1
try() { if sh -c "$2" >/dev/null 2>&1; then echo "$1=readable"; else echo "$1=denied"; fi; }
try own-home 'echo mine > "$HOME/mine" && cat "$HOME/mine"'
try admin-token 'cat "$DATA/secrets/admin-token"'
try upstream-key 'cat "$DATA/secrets/upstream-key"'
try slot-key 'cat "$DATA/secrets/slot-key-$VICTIM"'
try database 'cat "$DATA/agent.db"'
try data-dir 'ls "$DATA"'
try pm2-home 'ls "$DATA/pm2"'
try victim-home 'ls "$VICTIM_HOME"'
try victim-env 'cat "$RUN/$VICTIM_ACCOUNT/$VICTIM.env"'
try victim-socket 'ls "$RUN/$VICTIM_ACCOUNT/s"'
try victim-attach 'timeout 2 dtach -p "$RUN/$VICTIM_ACCOUNT/s/$VICTIM.sock" </dev/null'
try victim-environ 'grep -q ANTHROPIC /proc/$VICTIM_PID/environ'
try agent-environ 'cat /proc/$AGENT_PID/environ'
try sudo 'sudo -n true'
try helper 'sudo -n /usr/local/libexec/slotdeck/slotdeck-helper check'
# What must not outlive the slot: a process that left the terminal, a file in a shared temp folder, and a folder
# where the agent expects the slot's socket.
setsid sleep 600 </dev/null >/dev/null 2>&1 &
echo leftover > "/dev/shm/slotdeck-leftover-$SLOTDECK_SLOT_ID"
mkdir -p "$RUN/sds-$SLOTDECK_SLOT_ID/s/$SLOTDECK_SLOT_ID.sock/x"
echo done
exec sleep 600
`,
      { mode: 0o644 },
    );
    const attacker = await api<SlotView>('POST', '/api/v1/slots', {
      name: 'attacker',
      command: { preset: 'custom', command: '/bin/sh', args: [probe] },
      env: {
        DATA: dataDir,
        RUN: runRoot,
        VICTIM: victim.body.id,
        VICTIM_ACCOUNT: victimAccount,
        VICTIM_HOME: running.homeDir,
        VICTIM_PID: String(running.programPid),
        AGENT_PID: String(agent.pid),
      },
    });
    expect(attacker.status).toBe(201);
    const attackerHome = attacker.body.homeDir;
    const report = await waitFor('the probe', () => {
      try {
        const text = readFileSync(join(attackerHome, 'probe.out'), 'utf8');
        return text.includes('done') ? text : null;
      } catch {
        return null;
      }
    });
    const results = Object.fromEntries(
      report
        .trim()
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => line.split('=') as [string, string]),
    );
    expect(results).toEqual({
      'own-home': 'readable',
      'admin-token': 'denied',
      'upstream-key': 'denied',
      'slot-key': 'denied',
      database: 'denied',
      'data-dir': 'denied',
      'pm2-home': 'denied',
      'victim-home': 'denied',
      'victim-env': 'denied',
      'victim-socket': 'denied',
      'victim-attach': 'denied',
      'victim-environ': 'denied',
      'agent-environ': 'denied',
      sudo: 'denied',
      helper: 'denied',
    });

    // No secret in any process's environment or command line, and no file holding one readable by a slot account.
    const secrets = { upstreamKey, slotKey, adminToken: token };
    // The victim's own programs get its key as ANTHROPIC_API_KEY (Claude Code reads it there); only they.
    const sightings = secretsInProcesses(secrets).filter(
      (seen) => !(seen.secret === 'slotKey' && seen.where.endsWith('/environ') && seen.uid === victimUid),
    );
    expect(sightings).toEqual([]);
    for (const file of [...filesUnder(dataDir), ...filesUnder(homes), ...filesUnder(runRoot)]) {
      const text = readFileSync(file, 'latin1');
      for (const [name, secret] of Object.entries(secrets)) {
        if (!text.includes(secret)) continue;
        const stat = statSync(file);
        const inVictimEnv = name === 'slotKey' && file === join(runRoot, victimAccount, `${victim.body.id}.env`);
        // The one secret a slot account may hold is its own gateway key, readable by its group only.
        expect(inVictimEnv || file.startsWith(`${dataDir}/`), `${name} in ${file}`).toBe(true);
        expect(stat.mode & 0o007, `${name} in ${file} is world-readable`).toBe(0);
      }
    }

    // Deleting the attacker's slot ends everything it started and removes what it left, whatever it planted.
    const account = `sds-${attacker.body.id}`;
    expect((await api('DELETE', `/api/v1/slots/${attacker.body.id}?workDir=remove`)).status).toBe(200);
    expect(readFileSync('/etc/passwd', 'utf8')).not.toContain(`${account}:`);
    expect(execFileSync('ps', ['-eo', 'user:32='], { encoding: 'utf8' })).not.toContain(account);
    expect(() => statSync(`/dev/shm/slotdeck-leftover-${attacker.body.id}`)).toThrow();
    expect(() => statSync(join(runRoot, account))).toThrow();
  });

  it("opens an isolated slot's console through the agent, as that account", async () => {
    const slot = await api<SlotView>('POST', '/api/v1/slots', { name: 'console' });
    expect(slot.status).toBe(201);
    const ticket = await api<{ path: string }>('POST', `/api/v1/slots/${slot.body.id}/tickets`, { mode: 'writable' });
    const client = await TerminalTestClient.open(`${agent.url.replace(/^http/, 'ws')}${ticket.body.path}`);
    try {
      await client.waitForPrompt();
      client.type('id -un; pwd\r');
      await client.waitFor(`sds-${slot.body.id}`);
      await client.waitFor(`${homes}/sds-${slot.body.id}/${slot.body.id}/work`);
    } finally {
      client.close();
    }
    // Deleting the slot removes its account and everything it owned.
    expect((await api('DELETE', `/api/v1/slots/${slot.body.id}?workDir=remove`)).status).toBe(200);
    await waitFor('the account to go', () =>
      readFileSync('/etc/passwd', 'utf8').includes(`sds-${slot.body.id}:`) ? null : true,
    );
    expect(() => statSync(`${homes}/sds-${slot.body.id}`)).toThrow();
  });
});
