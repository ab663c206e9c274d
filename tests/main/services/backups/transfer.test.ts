/**
 * The panel's backup service against a real agent (buildApp, listening on loopback) through its AgentClient: the
 * panel's key is registered on first look, a backup is downloaded to a file with progress, uploaded back with
 * progress and listed as verified.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../../../src/main/services/agent/agent-client';
import { BackupKeys } from '../../../../src/main/services/backups/keys';
import { BackupService, type BackupProgress } from '../../../../src/main/services/backups/service';
import { startAuthHarness, type Harness } from '../../../remote-agent/modules/auth/harness';

let h: Harness;
let service: BackupService;
let savedTo = '';
const progress: BackupProgress[] = [];
const work = mkdtempSync(join(tmpdir(), 'sd-backup-panel-'));
const entries = new Map<string, string>();
const pins = new Map<string, string[]>();

beforeAll(async () => {
  h = await startAuthHarness();
  const baseUrl = await h.agent.app.listen({ host: '127.0.0.1', port: 0 });
  const token = readFileSync(join(h.dir, 'secrets', 'admin-token'), 'utf8').trim();
  const client = new AgentClient(() => ({ baseUrl, token, label: 'test host' }));
  service = new BackupService({
    client: () => client,
    keys: new BackupKeys({
      get: (k) => Promise.resolve(entries.get(k) ?? null),
      set: (k, v) => Promise.resolve(void entries.set(k, v)),
    }),
    progress: (event) => progress.push(event),
    pickSaveFile: (name) => Promise.resolve((savedTo = join(work, name))),
    signers: {
      hostIds: () => [...pins.keys()],
      get: (id) => pins.get(id) ?? [],
      set: (id, keys) => void pins.set(id, keys),
    },
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('backups from the panel', () => {
  it('registers the panel key on first look, downloads with progress, uploads back with progress', async () => {
    const first = await service.list('local');
    expect(first.key.registered).toBe(true);
    expect((await service.keyInfo('local')).matches).toBe(true);
    const made = await service.run('local');
    expect(made.manifest.secrets.included).toBe(true);

    const signal = new AbortController().signal;
    const downloaded = await service.download('local', made.id, signal);
    expect(downloaded.savedTo).toBe(savedTo);
    expect(statSync(savedTo).size).toBe(made.size);
    expect(progress.at(-1)).toMatchObject({ direction: 'download', bytes: made.size, total: made.size, done: true });

    const uploaded = await service.upload('local', savedTo, signal);
    expect(uploaded).toMatchObject({ origin: 'upload', verified: true });
    expect(uploaded.manifest.counts).toEqual(made.manifest.counts);
    expect(progress.at(-1)).toMatchObject({ direction: 'upload', bytes: made.size, total: made.size, done: true });
    const list = await service.list('local');
    expect(list.backups.map((b) => b.id)).toEqual(expect.arrayContaining([made.id, uploaded.id]));
    // Nothing of the panel's private key reached the agent's database or log.
    const privateBody = entries.get('backup-key')!.split('\n')[1]!;
    expect(readFileSync(join(h.dir, 'agent.db')).includes(privateBody)).toBe(false);
    expect(readFileSync(join(h.dir, 'agent.db-wal')).includes(privateBody)).toBe(false);
    expect(h.logs.join('\n')).not.toContain(privateBody);
  });

  it('refuses a file that is not a backup with BACKUP_FILE_INVALID, and a path that is not there', async () => {
    const signal = new AbortController().signal;
    await expect(service.upload('local', join(work, 'missing.tar'), signal)).rejects.toMatchObject({
      code: 'BACKUP_FILE_INVALID',
    });
    const bogus = join(work, 'bogus.tar');
    (await import('node:fs')).writeFileSync(bogus, 'not a tar file '.repeat(100));
    await expect(service.upload('local', bogus, signal)).rejects.toMatchObject({ code: 'BACKUP_FILE_INVALID' });
  });

  it('pins the host signing key, and refuses a backup signed by an unknown host (BACKUP_SIGNER_UNKNOWN) or changed after signing (BACKUP_SIGNATURE_INVALID)', async () => {
    await service.list('local');
    expect(pins.get('local')).toEqual([
      (await h.admin<{ publicKey: string }>('GET', '/api/v1/backups/signing-key')).body.publicKey,
    ]);
    const { backups } = await service.list('local');
    const { writeBackup } = await import('../../../../remote-agent/src/modules/backups/bundle');
    const { generateKeyPairSync } = await import('node:crypto');
    // A backup made by another host's key (same panel key: it could be any host's, or a forger's).
    const stranger = await writeBackup({
      dbFile: join(h.dir, 'agent.db'),
      dataDir: h.dir,
      backupsDir: join(work, 'stranger'),
      origin: 'manual',
      publicKey: (
        await new BackupKeys({
          get: (k) => Promise.resolve(entries.get(k) ?? null),
          set: () => Promise.resolve(),
        }).publicKey()
      ).publicKey,
      homes: null,
      homesReason: 'off',
      signingKey: generateKeyPairSync('ed25519').privateKey,
    });
    const signal = new AbortController().signal;
    const uploaded = await service.upload('local', join(work, 'stranger', `${stranger.id}.tar`), signal);
    const refusal = await service.restore('local', uploaded.id, false, false, signal).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ code: 'BACKUP_SIGNER_UNKNOWN' });
    expect((refusal as Error).message).toMatch(/unknown host/);
    // The agent enforces it too, on the file itself, whatever the panel checked.
    const direct = await h.admin<{ error: { code: string } }>('POST', `/api/v1/backups/${uploaded.id}/restore`, {
      dataKey: Buffer.alloc(32).toString('base64'),
      trustedSigners: pins.get('local'),
    });
    expect(direct.body.error.code).toBe('BACKUP_SIGNER_UNKNOWN');
    // A manifest changed after signing (here: the counts) is refused by the agent on upload, confirmation or not.
    const own = backups[0]!;
    const tampered = await tamperManifest(join(h.dir, 'backups', `${own.id}.tar`), join(work, 'tampered.tar'));
    await expect(service.upload('local', tampered, signal)).rejects.toMatchObject({ code: 'BACKUP_SIGNATURE_INVALID' });
  });
});

/** Rewrites a backup with one more row counted in its manifest (the signature left as it was). */
async function tamperManifest(source: string, target: string): Promise<string> {
  const { readTarIndex, readMember, extractMember, writeTar } =
    await import('../../../../remote-agent/src/modules/backups/tar');
  const dir = mkdtempSync(join(work, 'tamper-'));
  const entries: Array<{ name: string; file: string }> = [];
  for (const member of await readTarIndex(source)) {
    const file = join(dir, member.name.replace(/\//g, '_'));
    if (member.name === 'manifest.json') {
      const manifest = JSON.parse((await readMember(source, member)).toString()) as { counts: Record<string, number> };
      manifest.counts.users = (manifest.counts.users ?? 0) + 1;
      (await import('node:fs')).writeFileSync(file, JSON.stringify(manifest));
    } else await extractMember(source, member, file);
    entries.push({ name: member.name, file });
  }
  await writeTar(target, entries);
  return target;
}
