/**
 * What a hostile backup or a hostile slot cannot do: a restore unpacks only into the agent's own slot folders (never a
 * folder the backup's database names, never on isolated hosts, never an archive with absolute names, `..` or links
 * out); a backup never follows a home that is a link; a backup from an unknown host needs a confirmation; uploads
 * need free space and come one at a time; reading the settings never writes; the CLI refuses another account.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from '../../../../remote-agent/node_modules/pino/pino.js';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../../remote-agent/src/db/database.js';
import { untarInto, writeBackup, tarFolder } from '../../../../remote-agent/src/modules/backups/bundle.js';
import { requireDataDirOwner } from '../../../../remote-agent/src/modules/backups/cli.js';
import { rawPublicKey, unwrapDataKey } from '../../../../remote-agent/src/modules/backups/crypto.js';
import { applyPendingRestore, stageRestore } from '../../../../remote-agent/src/modules/backups/restore.js';
import { BackupService } from '../../../../remote-agent/src/modules/backups/service.js';
import { BackupStore } from '../../../../remote-agent/src/modules/backups/store.js';

const root = mkdtempSync(join(tmpdir(), 'sd-backup-hard-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const panel = generateKeyPairSync('x25519');
const publicKey = rawPublicKey(panel.publicKey).toString('base64');
const signingKey = generateKeyPairSync('ed25519').privateKey;

function insertSlot(db: ReturnType<typeof openDatabase>, id: string, home: string): void {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO slots (id,name,command_json,argv_json,env_json,work_dir,work_dir_managed,home_dir,terminal,desired_state,cols,rows,created_at,updated_at)
     VALUES (?,?,'[]','["/bin/true"]','{}',?,0,?,'builtin','stopped',80,24,?,?)`,
  ).run(id, id, home, home, now, now);
}

/** A data dir with two slots: one whose home the agent made, one whose home_dir names a folder elsewhere. */
async function backupNamingForeignFolder(victim: string) {
  const source = join(root, `source-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(source, { recursive: true });
  const db = openDatabase(join(source, 'agent.db'));
  const ownHome = join(source, 'slots', 'ownslot001', 'home');
  mkdirSync(ownHome, { recursive: true });
  writeFileSync(join(ownHome, 'notes.txt'), 'mine\n');
  insertSlot(db, 'ownslot001', ownHome);
  insertSlot(db, 'evilslot01', victim);
  db.close();
  const planted = join(source, 'planted');
  mkdirSync(planted);
  writeFileSync(join(planted, 'planted.sh'), '#!/bin/sh\necho owned\n');
  const info = await writeBackup({
    dbFile: join(source, 'agent.db'),
    dataDir: source,
    backupsDir: join(source, 'backups'),
    origin: 'manual',
    publicKey,
    homes: [
      { slotId: 'ownslot001', home: ownHome, work: null },
      { slotId: 'evilslot01', home: planted, work: null },
    ],
    homesReason: null,
    signingKey,
  });
  return { file: join(source, 'backups', `${info.id}.tar`), info };
}

describe('restore into slot folders', () => {
  it('unpacks the agent’s own slot homes, and refuses (and reports) a home the database names elsewhere', async () => {
    const victim = join(root, 'precious');
    mkdirSync(victim);
    writeFileSync(join(victim, 'important.txt'), 'do not lose me\n');
    const { file, info } = await backupNamingForeignFolder(victim);
    const target = join(root, 'target');
    mkdirSync(target);
    await stageRestore({
      file,
      backupId: info.id,
      dataDir: target,
      dataKey: unwrapDataKey(panel.privateKey, info.manifest.secrets.envelope!),
      skipSecrets: true,
      trustedSigners: null,
      allowUnknownSigner: false,
    });
    const applied = await applyPendingRestore(target);
    expect(readdirSync(victim)).toEqual(['important.txt']);
    expect(applied!.homes).toEqual(['ownslot001/home']);
    expect(applied!.homesSkipped.join(' ')).toMatch(/evilslot01\/home .*not this agent's slot folder/);
    expect(readFileSync(join(target, 'slots', 'ownslot001', 'home', 'notes.txt'), 'utf8')).toBe('mine\n');
  });

  it('unpacks no home on an isolated host', async () => {
    const { file, info } = await backupNamingForeignFolder(join(root, 'unused'));
    const target = join(root, 'target-isolated');
    mkdirSync(target);
    await stageRestore({
      file,
      backupId: info.id,
      dataDir: target,
      dataKey: unwrapDataKey(panel.privateKey, info.manifest.secrets.envelope!),
      skipSecrets: true,
      trustedSigners: null,
      allowUnknownSigner: false,
    });
    const applied = await applyPendingRestore(target, () => undefined, { isolated: true });
    expect(applied!.homes).toEqual([]);
    expect(applied!.homesSkipped.join(' ')).toMatch(/ownslot001\/home \(slots run as accounts of their own/);
    expect(existsSync(join(target, 'slots', 'ownslot001', 'home'))).toBe(false);
  });

  it('a backup signed by a host the admin does not trust is refused unless confirmed', async () => {
    const { file, info } = await backupNamingForeignFolder(join(root, 'unused2'));
    const target = join(root, 'target-signer');
    mkdirSync(target);
    const stage = (allowUnknownSigner: boolean) =>
      stageRestore({
        file,
        backupId: info.id,
        dataDir: target,
        dataKey: unwrapDataKey(panel.privateKey, info.manifest.secrets.envelope!),
        skipSecrets: true,
        trustedSigners: [Buffer.alloc(32, 7).toString('base64')],
        allowUnknownSigner,
      });
    await expect(stage(false)).rejects.toMatchObject({ code: 'BACKUP_SIGNER_UNKNOWN' });
    expect(existsSync(join(target, 'restore-pending'))).toBe(false);
    await expect(stage(true)).resolves.toMatchObject({ signer: info.signer.publicKey });
  });
});

/** A tar made with Python's tarfile, so members GNU tar would never write can be put in. */
function craftTar(
  target: string,
  members: Array<{ name: string; type: 'file' | 'symlink' | 'hardlink'; link?: string }>,
): void {
  const script = `
import tarfile, io, json, sys
members = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], 'w') as t:
    for m in members:
        info = tarfile.TarInfo(m['name'])
        if m['type'] == 'file':
            data = b'pwned\\n'; info.size = len(data); t.addfile(info, io.BytesIO(data))
        else:
            info.type = tarfile.SYMTYPE if m['type'] == 'symlink' else tarfile.LNKTYPE
            info.linkname = m['link']; t.addfile(info)
`;
  execFileSync('python3', ['-c', script, target, JSON.stringify(members)]);
}

describe('slot archives', () => {
  const cases: Array<[string, Parameters<typeof craftTar>[1]]> = [
    ['an absolute name', [{ name: join(root, 'abs-pwned'), type: 'file' }]],
    ['a .. name', [{ name: '../dotdot-pwned', type: 'file' }]],
    ['a hard link out', [{ name: 'passwd', type: 'hardlink', link: '/etc/passwd' }]],
  ];
  it.each(cases)('refuses an archive with %s and keeps the folder as it was', async (_, members) => {
    const archive = join(root, `crafted-${Math.random().toString(36).slice(2)}.tar`);
    craftTar(archive, members);
    const folder = join(root, 'slots', 'x', 'home');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'kept.txt'), 'kept\n');
    await expect(untarInto(archive, folder)).rejects.toThrow(/unsafe member/);
    expect(readdirSync(folder)).toEqual(['kept.txt']);
    expect(existsSync(join(root, 'abs-pwned'))).toBe(false);
    expect(existsSync(join(root, 'slots', 'x', 'dotdot-pwned'))).toBe(false);
  });

  it('never writes through a link the archive itself makes', async () => {
    const outside = join(root, 'outside');
    mkdirSync(outside, { recursive: true });
    const archive = join(root, 'crafted-link.tar');
    craftTar(archive, [
      { name: 'escape', type: 'symlink', link: outside },
      { name: 'escape/pwned', type: 'file' },
    ]);
    const folder = join(root, 'slots', 'y', 'home');
    mkdirSync(folder, { recursive: true });
    await untarInto(archive, folder).catch(() => undefined);
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe('homes at backup time', () => {
  it('does not follow a home that is a link (to the secrets, say): that slot is left out, with why', async () => {
    const secrets = join(root, 'agent-secrets');
    mkdirSync(secrets, { recursive: true });
    writeFileSync(join(secrets, 'admin-token'), 'sd_admin_should_never_leave\n');
    const home = join(root, 'linked-home');
    symlinkSync(secrets, home);
    await expect(tarFolder(home, join(root, 'linked.tar'))).rejects.toThrow(/not a folder/);
    const own = mkdtempSync(join(root, 'owned-'));
    await expect(tarFolder(own, join(root, 'foreign.tar'), (process.getuid?.() ?? 0) + 1)).rejects.toThrow(
      /owned by uid/,
    );
  });
});

describe('CLI as another account', () => {
  it('refuses to write a data dir that belongs to another uid, and says how to run it', () => {
    const uid = process.getuid?.() ?? 0;
    expect(() => requireDataDirOwner(root, uid + 1)).toThrow(/sudo -u slotdeck slotdeck-agent/);
    expect(() => requireDataDirOwner(root, uid)).not.toThrow();
  });
});

describe('settings and uploads', () => {
  it('reading the backup settings of a fresh agent writes nothing (a full disk cannot fail health)', () => {
    const dir = mkdtempSync(join(root, 'fresh-'));
    const db = openDatabase(join(dir, 'agent.db'));
    db.pragma('query_only = ON');
    const store = new BackupStore(db);
    expect(store.settings().intervalHours).toBe(24);
    expect(store.outcome().lastSuccessAt).toBeNull();
    expect(store.key().registered).toBe(false);
    db.pragma('query_only = OFF');
    expect(db.prepare('SELECT COUNT(*) FROM backup_settings').pluck().get()).toBe(0);
    db.close();
  });

  it('refuses an upload that would not fit (STORAGE_FULL) and a second one at once (BACKUP_IN_PROGRESS)', async () => {
    const dir = mkdtempSync(join(root, 'uploads-'));
    const db = openDatabase(join(dir, 'agent.db'));
    let free = 10 * 1024 * 1024;
    const service = new BackupService({
      db,
      dataDir: dir,
      logger: pino({ level: 'silent' }),
      slotFiles: () => [],
      isolated: false,
      requestRestart: () => undefined,
      freeBytes: () => free,
    });
    await expect(service.receiveUpload(new PassThrough(), 1024)).rejects.toMatchObject({
      code: 'STORAGE_FULL',
      status: 507,
    });
    free = 10 * 1024 ** 3;
    const slow = new PassThrough();
    const first = service.receiveUpload(slow, 1024);
    await expect(service.receiveUpload(new PassThrough(), 1024)).rejects.toMatchObject({ code: 'BACKUP_IN_PROGRESS' });
    slow.end(Buffer.alloc(1024));
    await expect(first).rejects.toMatchObject({ code: 'BACKUP_FILE_INVALID' });
    db.close();
  });
});
