import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AdminTokenVerifier,
  adminTokenPath,
  ensureAdminToken,
  rotateAdminToken,
} from '../../../remote-agent/src/http/admin-token.js';

const TOKEN_PATTERN = /^sdk_admin_([A-Za-z0-9_-]+)$/;

let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'sd-token-'));
  // Only Date is faked: the verifier's once-a-second re-read follows it; file times stay real.
  vi.useFakeTimers({ toFake: ['Date'] });
});

afterEach(() => {
  vi.useRealTimers();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('ensureAdminToken', () => {
  it('creates secrets/admin-token, private to the agent user, holding 256 random bits', () => {
    const token = ensureAdminToken(dataDir);
    const file = join(dataDir, 'secrets', 'admin-token');
    expect(adminTokenPath(dataDir)).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8')).toBe(`${token}\n`);

    const random = TOKEN_PATTERN.exec(token)?.[1];
    expect(random).toBeDefined();
    expect(Buffer.from(random!, 'base64url')).toHaveLength(32);
  });

  it('returns the same token on every later call', () => {
    const token = ensureAdminToken(dataDir);
    expect(ensureAdminToken(dataDir)).toBe(token);
    expect(ensureAdminToken(dataDir)).toBe(token);
  });

  it('gives every data dir its own token', () => {
    const other = mkdtempSync(join(tmpdir(), 'sd-token-'));
    try {
      expect(ensureAdminToken(other)).not.toBe(ensureAdminToken(dataDir));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('replaces a token file that is empty or too short to be safe', () => {
    mkdirSync(join(dataDir, 'secrets'), { recursive: true });
    writeFileSync(adminTokenPath(dataDir), 'short\n');
    const token = ensureAdminToken(dataDir);
    expect(token).toMatch(TOKEN_PATTERN);
    expect(readFileSync(adminTokenPath(dataDir), 'utf8')).toBe(`${token}\n`);
  });

  it('keeps a token an administrator wrote into the file by hand', () => {
    mkdirSync(join(dataDir, 'secrets'), { recursive: true });
    writeFileSync(adminTokenPath(dataDir), '  my-own-long-admin-token-value  \n');
    expect(ensureAdminToken(dataDir)).toBe('my-own-long-admin-token-value');
  });
});

describe('AdminTokenVerifier', () => {
  it('accepts the token and rejects anything else, including its prefixes and the empty string', () => {
    const token = ensureAdminToken(dataDir);
    const verifier = new AdminTokenVerifier(dataDir);
    expect(verifier.verify(token)).toBe(true);
    expect(verifier.verify('')).toBe(false);
    expect(verifier.verify(token.slice(0, -1))).toBe(false);
    expect(verifier.verify(token.slice(0, 20))).toBe(false);
    expect(verifier.verify('sdk_admin_')).toBe(false);
    expect(verifier.verify(`${token}x`)).toBe(false);
    expect(verifier.verify(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
    expect(verifier.verify(token.toUpperCase())).toBe(false);
    expect(verifier.verify(`${token}\n`)).toBe(false);
  });

  it('creates the token when the data dir has none yet', () => {
    const verifier = new AdminTokenVerifier(dataDir);
    expect(verifier.verify(ensureAdminToken(dataDir))).toBe(true);
  });

  it('switches to a rotated token within about a second and then rejects the old one', () => {
    const old = ensureAdminToken(dataDir);
    const verifier = new AdminTokenVerifier(dataDir);
    expect(verifier.verify(old)).toBe(true);

    const rotated = rotateAdminToken(dataDir);
    expect(rotated).not.toBe(old);
    expect(rotated).toMatch(TOKEN_PATTERN);
    expect(ensureAdminToken(dataDir)).toBe(rotated);
    expect(statSync(adminTokenPath(dataDir)).mode & 0o777).toBe(0o600);

    // The verifier looks at the file at most once a second, by its clock: move that clock on.
    vi.setSystemTime(Date.now() + 1100);
    expect(verifier.verify(rotated)).toBe(true);
    expect(verifier.verify(old)).toBe(false);
  });

  it('keeps accepting the current token while the token file is briefly missing', () => {
    const token = ensureAdminToken(dataDir);
    const verifier = new AdminTokenVerifier(dataDir);
    rmSync(adminTokenPath(dataDir));
    vi.setSystemTime(Date.now() + 1100);
    expect(verifier.verify(token)).toBe(true);
    expect(verifier.verify('sdk_admin_wrong')).toBe(false);
  });
});
