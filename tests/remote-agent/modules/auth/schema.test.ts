/**
 * Schema 5's auth_* tables are exactly what better-auth (with the agent's options, plugins included) expects: its
 * own migration planner finds nothing to create or add. A better-auth upgrade that changes its schema fails here,
 * and needs a new agent migration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '../../../../remote-agent/src/db/database.js';
import { authOptions } from '../../../../remote-agent/src/modules/auth/better-auth.js';
import { pendingAuthSchemaChanges } from '../../../../remote-agent/src/modules/auth/schema-check.js';

const dir = mkdtempSync(join(tmpdir(), 'sd-auth-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it.each([
  ['with GitHub', { clientId: 'Iv1.x', clientSecret: 'y', signUp: true }],
  ['without GitHub', null],
])("better-auth's generated schema (%s) has no pending changes against the agent's migrations", async (_, github) => {
  const db = openDatabase(join(dir, `${github ? 'gh' : 'plain'}.db`));
  const options = authOptions({
    db,
    secret: 'a'.repeat(64),
    baseURL: 'http://127.0.0.1:1',
    cookieName: '__Host-slotdeck-session',
    secureCookie: true,
    sessionIdleSeconds: 3600,
    github,
  });
  expect(await pendingAuthSchemaChanges(options)).toEqual({ toBeCreated: [], toBeAdded: [] });
  db.close();
});
