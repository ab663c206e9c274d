import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeHostKey } from '../../../../src/main/services/ssh/host-key';

let dir: string;
let made = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sd-host-key-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh key made by ssh-keygen: its wire-format blob and the fingerprint `ssh-keygen -lf` prints for it. */
function generate(type: string, bits?: string): { algorithm: string; blob: Buffer; fingerprint: string } {
  const file = join(dir, `key-${(made += 1)}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', bits] : []), '-N', '', '-C', 'test', '-f', file]);
  const [algorithm, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/);
  const printed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' });
  const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(printed)?.[0];
  if (!algorithm || !base64 || !fingerprint) throw new Error(`unexpected ssh-keygen output: ${printed}`);
  return { algorithm, blob: Buffer.from(base64, 'base64'), fingerprint };
}

describe('describeHostKey', () => {
  it('names the algorithm and prints the fingerprint exactly as ssh-keygen -lf does for an ed25519 key', () => {
    const key = generate('ed25519');
    expect(describeHostKey(key.blob)).toEqual({ algorithm: 'ssh-ed25519', fingerprint: key.fingerprint });
    expect(key.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('matches ssh-keygen for an ECDSA key as well', () => {
    const key = generate('ecdsa', '256');
    expect(describeHostKey(key.blob)).toEqual({ algorithm: 'ecdsa-sha2-nistp256', fingerprint: key.fingerprint });
  });

  it('gives different fingerprints to different keys', () => {
    const one = describeHostKey(generate('ed25519').blob);
    const two = describeHostKey(generate('ed25519').blob);
    expect(one.fingerprint).not.toBe(two.fingerprint);
  });

  it('calls the algorithm unknown when the blob does not start with a readable name', () => {
    expect(describeHostKey(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])).algorithm).toBe('unknown');
    expect(describeHostKey(Buffer.alloc(2)).algorithm).toBe('unknown');
  });
});
