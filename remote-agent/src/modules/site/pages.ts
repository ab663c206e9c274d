import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { scriptNonce } from './site.js';

/**
 * The end users' web bundle (built by `npm run build:portal` from src/portal into remote-agent/portal-dist/, shipped
 * in the agent's tarball): the portal SPA (index.html) at `/` and its client routes, the share page (share.html, sent
 * by the share module), and their hashed files under /portal-assets/.
 */
export const PORTAL_DIST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../portal-dist');
export const PORTAL_ASSETS_PREFIX = '/portal-assets/';

/** The portal's client routes: each answers the SPA, which routes in the page. */
export const PORTAL_PAGE_PATHS = [
  '/',
  '/sign-in',
  '/sign-up',
  '/invite/:token',
  '/slots',
  '/slots/:id',
  '/keys',
  '/usage',
  '/settings',
] as const;

export type PageName = 'portal' | 'share';
const PAGE_FILES: Record<PageName, string> = { portal: 'index.html', share: 'share.html' };

export interface PagesDeps {
  /** Where the built bundle is (default: the agent package's portal-dist/). */
  distDir?: string;
  logger?: { warn(object: object, message: string): void };
}

const DIST_DIR = Symbol.for('slotdeck.portalDistDir');
type WithDist = FastifyInstance & { [DIST_DIR]?: string };

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};
/** Vite's output names: `name-<8+ char hash>.ext` in one flat folder; nothing else is served from it. */
const ASSET_NAME = /^[A-Za-z0-9_.-]{1,120}\.[a-z0-9]{1,6}$/;
const HASHED = /-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const COMPRESSIBLE = new Set(['.js', '.css', '.svg', '.json']);

export function registerPages(site: FastifyInstance, deps: PagesDeps = {}): void {
  const distDir = deps.distDir ?? PORTAL_DIST_DIR;
  // The share module's route (same site context) sends share.html from the same folder through sendPage.
  (site as WithDist)[DIST_DIR] = distDir;
  let warned = false;
  const noteMissing = (): void => {
    if (warned) return;
    warned = true;
    deps.logger?.warn(
      { distDir },
      'The portal web bundle is not built: end users get a 503 page. Run `npm run build:portal` (or install an agent package that includes portal-dist/).',
    );
  };

  for (const path of PORTAL_PAGE_PATHS) {
    site.get(path, async (_request, reply) => {
      const sent = await sendPage(reply, 'portal');
      if (reply.statusCode === 503) noteMissing();
      return sent;
    });
  }

  // Gzipped bodies of compressible assets, kept per file (the bundle does not change under a running agent; a
  // rebuilt file has a new name).
  const gzipped = new Map<string, { mtimeMs: number; body: Buffer }>();
  site.get<{ Params: { name: string } }>(`${PORTAL_ASSETS_PREFIX}:name`, async (request, reply) => {
    const name = request.params.name;
    const extension = name.slice(name.lastIndexOf('.'));
    const type = CONTENT_TYPES[extension];
    if (!ASSET_NAME.test(name) || name.includes('..') || !type) return assetNotFound(reply);
    const file = join(distDir, 'portal-assets', name);
    let mtimeMs: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) return assetNotFound(reply);
      mtimeMs = info.mtimeMs;
    } catch {
      return assetNotFound(reply);
    }
    reply
      .type(type)
      .header('cache-control', HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('vary', 'accept-encoding');
    if (COMPRESSIBLE.has(extension) && acceptsGzip(request)) {
      let cached = gzipped.get(file);
      if (cached?.mtimeMs !== mtimeMs) {
        cached = { mtimeMs, body: gzipSync(await readFile(file)) };
        gzipped.set(file, cached);
      }
      return reply.header('content-encoding', 'gzip').send(cached.body);
    }
    return reply.send(await readFile(file));
  });
}

function acceptsGzip(request: FastifyRequest): boolean {
  const accepted = request.headers['accept-encoding'];
  return typeof accepted === 'string' && /\bgzip\b/.test(accepted);
}

function assetNotFound(reply: FastifyReply): FastifyReply {
  return reply
    .status(404)
    .type('text/plain; charset=utf-8')
    .header('cache-control', 'no-store')
    .send('Not found. The portal may have been updated: reload the page.');
}

/**
 * Answers one of the bundle's pages: every <script> gets this answer's CSP nonce, and `data` (never a secret or a
 * token: it is in the page for anyone who has it) is put in a `<script type="application/json" id="slotdeck-data">`
 * the page reads. HTML is never cached (each answer has its own nonce). Without a built bundle: a 503 page saying so.
 */
export async function sendPage(reply: FastifyReply, page: PageName, data?: object): Promise<FastifyReply> {
  const distDir = (reply.server as WithDist)[DIST_DIR] ?? PORTAL_DIST_DIR;
  let html: string;
  try {
    html = await readFile(join(distDir, PAGE_FILES[page]), 'utf8');
  } catch {
    return reply.status(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT_PAGE);
  }
  return reply
    .status(reply.statusCode >= 400 ? reply.statusCode : 200)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(renderPage(html, scriptNonce(reply), data));
}

/** The page with the nonce on every <script> and the data tag before </head>. Exported for tests. */
export function renderPage(html: string, nonce: string, data?: object): string {
  const withNonce = html.replace(/<script\b/gi, `<script nonce="${nonce}"`);
  if (data === undefined) return withNonce;
  const tag = `<script type="application/json" id="slotdeck-data" nonce="${nonce}">${jsonForScript(data)}</script>`;
  const head = withNonce.search(/<\/head>/i);
  return head < 0 ? tag + withNonce : `${withNonce.slice(0, head)}${tag}${withNonce.slice(head)}`;
}

/** JSON that cannot end its <script> element early or start a comment in it (`</script>`, `<!--`). */
export function jsonForScript(data: object): string {
  return JSON.stringify(data)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Portal not available · Slotdeck</title></head>
<body><main><h1>The portal is not available on this agent</h1>
<p>Its web pages were not built into this agent's package. The administrator can fix it by installing an agent
package that includes <code>portal-dist/</code>, or by running <code>npm run build:portal</code> in the source tree.</p>
<p>The API (<code>/v1/</code>) works without it.</p></main></body></html>
`;
