import { describe, expect, it } from 'vitest';
import type { LogLine, LogPage } from '../../../../src/shared/ipc/contract';
import { appendNewer, localToIso, prependOlder, windowOf } from '../../../../src/renderer/src/features/logs/log-lines';

const line = (n: number): LogLine => ({ cursor: `c${n}`, time: null, level: 'info', text: `line ${n}` });
const page = (from: number, to: number, extra: Partial<LogPage> = {}): LogPage => ({
  source: 'agent',
  lines: Array.from({ length: to - from }, (_, i) => line(from + i)),
  before: `c${from}`,
  after: `c${to}`,
  atEnd: true,
  scannedBytes: 0,
  ...extra,
});

describe('the log view’s window of lines', () => {
  it('appends followed lines and drops the oldest past the cap, keeping a cursor to page them back', () => {
    const shown = appendNewer(windowOf(page(0, 8)), page(8, 12), 10);
    expect(shown.lines.map((l) => l.text)).toEqual(Array.from({ length: 10 }, (_, i) => `line ${i + 2}`));
    expect(shown).toMatchObject({ before: 'c2', after: 'c12', atEnd: true });
  });

  it('prepends older lines and, past the cap, drops the newest and is no longer at the end', () => {
    const shown = prependOlder(windowOf(page(5, 12)), page(0, 5, { before: null }), 10);
    expect(shown.lines.map((l) => l.text).at(0)).toBe('line 0');
    expect(shown).toMatchObject({ before: null, after: 'c10', atEnd: false });
    expect(shown.lines).toHaveLength(10);
  });

  it('reads a local date and time as an ISO time', () => {
    expect(localToIso('2026-12-01T10:00')).toBe(new Date('2026-12-01T10:00').toISOString());
    expect(localToIso('soon')).toBeNull();
  });
});
