import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findExecutable } from '../../../remote-agent/src/util/executables.js';

let dir: string;

beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'sd-exec-')));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(path: string, mode: number): string {
  const full = join(dir, path);
  mkdirSync(join(full, '..'), { recursive: true });
  writeFileSync(full, '#!/bin/sh\nexit 0\n');
  chmodSync(full, mode);
  return full;
}

describe('findExecutable', () => {
  it('finds sh in PATH', () => {
    const sh = findExecutable('sh', '/nonexistent-dir:/usr/bin:/bin');
    expect(sh).toMatch(/^\/(usr\/)?bin\/sh$/);
  });

  it('takes the first match in PATH order and skips empty entries', () => {
    const first = file('first/tool', 0o755);
    file('second/tool', 0o755);
    expect(findExecutable('tool', `::${join(dir, 'first')}:${join(dir, 'second')}`)).toBe(first);
    expect(findExecutable('tool', `${join(dir, 'second')}:${join(dir, 'first')}`)).toBe(join(dir, 'second/tool'));
  });

  it('rejects a file without execute permission and keeps looking', () => {
    file('plain/tool', 0o644);
    expect(findExecutable('tool', join(dir, 'plain'))).toBeNull();
    const runnable = file('bin/tool', 0o700);
    expect(findExecutable('tool', `${join(dir, 'plain')}:${join(dir, 'bin')}`)).toBe(runnable);
  });

  it('rejects a directory even though it has execute permission', () => {
    mkdirSync(join(dir, 'bin', 'tool'), { recursive: true, mode: 0o755 });
    expect(findExecutable('tool', join(dir, 'bin'))).toBeNull();
    expect(findExecutable(join(dir, 'bin', 'tool'), undefined)).toBeNull();
  });

  it('treats a name with a slash as a path, relative ones against the given directory, ignoring PATH', () => {
    const tool = file('project/bin/tool', 0o755);
    expect(findExecutable('./bin/tool', '/usr/bin', join(dir, 'project'))).toBe(tool);
    expect(findExecutable('bin/tool', '/usr/bin', join(dir, 'project'))).toBe(tool);
    expect(findExecutable(tool, undefined)).toBe(tool);
    expect(findExecutable('./sh', '/usr/bin:/bin', dir)).toBeNull();
  });

  it('finds nothing without a PATH or for a program that is not installed', () => {
    expect(findExecutable('sh', undefined)).toBeNull();
    expect(findExecutable('sh', '')).toBeNull();
    expect(findExecutable('no-such-program-slotdeck', '/usr/bin:/bin')).toBeNull();
  });
});
