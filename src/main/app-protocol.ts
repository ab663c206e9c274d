/**
 * The Electron panel's page comes from `app://slotdeck`, a privileged custom scheme, not from `file://`: a file page's
 * origin is opaque and Chromium sends `Origin: null` for it, the very origin any sandboxed iframe or data: page sends,
 * so a terminal ticket bound to it would prove nothing. `app://slotdeck` is an origin only our page has.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { CustomScheme, Protocol } from 'electron';
import { CONTENT_SECURITY_POLICY, fileUnder, RENDERER_CONTENT_TYPES, requestPath } from './web-host';

export const APP_SCHEME = 'app';
export const APP_HOST = 'slotdeck';
/** The origin the panel's page has, and sends in `Origin` (terminal tickets are bound to it). */
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_URL = `${APP_ORIGIN}/index.html`;

/**
 * standard: a real origin (`app://slotdeck`) with relative URLs; secure: a secure context (the clipboard API needs
 * one), like file:// was; supportFetchAPI: modules and fetch load from it. Nothing bypasses the content policy.
 */
export const APP_SCHEME_PRIVILEGES: CustomScheme = {
  scheme: APP_SCHEME,
  privileges: { standard: true, secure: true, supportFetchAPI: true },
};

const HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

const problem = (status: number, text: string): Response =>
  new Response(text, { status, headers: { ...HEADERS, 'content-type': 'text/plain; charset=utf-8' } });

/**
 * Answers `app://slotdeck/<path>` with the file under `rendererDir`, with the same path checks as browser mode:
 * only GET and HEAD, only our host, no `..` or sibling directory, no NUL or bad escapes; anything else is a 404.
 */
export function appProtocolHandler(rendererDir: string): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return problem(405, 'Method not allowed');
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return problem(404, 'Not found');
    }
    if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) return problem(404, 'Not found');
    const path = requestPath(url.pathname);
    const file = path === null ? null : fileUnder(rendererDir, path);
    if (!file) return problem(404, 'Not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return problem(404, 'Not found');
    }
    return new Response(request.method === 'HEAD' ? null : new Uint8Array(body), {
      status: 200,
      headers: { ...HEADERS, 'content-type': RENDERER_CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' },
    });
  };
}

/** Whether a frame URL is our page: `app://slotdeck/…` (Node parses a custom scheme's origin as "null"). */
export function isAppUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === `${APP_SCHEME}:` && url.host === APP_HOST;
  } catch {
    return false;
  }
}

/** Serves the renderer on `app://slotdeck` (call once the app is ready; the scheme is registered before that). */
export function serveApp(protocol: Pick<Protocol, 'handle'>, rendererDir: string): void {
  protocol.handle(APP_SCHEME, appProtocolHandler(rendererDir));
}
