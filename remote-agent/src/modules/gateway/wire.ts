import type { IncomingMessage } from 'node:http';

/** Small helpers of the gateway's HTTP handling, shared by its parts. */

export const round2 = (ms: number): string => (Math.round(ms * 100) / 100).toFixed(2);

/** The query string of a request's URL, with its `?`, or ''. */
export function queryOf(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? '' : url.slice(at);
}

export function headerValue(value: string | string[] | undefined): string | null {
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}

/** Whether a request has a body on its way (whether or not its route reads it). */
export function declaresBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
