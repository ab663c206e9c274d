import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeFinding, judge, parseCsv, readAllowList, ROOT, scan } from './electronegativity';

/**
 * electronegativity (Doyensec's Electron security linter) over src/: every high or medium finding is either fixed or
 * reviewed in tests/lint/electronegativity-allow.json with the reason it is safe.
 */
describe('electronegativity', () => {
  it('finds no high or medium problem in src/ that is not reviewed, and the review list has nothing stale', async () => {
    const findings = await scan(join(ROOT, 'src'));
    // The scan did look at the app (its CSP is always reported, at low severity).
    expect(findings.length).toBeGreaterThan(0);
    const { unexplained, stale } = judge(findings, readAllowList());
    expect(unexplained.map(describeFinding), 'fix these, or review them in electronegativity-allow.json').toEqual([]);
    expect(stale, 'these allow-list entries match no finding any more: remove them').toEqual([]);
    // The scan is a child process that parses all of src/: seconds, more while other test files share the cores.
  }, 60_000);

  it('fails on an unsandboxed window with no navigation limits, which is what it is there to catch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-electronegativity-bad-'));
    try {
      writeFileSync(
        join(dir, 'main.js'),
        [
          "const { BrowserWindow } = require('electron');",
          'const win = new BrowserWindow({ webPreferences: { nodeIntegration: true, contextIsolation: false } });',
          "win.loadURL('https://example.com');",
          '',
        ].join('\n'),
      );
      const { unexplained } = judge(await scan(dir), readAllowList());
      expect(unexplained.map((finding) => finding.check)).toEqual(
        expect.arrayContaining(['SANDBOX_JS_CHECK', 'LIMIT_NAVIGATION_GLOBAL_CHECK']),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('reads its CSV as written: quotes, commas and line breaks inside fields', () => {
    expect(parseCsv('a, b\nX,"q ""x"", y","l1\nl2"\n')).toEqual([
      ['a', ' b'],
      ['X', 'q "x", y', 'l1\nl2'],
    ]);
  });
});
