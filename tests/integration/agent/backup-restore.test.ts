/**
 * R9 (stand-in upstream): a backup taken while the agent is busy (gateway requests, users and keys being made), then
 * restored onto a fresh agent (a second data dir, as after a new deploy): the database is whole, its rows are those
 * of the backup, a key made before the backup still gets through the gateway, users, quotas, usage, slots and their
 * homes are back, the secrets came back sealed and opened with the panel's key only, and the CLI pair round-trips.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  BackupInfo,
  BackupList,
  CreatedKey,
  RestoreAccepted,
  Slot,
  User,
} from '../../../remote-agent/src/contract/index.js';
import { rawPublicKey, unwrapDataKey } from '../../../remote-agent/src/modules/backups/crypto.js';
import { FAKE_UPSTREAM_KEY, startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { AGENT_CLI, AgentProcess } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

const MODEL = 'claude-sonnet-4-6';
/** Tables the restarted agent itself appends to (its start, the restore call, reconciling): at least the backup's. */
const GROWING = new Set(['audit_log', 'slot_events', 'alert_history', 'alerts', 'alert_events']);

let upstream: FakeAnthropic;
let source: AgentProcess;
let fresh: AgentProcess;
const work = mkdtempSync(join(tmpdir(), 'sd-r9-'));
const panelKey = generateKeyPairSync('x25519');

async function gatewayCall(agent: AgentProcess, key: string): Promise<number> {
  const response = await fetch(`${agent.gatewayUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

function countsOf(file: string): { integrity: string; counts: Record<string, number> } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{
        name: string;
      }>
    ).map((t) => t.name);
    return {
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      counts: Object.fromEntries(
        tables.map((t) => [t, db.prepare(`SELECT COUNT(*) FROM "${t}"`).pluck().get() as number]),
      ),
    };
  } finally {
    db.close();
  }
}

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [AGENT_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

async function waitForExit(agent: AgentProcess): Promise<void> {
  await until(
    'the agent to stop for the restore',
    () => !existsSync(join(agent.dataDir, 'agent-state.json')),
    Boolean,
    {
      timeoutMs: 20_000,
    },
  );
  await agent.stop(); // reaps the process if it is still finishing
}

beforeAll(async () => {
  upstream = await startFakeAnthropic();
  const env = { SLOTDECK_AGENT_UPSTREAM_URL: upstream.url };
  source = await AgentProcess.start({ env });
  fresh = await AgentProcess.start({ env });
}, 60_000);

afterAll(async () => {
  await source?.destroy();
  await fresh?.destroy();
  await upstream?.close();
  rmSync(work, { recursive: true, force: true });
});

const SLOT_ENV_SECRET = 'ghp_r9SlotEnvSecretValue0123456789abcd';

describe('R9: backup under write load, restore onto a fresh agent (stand-in upstream)', () => {
  let before: { user: User; key: CreatedKey; slot: Slot; homeFile: string };
  let backup: BackupInfo;
  let downloaded: string;

  it('writes a verified backup while requests and writes go on', async () => {
    expect((await source.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY })).status).toBe(
      200,
    );
    const publicKey = rawPublicKey(panelKey.publicKey).toString('base64');
    expect((await source.request('PUT', '/api/v1/backups/key', { publicKey })).status).toBe(200);
    const settings = await source.request('PUT', '/api/v1/backups/settings', {
      enabled: true,
      intervalHours: 24,
      keepDaily: 7,
      keepWeekly: 4,
      includeHomes: true,
    });
    expect(settings.status).toBe(200);

    const user = (await source.request<User>('POST', '/api/v1/users', { username: 'alice' })).body;
    const key = (
      await source.request<CreatedKey>('POST', `/api/v1/users/${user.id}/keys`, {
        name: 'laptop',
        rateLimit: { requestsPerMinute: 100_000 },
      })
    ).body;
    expect(
      (
        await source.request('PUT', `/api/v1/users/${user.id}/quotas`, {
          quotas: [{ window: 'day', maxTokens: 1_000_000 }],
        })
      ).status,
    ).toBe(200);
    const slot = await source.createSlot({ name: 'kept', ownerId: user.id, env: { GITHUB_TOKEN: SLOT_ENV_SECRET } });
    const homeFile = join(slot.homeDir, 'notes.txt');
    mkdirSync(slot.homeDir, { recursive: true });
    writeFileSync(homeFile, 'what alice wrote\n');
    mkdirSync(join(slot.homeDir, '.cache'), { recursive: true });
    writeFileSync(join(slot.homeDir, '.cache', 'big.bin'), Buffer.alloc(1024 * 1024));
    expect(await gatewayCall(source, key.secret)).toBe(200);
    before = { user, key, slot, homeFile };

    // Load: gateway requests (usage rows) and users with keys being made, all through the backup.
    let stop = false;
    let served = 0;
    let made = 0;
    const load = [
      ...Array.from({ length: 4 }, async () => {
        while (!stop) if ((await gatewayCall(source, key.secret).catch(() => 0)) === 200) served++;
      }),
      (async () => {
        while (!stop) {
          const created = await source.request<User>('POST', '/api/v1/users', { username: `load${made}` });
          if (created.status === 201) {
            await source.request('POST', `/api/v1/users/${created.body.id}/keys`, { name: 'k' });
            made++;
          }
        }
      })(),
    ];
    await until('load to run', () => served > 20 && made > 3, Boolean, { timeoutMs: 20_000 });
    const ran = await source.request<BackupInfo>('POST', '/api/v1/backups');
    const servedDuring = served;
    await until('load after the backup', () => served > servedDuring + 20, Boolean, { timeoutMs: 20_000 });
    stop = true;
    await Promise.all(load);

    expect(ran.status, JSON.stringify(ran.body)).toBe(201);
    backup = ran.body;
    expect(backup.verified).toBe(true);
    expect(backup.manifest.secrets).toMatchObject({ included: true });
    expect(backup.manifest.secrets.files).toEqual(expect.arrayContaining(['upstream-key', 'auth-secret']));
    expect(backup.manifest.secrets.files).not.toContain('admin-token');
    expect(backup.manifest.homes.slots).toEqual([slot.id]);
    // The load went on during the backup: the source has more rows now than the snapshot.
    expect(countsOf(join(source.dataDir, 'agent.db')).counts.usage_events).toBeGreaterThan(
      backup.manifest.counts.usage_events!,
    );
    const list = await source.request<BackupList>('GET', '/api/v1/backups');
    expect(list.body.backups.map((b) => b.id)).toContain(backup.id);
    expect(list.body.status.lastSuccessAt).toBe(backup.createdAt);
  }, 90_000);

  it('downloads the backup; nothing secret is in it in plaintext', async () => {
    const response = await fetch(`${source.url}/api/v1/backups/${backup.id}/file`, {
      headers: { authorization: `Bearer ${source.token}` },
    });
    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length'))).toBe(backup.size);
    const bytes = Buffer.from(await response.arrayBuffer());
    downloaded = join(work, 'backup.tar');
    writeFileSync(downloaded, bytes);
    const secrets = join(source.dataDir, 'secrets');
    // Whatever the database holds is sealed too: slot env values, session tokens, password hashes, key hashes.
    const db = new Database(join(source.dataDir, 'agent.db'), { readonly: true });
    const fromDb = [
      ...(db.prepare('SELECT token FROM auth_session').pluck().all() as string[]),
      ...(db.prepare('SELECT password FROM auth_account WHERE password IS NOT NULL').pluck().all() as string[]),
    ];
    db.close();
    for (const secret of [
      FAKE_UPSTREAM_KEY,
      readFileSync(join(secrets, 'auth-secret'), 'utf8').trim(),
      source.token,
      before.key.secret,
      SLOT_ENV_SECRET,
      'SQLite format 3',
      'what alice wrote',
      ...fromDb,
    ])
      expect(bytes.includes(secret), secret.slice(0, 16)).toBe(false);
    // Caches are left out of the homes.
    expect(bytes.length).toBeLessThan(1024 * 1024);
  });

  it('restores onto a fresh agent: database, keys, quotas, usage, slots, homes and secrets are back', async () => {
    const freshToken = fresh.token;
    const upload = await fetch(`${fresh.url}/api/v1/backups/uploads`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${freshToken}`, 'content-type': 'application/octet-stream' },
      body: readFileSync(downloaded),
    });
    const uploaded = (await upload.json()) as BackupInfo;
    expect(upload.status, JSON.stringify(uploaded)).toBe(201);
    expect(uploaded).toMatchObject({ origin: 'upload', verified: true });

    // Without the data key the sealed secrets cannot come back: a clear refusal, nothing changed.
    const refused = await fresh.request<{ error: { code: string } }>(
      'POST',
      `/api/v1/backups/${uploaded.id}/restore`,
      {},
    );
    expect(refused.body.error.code).toBe('BACKUP_KEY_MISSING');
    const wrongKey = await fresh.request<{ error: { code: string } }>(
      'POST',
      `/api/v1/backups/${uploaded.id}/restore`,
      { dataKey: Buffer.alloc(32, 7).toString('base64') },
    );
    expect(wrongKey.body.error.code).toBe('BACKUP_KEY_MISMATCH');

    // The panel unwraps the data key itself; only that key, for this restore, goes to the agent.
    const dataKey = unwrapDataKey(panelKey.privateKey, uploaded.manifest.secrets.envelope!).toString('base64');
    // The panel pinned the source's signing key: the agent checks the file is signed by it.
    const signer = (await source.request<{ publicKey: string }>('GET', '/api/v1/backups/signing-key')).body.publicKey;
    expect(uploaded.signer.publicKey).toBe(signer);
    const restore = await fresh.request<RestoreAccepted>('POST', `/api/v1/backups/${uploaded.id}/restore`, {
      dataKey,
      trustedSigners: [signer],
    });
    expect(restore.status, JSON.stringify(restore.body)).toBe(202);
    expect(restore.body.secretsRestored).toContain('upstream-key');
    expect(restore.body.secretsKept).toEqual(['admin-token', 'backup-signing-key']);
    // The agent stops itself; PM2 (on hosts) or the panel ("This computer") starts it again: here, the test.
    await waitForExit(fresh);
    const started = Date.now();
    await fresh.launch();
    console.log(`R9 restore: agent back in ${Date.now() - started} ms`);

    // Its own admin token was kept: the panel stays connected.
    expect(fresh.token).toBe(freshToken);
    const { integrity, counts } = countsOf(join(fresh.dataDir, 'agent.db'));
    expect(integrity).toBe('ok');
    for (const [table, rows] of Object.entries(backup.manifest.counts)) {
      if (GROWING.has(table)) expect(counts[table], table).toBeGreaterThanOrEqual(rows);
      else expect({ table, rows: counts[table] }).toEqual({ table, rows });
    }
    // A key made before the backup gets through the restored gateway, with the restored upstream key.
    expect(await gatewayCall(fresh, before.key.secret)).toBe(200);
    const quotas = await fresh.request<{ quotas: Array<{ window: string }> }>(
      'GET',
      `/api/v1/users/${before.user.id}/quotas`,
    );
    expect(quotas.body.quotas.map((q) => q.window)).toEqual(['day']);
    expect(readFileSync(join(fresh.dataDir, 'secrets', 'auth-secret'), 'utf8')).toBe(
      readFileSync(join(source.dataDir, 'secrets', 'auth-secret'), 'utf8'),
    );
    // The slot is back, under this data dir, with its home (caches left out), and running again.
    const slot = await fresh.slot(before.slot.id);
    expect(slot.homeDir.startsWith(fresh.dataDir)).toBe(true);
    expect(readFileSync(join(slot.homeDir, 'notes.txt'), 'utf8')).toBe('what alice wrote\n');
    expect(existsSync(join(slot.homeDir, '.cache', 'big.bin'))).toBe(false);
    await until(
      'the restored slot to run',
      async () => (await fresh.slot(before.slot.id)).state,
      (state) => state === 'running',
      {
        timeoutMs: 20_000,
      },
    );
  }, 120_000);

  it('round-trips through the CLI: backup of a running agent, restore that stops the agent', async () => {
    const keyFile = join(work, 'panel-key.pem');
    writeFileSync(keyFile, panelKey.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const out = join(work, 'cli-backup.tar');
    const made = await runCli(['backup', '--data-dir', source.dataDir, '--out', out]);
    expect(made.code, made.out).toBe(0);
    expect(made.out).toMatch(/verified \(integrity_check ok/);
    expect(made.out).toMatch(/sealed to the panel's key .*\(database, \d+ secret files/);
    const signerFile = join(work, 'signer.pub');
    writeFileSync(
      signerFile,
      (await source.request<{ publicKey: string }>('GET', '/api/v1/backups/signing-key')).body.publicKey,
    );
    const late = (await source.request<CreatedKey>('POST', `/api/v1/users/${before.user.id}/keys`, { name: 'late' }))
      .body;

    const restored = await runCli([
      'restore',
      out,
      '--data-dir',
      fresh.dataDir,
      '--key-file',
      keyFile,
      '--signer-key',
      signerFile,
    ]);
    expect(restored.out).toMatch(/signature checked/);
    expect(restored.code, restored.out).toBe(0);
    expect(restored.out).toMatch(/stopping the agent/);
    expect(restored.out).toMatch(/restored: database, secrets/);
    await waitForExit(fresh);
    await fresh.launch();
    expect(await gatewayCall(fresh, before.key.secret)).toBe(200);
    // A key made after the CLI backup is not in it.
    expect(await gatewayCall(fresh, late.secret)).toBe(401);

    const noKey = await runCli(['restore', out, '--data-dir', join(work, 'nowhere')]);
    expect(noKey.code).toBe(2);
    expect(noKey.out).toMatch(/--key-file/);
  }, 90_000);
});
