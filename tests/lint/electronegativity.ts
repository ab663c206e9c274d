import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
export const ROOT = resolve(import.meta.dirname, '../..');
export const ALLOW_LIST = join(ROOT, 'tests/lint/electronegativity-allow.json');

/** The severities that fail the check unless a finding is reviewed in the allow-list. */
const BLOCKING = new Set(['HIGH', 'MEDIUM', 'CRITICAL']);

/**
 * The scan runs offline, so that it gives the same answer anywhere: electronegativity fetches translations (and, in
 * a check left out below, Electron's release list) at start; every host name lookup fails at once instead, with an
 * error its HTTP client does not retry.
 */
const OFFLINE = `data:text/javascript,${encodeURIComponent(`
import dns from 'node:dns';
const offline = (hostname) => Object.assign(new Error('offline scan: ' + hostname), { code: 'EOFFLINE' });
dns.lookup = (hostname, options, callback) => {
  const done = typeof options === 'function' ? options : callback;
  process.nextTick(() => done(offline(hostname)));
};
dns.promises.lookup = (hostname) => Promise.reject(offline(hostname));
`)}`;

export interface Finding {
  check: string;
  severity: string;
  confidence: string;
  /** Relative to the scanned folder, as electronegativity reports it (`main/window.ts`). */
  file: string;
  location: string;
  sample: string;
  description: string;
}

export const AllowEntry = z.strictObject({
  check: z
    .string()
    .regex(/^[A-Z0-9_]+$/, 'the check name as electronegativity reports it, e.g. OPEN_EXTERNAL_JS_CHECK'),
  file: z.string().min(1),
  /** The code the finding points at (its `sample`), so that a new finding of the same check in the file is not hidden. */
  sample: z.string().min(1),
  reason: z.string().min(20, 'say why the finding is safe (at least a sentence)'),
});
export type AllowEntry = z.infer<typeof AllowEntry>;

export function readAllowList(file = ALLOW_LIST): AllowEntry[] {
  return z.array(AllowEntry).parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** RFC 4180 CSV (quoted fields, "" for a quote, line breaks inside quotes), as electronegativity writes it. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += char;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

/** Runs electronegativity over a folder, offline, for the Electron version installed here. */
export async function scan(input: string): Promise<Finding[]> {
  const electron = (require('electron/package.json') as { version: string }).version;
  const cli = require.resolve('@doyensec/electronegativity/dist/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'sd-electronegativity-'));
  const output = join(dir, 'findings.csv');
  try {
    await run(
      process.execPath,
      [
        '--import',
        OFFLINE,
        cli,
        ...['--input', input, '--output', output, '--relative', '--electron-version', electron],
        // The one check that needs the network (Electron's release list); the installed version is pinned above.
        ...['--exclude-checks', 'AvailableSecurityFixesGlobalCheck'],
      ],
      { cwd: ROOT, env: { ...process.env, LANG: 'en-US' } },
    );
    const [header, ...rows] = parseCsv(readFileSync(output, 'utf8'));
    if (header?.[0] !== 'issue') throw new Error(`unexpected electronegativity output: ${header?.join(',')}`);
    return rows
      .filter((row) => row.length >= 7)
      .map(([check, severity, confidence, file, location, sample, description]) => ({
        check: check!,
        severity: severity!,
        confidence: confidence!,
        file: file!,
        location: location!,
        sample: sample!,
        description: description!,
      }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** High and medium findings no allow-list entry explains, and entries that explain no finding any more. */
export function judge(findings: Finding[], allowList: AllowEntry[]): { unexplained: Finding[]; stale: AllowEntry[] } {
  const explains = (entry: AllowEntry, finding: Finding): boolean =>
    entry.check === finding.check && entry.file === finding.file && entry.sample === finding.sample;
  const blocking = findings.filter((finding) => BLOCKING.has(finding.severity));
  return {
    unexplained: blocking.filter((finding) => !allowList.some((entry) => explains(entry, finding))),
    stale: allowList.filter((entry) => !blocking.some((finding) => explains(entry, finding))),
  };
}

export const describeFinding = (finding: Finding): string =>
  `${finding.severity} ${finding.check} at ${finding.file}:${finding.location} (${finding.description}): ${finding.sample}`;
