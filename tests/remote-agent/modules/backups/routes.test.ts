/**
 * The backup routes on an agent built with buildApp: who may call them (missing, wrong and stolen credentials), what
 * they validate (a fuzz test), and that a backup's file holds none of the agent's secrets in plaintext while the
 * panel's key opens them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupInfo, BackupList, CreateKeyBody } from '../../../../remote-agent/src/contract/index.js';
import { openWithKey, rawPublicKey, unwrapDataKey } from '../../../../remote-agent/src/modules/backups/crypto.js';
import { readMember, readTarIndex } from '../../../../remote-agent/src/modules/backups/tar.js';
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
  it('without a key the backup runs and says its secrets were left out', async () => {
    const made = await h.admin<BackupInfo>('POST', B);
    expect(made.status).toBe(201);
    expect(made.body.verified).toBe(true);
    expect(made.body.manifest.secrets).toMatchObject({ included: false, files: [] });
    expect(made.body.manifest.secrets.reason).toMatch(/No backup key is registered/);
  });

  it('seals them to the panel key: the file holds none in plaintext; the private key opens them', async () => {
    expect((await h.admin('PUT', `${B}/key`, { publicKey })).status).toBe(200);
    const made = BackupInfo.parse((await h.admin('POST', B)).body);
    const file = join(h.dir, 'backups', `${made.id}.tar`);
    const bytes = readFileSync(file);
    const secrets = ['auth-secret', 'upstream-key'].map((name) =>
      readFileSync(join(h.dir, 'secrets', name), 'utf8').trim(),
    );
    const adminToken = readFileSync(join(h.dir, 'secrets', 'admin-token'), 'utf8').trim();
    for (const secret of [...secrets, adminToken, userKey]) expect(bytes.includes(secret)).toBe(false);

    const members = await readTarIndex(file);
    const sealed = await readMember(
      file,
      members.find((m) => m.name === 'secrets.enc')!,
    );
    const dataKey = unwrapDataKey(panel.privateKey, made.manifest.secrets.envelope!);
    const opened = JSON.parse(openWithKey(dataKey, sealed).toString('utf8')) as { files: Record<string, string> };
    expect(Buffer.from(opened.files['upstream-key']!, 'base64').toString()).toBe(UPSTREAM);
    expect(opened.files['admin-token']).toBeUndefined();
    // A different key cannot open them.
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

  it('a restore without the data key is refused with BACKUP_KEY_MISSING, with a wrong one BACKUP_KEY_MISMATCH', async () => {
    const { backups } = BackupList.parse((await h.admin('GET', B)).body);
    const sealedOne = backups.find((b) => b.manifest.secrets.included)!;
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
