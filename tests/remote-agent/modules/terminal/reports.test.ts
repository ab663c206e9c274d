import { describe, expect, it } from 'vitest';
import { containsQuery, splitReports } from '../../../../remote-agent/src/modules/terminal/reports.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('containsQuery', () => {
  it.each([
    ['a cursor position request', '\x1b[6n'],
    ['a status request', '\x1b[5n'],
    ['a primary device attributes request', '\x1b[c'],
    ['a secondary device attributes request', '\x1b[>c'],
    ['a background colour query ended by BEL', '\x1b]11;?\x07'],
    ['a foreground colour query ended by ST', '\x1b]10;?\x1b\\'],
    ['a palette colour query', '\x1b]4;1;?\x07'],
    ['a mode request', '\x1b[?2004$p'],
    ['a window size request', '\x1b[18t'],
    ['a terminal version request', '\x1b[>q'],
  ])('finds %s in program output', (_name, query) => {
    expect(containsQuery(bytes(`prompt$ ${query}more output`))).toBe(true);
  });

  it.each([
    ['plain text', 'total 12\r\ndrwxr-xr-x 2 user user 4096 file.txt\r\n'],
    ['colours and cursor movement', '\x1b[31mred\x1b[0m \x1b[2J\x1b[H\x1b[?25l\x1b[1;1H\x1b[K'],
    ['a window title', '\x1b]0;user@host: ~\x07'],
    ['UTF-8 text', 'héllo ✓ 🙂 ??? c n'],
  ])('ignores %s', (_name, output) => {
    expect(containsQuery(bytes(output))).toBe(false);
  });
});

describe('splitReports', () => {
  it.each([
    ['a cursor position report', '\x1b[24;80R'],
    ['an extended cursor position report', '\x1b[?24;80R'],
    ['a primary device attributes reply', '\x1b[?62;22c'],
    ['a secondary device attributes reply', '\x1b[>0;276;0c'],
    ['a mode report (DECRPM)', '\x1b[?2004;2$y'],
    ['a background colour reply ended by ST', '\x1b]11;rgb:0000/0000/0000\x1b\\'],
    ['a foreground colour reply ended by BEL', '\x1b]10;rgb:ffff/ffff/ffff\x07'],
    ['a palette colour reply', '\x1b]4;1;rgb:cdcd/0000/0000\x07'],
    ['a status report', '\x1b[0n'],
    ['a window size report', '\x1b[8;24;80t'],
    ['a terminal version reply', '\x1bP>|xterm.js(6.0.0)\x1b\\'],
  ])('removes %s from input and counts it', (_name, report) => {
    const { typed, reportCount } = splitReports(bytes(`ls${report} -la\r`));
    expect(typed.toString('utf8')).toBe('ls -la\r');
    expect(reportCount).toBe(1);
  });

  it('counts several reports answered in one message', () => {
    const { typed, reportCount } = splitReports(bytes('\x1b[1;1R\x1b[?62;22c\x1b]11;rgb:1e1e/1e1e/1e1e\x1b\\'));
    expect(typed).toHaveLength(0);
    expect(reportCount).toBe(3);
  });

  it('keeps typed keys byte for byte: arrows, function keys, Ctrl-C, Enter and UTF-8', () => {
    const input = bytes('git log\x1b[A\x1b[B\x1b[1;5C\x1bOP\x1b[15~\x03\r\x7fhéllo ✓ 🙂\x1b');
    const { typed, reportCount } = splitReports(input);
    expect(reportCount).toBe(0);
    expect(typed.equals(input)).toBe(true);
  });

  it('keeps UTF-8 text around a report intact', () => {
    const { typed, reportCount } = splitReports(bytes('é✓\x1b[3;7R🙂ü'));
    expect(reportCount).toBe(1);
    expect(typed.equals(bytes('é✓🙂ü'))).toBe(true);
  });
});
