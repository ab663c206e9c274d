/**
 * Reads a few top-level fields (`model` and `stream` of a request, `model` and `usage` of an answer) from a
 * Messages API body without parsing all of it. Claude Code's requests
 * carry the whole conversation (often hundreds of kilobytes); JSON.parse of 650 KB takes about 5 ms here, blocking
 * every other request, while this scanner skips string contents with native `indexOf` and touches only the
 * structure. It is not a validator: anything it does not understand returns null, and the caller falls back to
 * JSON.parse (which then says precisely what is wrong). Upstream judges the rest of the body.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

const isSpace = (byte: number | undefined): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

function skipSpace(body: Buffer, at: number): number {
  while (isSpace(body[at])) at++;
  return at;
}

/** Index just past the string that opens at `at` (a quote), or -1 when it never closes. */
function skipString(body: Buffer, at: number): number {
  let from = at + 1;
  for (;;) {
    const quote = body.indexOf(QUOTE, from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (body[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** Index just past the value that starts at `at`, or -1 when the structure is broken. */
function skipValue(body: Buffer, at: number): number {
  const first = body[at];
  if (first === QUOTE) return skipString(body, at);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    let index = at;
    while (index < body.length) {
      const byte = body[index]!;
      if (byte === QUOTE) {
        index = skipString(body, index);
        if (index === -1) return -1;
        continue;
      }
      if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth++;
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return index + 1;
      }
      index++;
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  let index = at;
  while (index < body.length) {
    const byte = body[index]!;
    if (byte === COMMA || byte === CLOSE_BRACE || byte === CLOSE_BRACKET || isSpace(byte)) break;
    index++;
  }
  return index > at ? index : -1;
}

function decode(body: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(body.toString('utf8', start, end));
  } catch {
    return undefined;
  }
}

/** The named top-level values (absent ones left out), or null when the body is not a JSON object. */
export function readTopLevelFields<K extends string>(
  body: Buffer,
  names: readonly K[],
): Partial<Record<K, unknown>> | null {
  let at = skipSpace(body, 0);
  if (body[at] !== OPEN_BRACE) return null;
  const fields: Partial<Record<K, unknown>> = {};
  at = skipSpace(body, at + 1);
  if (body[at] === CLOSE_BRACE) return skipSpace(body, at + 1) === body.length ? fields : null;
  for (;;) {
    if (body[at] !== QUOTE) return null;
    const keyEnd = skipString(body, at);
    if (keyEnd === -1) return null;
    const key = body.toString('utf8', at + 1, keyEnd - 1);
    at = skipSpace(body, keyEnd);
    if (body[at] !== COLON) return null;
    at = skipSpace(body, at + 1);
    const valueEnd = skipValue(body, at);
    if (valueEnd === -1) return null;
    // Keys with escapes ("mod\u0065l") are legal but never sent by real clients: let JSON.parse handle them.
    if (key.includes('\\')) return null;
    if ((names as readonly string[]).includes(key)) {
      const value = decode(body, at, valueEnd);
      if (value === undefined) return null;
      fields[key as K] = value;
    }
    at = skipSpace(body, valueEnd);
    if (body[at] === COMMA) {
      at = skipSpace(body, at + 1);
      continue;
    }
    if (body[at] === CLOSE_BRACE) return skipSpace(body, at + 1) === body.length ? fields : null;
    return null;
  }
}
