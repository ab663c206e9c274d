/**
 * Terminals answer a program's queries (cursor position, device attributes, colours...) by sending reports as
 * input. When several writable clients watch one slot, each of them answers, and the program would read the
 * duplicates as typed text. So while a query is fresh, only the client at the keyboard may answer; these
 * helpers find queries in output and reports in input.
 */

/* eslint-disable no-control-regex */
const QUERIES = [
  '\x1b[6n', // cursor position (DSR CPR)
  '\x1b[?6n', // extended cursor position
  '\x1b[5n', // status
  '\x1b[c', // primary device attributes
  '\x1b[0c',
  '\x1b[>c', // secondary device attributes
  '\x1b[>0c',
  '\x1b[=c', // tertiary device attributes
  '$p', // mode requests (DECRQM)
  ';?\x07', // colour queries (OSC 4/10/11/12 with BEL)
  ';?\x1b\\', // colour queries with ST
  '\x1b[14t', // window size reports
  '\x1b[16t',
  '\x1b[18t',
  '\x1b[>q', // terminal version (XTVERSION)
  '\x1bP$q', // setting requests (DECRQSS)
].map((query) => Buffer.from(query, 'latin1'));

const REPORT =
  /\x1b\[\??\d+;\d+R|\x1b\[[?>=][\d;]*c|\x1b\[\??\d+;\d+\$y|\x1b\](?:1[0-2]|4;\d+);rgb:[0-9a-fA-F/]+(?:\x07|\x1b\\)|\x1b\[[468];\d+;\d+t|\x1bP[>!]\|[^\x1b]*\x1b\\|\x1bP[01]\$r[^\x1b]*\x1b\\|\x1b\[0n/g;
/* eslint-enable no-control-regex */

export function containsQuery(output: Buffer): boolean {
  if (output.indexOf(0x1b) < 0) return false;
  return QUERIES.some((query) => output.includes(query));
}

/** Splits input into its terminal reports and the rest (what a person typed or pasted). */
export function splitReports(input: Buffer): { typed: Buffer; reportCount: number } {
  if (input.indexOf(0x1b) < 0) return { typed: input, reportCount: 0 };
  let reportCount = 0;
  // latin1 maps bytes 1:1 to code units, so the regex sees raw bytes and nothing is re-encoded.
  const typed = input.toString('latin1').replace(REPORT, () => {
    reportCount += 1;
    return '';
  });
  return reportCount === 0 ? { typed: input, reportCount } : { typed: Buffer.from(typed, 'latin1'), reportCount };
}
