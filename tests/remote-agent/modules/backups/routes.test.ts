/**
 * The backup routes on an agent built with buildApp: who may call them (missing, wrong and stolen credentials), what
 * they validate (a fuzz test), and that a backup's file holds none of the agent's secrets in plaintext while the
 * panel's key opens them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupInfo, BackupList, CreateKeyBody } from '../../../../remote-agent/src/contract/index.js';
import {
  manifestBinding,
  openSealedPart,
  rawPublicKey,
  unwrapDataKey,
  verifyManifest,
} from '../../../../remote-agent/src/modules/backups/crypto.js';
import { readTarIndex } from '../../../../remote-agent/src/modules/backups/tar.js';
import { startAuthHarness, type Harness } from '../auth/harness.js';

const B = '/api/v1/backups';
const UPSTREAM = 'sk-ant-api03-unit-upstream-secret-ABCDEFGHIJ';
let h: Harness;
let userKey: string;
let session: { cookie: string; csrf: string };
const panel = generateKeyPairSync('x25519');
const publicKey = rawPublicKey(panel.publicKey).toString('base64');

beforeAll(async () => {
  h = await startAuthHarness();
  const ada = h.newUser('ada');
  userKey = h.agent.users.createKey(ada.id, CreateKeyBody.parse({ name: 'laptop' })).secret;
  const signedIn = await h.signedInUser('grace', 'a violet lantern 42 sings');
  session = { cookie: signedIn.jar.header()!, csrf: signedIn.csrf };
  expect((await h.admin('PUT', '/api/v1/gateway/upstream-key', { apiKey: UPSTREAM })).status).toBe(200);
}, 60_000);
afterAll(async () => {
  await h?.close();
});

const ROUTES: Array<[string, string, unknown]> = [
  ['GET', B, undefined],
  ['POST', B, undefined],
  ['GET', `${B}/settings`, undefined],
  ['PUT', `${B}/settings`, { enabled: false, intervalHours: 1, keepDaily: 1, keepWeekly: 0, includeHomes: false }],
  ['PUT', `${B}/key`, { publicKey: Buffer.alloc(32, 1).toString('base64') }],
  ['GET', `${B}/signing-key`, undefined],
  ['DELETE', `${B}/backup-20261201T000000Z-abcd`, undefined],
  ['POST', `${B}/backup-20261201T000000Z-abcd/restore`, {}],
  ['GET', `${B}/backup-20261201T000000Z-abcd/file`, undefined],
];

describe('credentials', () => {
  it.each([
    ['no token', null, 'AUTH_TOKEN_MISSING'],
    ['a wrong token', 'not-the-admin-token-0123456789abcdef', 'AUTH_TOKEN_INVALID'],
  ])('refuses %s on every route (401 %s) and changes nothing', async (_, token, code) => {
    for (const [method, url, body] of ROUTES) {
      const answer = await h.admin(method, url, body, token);
      expect(answer, `${method} ${url}`).toMatchObject({ status: 401, body: { error: { code } } });
    }
    const upload = await h.agent.app.inject({
      method: 'PUT',
      url: `${B}/uploads`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(1024),
    });
    expect(upload.statusCode).toBe(401);
    expect(h.agent.backups.settings().enabled).toBe(true);
    expect(h.agent.backups.list().backups).toEqual([]);
  });

  it('refuses stolen credentials of another kind (a user key, a portal session) and is not on the public listener', async () => {
    for (const [method, url, body] of ROUTES) {
      expect((await h.admin(method, url, body, userKey)).status, `${method} ${url}`).toBe(401);
      const withSession = await h.agent.app.inject({
        method: method as 'GET',
        url,
        headers: { cookie: session.cookie, 'x-slotdeck-csrf': session.csrf },
        ...(body === undefined ? {} : { payload: body as object }),
      });
      expect(withSession.statusCode, `${method} ${url} with a session`).toBe(401);
      const publicSide = await h.site(method, url, {
        headers: { authorization: `Bearer ${userKey}`, cookie: session.cookie },
        ...(body === undefined ? {} : { payload: body }),
        csrf: session.csrf,
      });
      expect(publicSide.status, `${method} ${url} on the public listener`).toBe(404);
    }
    expect(h.agent.backups.list().key.registered).toBe(false);
  });
});

describe('validation', () => {
  it('answers 400 VALIDATION_FAILED naming the field, 404 BACKUP_NOT_FOUND for an unknown backup', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      [
        'PUT',
        `${B}/settings`,
        { enabled: true, intervalHours: 0, keepDaily: 7, keepWeekly: 4, includeHomes: false },
        'body.intervalHours',
      ],
      ['PUT', `${B}/key`, { publicKey: 'not a key' }, 'body.publicKey'],
      ['POST', `${B}/../../etc/restore`, {}, 'params.id'],
      ['POST', `${B}/backup-x/restore`, {}, 'params.id'],
      ['POST', `${B}/backup-20261201T000000Z-abcd/restore`, { dataKey: 'short' }, 'body.dataKey'],
    ];
    for (const [method, url, body, path] of cases) {
      const answer = await h.admin<{ error: { code: string; issues?: Array<{ path: string }> } }>(method, url, body);
      if (answer.status === 404 && url.includes('..')) continue; // the router normalises the path away
      expect(answer.status, `${method} ${url}`).toBe(400);
      expect(answer.body.error.code).toBe('VALIDATION_FAILED');
      expect(answer.body.error.issues?.map((i) => i.path)).toContain(path);
    }
    const missing = await h.admin<{ error: { code: string } }>('GET', `${B}/backup-20261201T000000Z-abcd/file`);
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'BACKUP_NOT_FOUND' } } });
    const notTar = await h.agent.app.inject({
      method: 'PUT',
      url: `${B}/uploads`,
      headers: {
        authorization: `Bearer ${h.agent ? readFileSync(join(h.dir, 'secrets', 'admin-token'), 'utf8').trim() : ''}`,
        'content-type': 'application/octet-stream',
      },
      payload: Buffer.from('this is not a backup at all'.repeat(40)),
    });
    expect(notTar.statusCode).toBe(400);
    expect(notTar.json()).toMatchObject({ error: { code: 'BACKUP_FILE_INVALID' } });
  });

  it('never answers 5xx to any body on any route (fuzz)', async () => {
    const bodies = fc.oneof(
      fc.anything(),
      fc.record({
        enabled: fc.anything(),
        intervalHours: fc.anything(),
        keepDaily: fc.integer(),
        keepWeekly: fc.integer(),
        includeHomes: fc.anything(),
      }),
      fc.record({ publicKey: fc.string(), dataKey: fc.string(), skipSecrets: fc.anything() }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES.filter(([m]) => m !== 'GET')),
        bodies,
        fc.string(),
        async ([method, url], body, id) => {
          const target = url.replace('backup-20261201T000000Z-abcd', encodeURIComponent(id) || 'x');
          const answer = await h.admin<{ error?: { code: string } }>(method, target, body);
          expect(answer.status, `${method} ${target} ${JSON.stringify(body)}`).toBeLessThan(500);
          if (answer.status >= 400) expect(answer.body.error?.code).toMatch(/^[A-Z]+_[A-Z_]+$/);
        },
      ),
      { numRuns: 150 },
    );
    // The fuzz may have changed the settings; put the defaults back for the tests below.
    await h.admin('PUT', `${B}/settings`, {
      enabled: true,
      intervalHours: 24,
      keepDaily: 7,
      keepWeekly: 4,
      includeHomes: false,
    });
  });
});

describe('secrets', () => {
  it('without a key no backup is written: BACKUP_KEY_MISSING says to open the host in the panel, and the status shows it', async () => {
    const made = await h.admin<{ error: { code: string; message: string } }>('POST', B);
    expect(made.status).toBe(409);
    expect(made.body.error.code).toBe('BACKUP_KEY_MISSING');
    expect(made.body.error.message).toMatch(/open this host in the panel/);
    const list = BackupList.parse((await h.admin('GET', B)).body);
    expect(list.backups).toEqual([]);
    expect(list.status.lastError).toMatch(/No backup key/);
  });

  it('seals the whole backup to the panel key: no env secret, session token, password hash or secret file in the file', async () => {
    expect((await h.admin('PUT', `${B}/key`, { publicKey })).status).toBe(200);
    const envSecret = 'ghp_unitEnvSecretValue0123456789abcdef';
    const now = new Date().toISOString();
    h.db
      .prepare(
        `INSERT INTO slots (id,name,command_json,argv_json,env_json,work_dir,work_dir_managed,home_dir,terminal,desired_state,cols,rows,created_at,updated_at)
         VALUES ('envslot001','ci','[]','["/bin/true"]',?,?,0,?,'builtin','stopped',80,24,?,?)`,
      )
      .run(JSON.stringify({ GITHUB_TOKEN: envSecret }), h.dir, h.dir, now, now);
    const sessionToken = (h.db.prepare('SELECT token FROM auth_session LIMIT 1').pluck().get() as string) ?? '';
    const passwordHash =
      (h.db.prepare('SELECT password FROM auth_account WHERE password IS NOT NULL LIMIT 1').pluck().get() as string) ??
      '';
    expect(sessionToken.length).toBeGreaterThan(10);
    expect(passwordHash.length).toBeGreaterThan(10);

    const made = BackupInfo.parse((await h.admin('POST', B)).body);
    const file = join(h.dir, 'backups', `${made.id}.tar`);
    const bytes = readFileSync(file);
    const secrets = ['auth-secret', 'upstream-key'].map((name) =>
      readFileSync(join(h.dir, 'secrets', name), 'utf8').trim(),
    );
    const adminToken = readFileSync(join(h.dir, 'secrets', 'admin-token'), 'utf8').trim();
    for (const secret of [...secrets, adminToken, userKey, envSecret, sessionToken, passwordHash, 'SQLite format 3'])
      expect(bytes.includes(secret), secret.slice(0, 12)).toBe(false);

    // The panel's private key opens every part: the database has the env value, the secrets part the upstream key.
    const members = await readTarIndex(file);
    const member = (name: string) => members.find((m) => m.name === name)!;
    const dataKey = unwrapDataKey(panel.privateKey, made.manifest.secrets.envelope!);
    const binding = manifestBinding(made.manifest);
    const out = join(h.dir, 'opened-secrets.json');
    await openSealedPart(
      dataKey,
      binding,
      'secrets.enc',
      file,
      member('secrets.enc').offset,
      member('secrets.enc').size,
      out,
    );
    const opened = JSON.parse(readFileSync(out, 'utf8')) as { files: Record<string, string> };
    rmSync(out);
    expect(Buffer.from(opened.files['upstream-key']!, 'base64').toString()).toBe(UPSTREAM);
    expect(opened.files['admin-token']).toBeUndefined();
    expect(opened.files['backup-signing-key']).toBeUndefined();
    const db = join(h.dir, 'opened.db');
    await openSealedPart(dataKey, binding, 'agent.db', file, member('agent.db').offset, member('agent.db').size, db);
    expect(readFileSync(db).includes(envSecret)).toBe(true);
    rmSync(db);
    // A part opened under another part's name (moved parts) fails; so does a different key.
    await expect(
      openSealedPart(dataKey, binding, 'agent.db', file, member('secrets.enc').offset, member('secrets.enc').size, out),
    ).rejects.toThrow();
    const other = generateKeyPairSync('x25519');
    expect(() => unwrapDataKey(other.privateKey, made.manifest.secrets.envelope!)).toThrow();

    const list = BackupList.parse((await h.admin('GET', B)).body);
    expect(list.key.keyId).toBe(made.manifest.secrets.envelope!.keyId);
    expect(list.status.lastSuccessAt).toBe(made.createdAt);
    // The agent never had the private key: not in its database, its logs, or any answer.
    const privatePem = panel.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const privateBody = privatePem.split('\n')[1]!;
    for (const name of ['agent.db', 'agent.db-wal'])
      expect(readFileSync(join(h.dir, name)).includes(privateBody)).toBe(false);
    expect(h.logs.join('\n')).not.toContain(privateBody);
  });

  it('signs each backup with the key GET /backups/signing-key shows', async () => {
    const key = (await h.admin<{ publicKey: string; keyId: string }>('GET', `${B}/signing-key`)).body;
    const { backups } = BackupList.parse((await h.admin('GET', B)).body);
    expect(backups[0]!.signer.publicKey).toBe(key.publicKey);
    expect(verifyManifest(key.publicKey, backups[0]!.manifest, backups[0]!.signer.signature)).toBe(true);
    // The signing key stays in the secrets dir: never in the database or an answer.
    const pem = readFileSync(join(h.dir, 'secrets', 'backup-signing-key'), 'utf8').split('\n')[1]!;
    expect(JSON.stringify(backups)).not.toContain(pem);
  });

  it('a restore without the data key is refused with BACKUP_KEY_MISSING, with a wrong one BACKUP_KEY_MISMATCH', async () => {
    const { backups } = BackupList.parse((await h.admin('GET', B)).body);
    const sealedOne = backups[0]!;
    expect((await h.admin('POST', `${B}/${sealedOne.id}/restore`, {})).body).toMatchObject({
      error: { code: 'BACKUP_KEY_MISSING' },
    });
    expect(
      (await h.admin('POST', `${B}/${sealedOne.id}/restore`, { dataKey: Buffer.alloc(32).toString('base64') })).body,
    ).toMatchObject({ error: { code: 'BACKUP_KEY_MISMATCH' } });
  });

  it('a download is the backup file itself', async () => {
    const { backups } = BackupList.parse((await h.admin('GET', B)).body);
    const answer = await h.admin<string>('GET', `${B}/${backups[0]!.id}/file`);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-length']).toBe(String(backups[0]!.size));
  });
});
