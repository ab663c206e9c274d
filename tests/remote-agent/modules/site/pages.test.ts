import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from '../../../../remote-agent/node_modules/fastify/fastify.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  jsonForScript,
  PORTAL_PAGE_PATHS,
  registerPages,
  renderPage,
  sendPage,
} from '../../../../remote-agent/src/modules/site/pages.js';
import { allowFraming, registerPublicSite } from '../../../../remote-agent/src/modules/site/site.js';

/** A built bundle as vite.portal.config.ts lays it out: two pages, hashed files under portal-assets/. */
const INDEX_HTML = `<!doctype html><html><head><title>Slotdeck</title>
<script type="module" crossorigin src="/portal-assets/index-AbCdEf12.js"></script>
<link rel="stylesheet" crossorigin href="/portal-assets/index-Zz9yXw34.css">
</head><body><div id="root"></div></body></html>`;
const SHARE_HTML = `<!doctype html><html><head><title>Share</title>
<script type="module" crossorigin src="/portal-assets/share-Qq1wEr56.js"></script>
<link rel="modulepreload" crossorigin href="/portal-assets/xterm-Ty7uIo89.js">
</head><body><main id="share"></main></body></html>`;
const INDEX_JS = `console.log(${JSON.stringify('portal '.repeat(200))});\n`;

let dir: string;
let app: FastifyInstance;
const warnings: string[] = [];

function writeBundle(): void {
  mkdirSync(join(dir, 'portal-assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), INDEX_HTML);
  writeFileSync(join(dir, 'share.html'), SHARE_HTML);
  writeFileSync(join(dir, 'portal-assets', 'index-AbCdEf12.js'), INDEX_JS);
  writeFileSync(join(dir, 'portal-assets', 'index-Zz9yXw34.css'), 'body{margin:0}');
  writeFileSync(join(dir, 'portal-assets', 'unhashed.js'), 'export {}');
}

async function buildSite(withBundle: boolean): Promise<FastifyInstance> {
  if (withBundle) writeBundle();
  const site = Fastify();
  registerPublicSite(site, {
    secure: false,
    modules: [
      (context) => registerPages(context, { distDir: dir, logger: { warn: (_o, message) => warnings.push(message) } }),
      // What the share module does for /share/:token: framing for the listed origins, then the share page.
      (context) => {
        context.get('/share/:token', async (_request, reply) => {
          allowFraming(reply, ['https://intranet.example.com']);
          return sendPage(reply, 'share', { state: 'active', slotName: 'dev</script><script>alert(1)</script>' });
        });
      },
    ],
  });
  await site.ready();
  return site;
}

function nonceOf(csp: string): string {
  const match = /'nonce-([^']+)'/.exec(csp);
  if (!match?.[1]) throw new Error(`no nonce in ${csp}`);
  return match[1];
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'slotdeck-pages-'));
  warnings.length = 0;
});
afterEach(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('portal pages', () => {
  it('answers the SPA on / and every client route, each script carrying this answer’s CSP nonce, never cached', async () => {
    app = await buildSite(true);
    const nonces = new Set<string>();
    for (const path of [
      '/',
      '/sign-in',
      '/sign-up',
      '/invite/abc',
      '/slots',
      '/slots/abcdefghij',
      '/keys',
      '/usage',
      '/settings',
    ]) {
      const response = await app.inject({ method: 'GET', url: path });
      expect(response.statusCode, path).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.headers['cache-control']).toBe('no-store');
      const csp = String(response.headers['content-security-policy']);
      expect(csp).toContain("script-src 'self' 'nonce-");
      expect(csp).toContain("frame-ancestors 'none'");
      const nonce = nonceOf(csp);
      nonces.add(nonce);
      const scripts = response.body.match(/<script\b[^>]*>/g) ?? [];
      expect(scripts.length).toBeGreaterThan(0);
      for (const tag of scripts) expect(tag).toContain(`nonce="${nonce}"`);
    }
    // A fresh nonce per answer: one seen in a page cannot be reused by an injected script in another.
    expect(nonces.size).toBe(9);
    expect(PORTAL_PAGE_PATHS).toHaveLength(9);
  });

  it('serves hashed assets for a year and compressed when asked; an unhashed name must be revalidated', async () => {
    app = await buildSite(true);
    const js = await app.inject({
      method: 'GET',
      url: '/portal-assets/index-AbCdEf12.js',
      headers: { 'accept-encoding': 'gzip, br' },
    });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(js.rawPayload).toString()).toBe(INDEX_JS);
    const plain = await app.inject({ method: 'GET', url: '/portal-assets/index-Zz9yXw34.css' });
    expect(plain.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe('body{margin:0}');
    const unhashed = await app.inject({ method: 'GET', url: '/portal-assets/unhashed.js' });
    expect(unhashed.headers['cache-control']).toBe('no-cache');
  });

  it('serves nothing outside portal-assets/ and no file type it does not know', async () => {
    writeFileSync(join(dir, 'secret.js'), 'nope');
    app = await buildSite(true);
    for (const url of [
      '/portal-assets/..%2Fsecret.js',
      '/portal-assets/..%2Findex.html',
      '/portal-assets/%2E%2E%2Fsecret.js',
      '/portal-assets/missing-AbCdEf12.js',
      '/portal-assets/index-AbCdEf12.js.map',
      '/portal-assets/index.html',
    ]) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(404);
      expect(response.body).not.toContain('nope');
      expect(response.headers['cache-control']).toBe('no-store');
    }
  });

  it('answers a clear 503 page (and warns once) when the bundle is not built', async () => {
    app = await buildSite(false);
    for (const url of ['/', '/slots', '/share/sometoken']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(503);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toContain('The portal is not available on this agent');
      expect(response.body).toContain('npm run build:portal');
    }
    expect(warnings).toHaveLength(1);
  });

  it('puts the share page’s data in a nonce’d JSON tag that cannot close its script, and lets listed origins frame it', async () => {
    app = await buildSite(true);
    const response = await app.inject({ method: 'GET', url: '/share/sometoken' });
    expect(response.statusCode).toBe(200);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain('frame-ancestors https://intranet.example.com');
    expect(response.headers['x-frame-options']).toBeUndefined();
    const nonce = nonceOf(csp);
    const tag = /<script type="application\/json" id="slotdeck-data" nonce="([^"]+)">(.*?)<\/script>/.exec(
      response.body,
    );
    expect(tag?.[1]).toBe(nonce);
    expect(JSON.parse(tag![2]!)).toEqual({ state: 'active', slotName: 'dev</script><script>alert(1)</script>' });
    // Only the page's own two scripts (data + module): the slot name did not make a third.
    expect(response.body.match(/<script\b/g)).toHaveLength(2);
    expect(response.body).not.toContain('<script>alert');
    // The token is in the address only, never in the page.
    expect(response.body).not.toContain('sometoken');
  });
});

describe('renderPage', () => {
  it('adds the nonce to every script tag, whatever its case or attributes', () => {
    const html =
      '<head><SCRIPT src="/a.js"></SCRIPT><script type="module">x</script></head><body><script\nsrc="b"></script></body>';
    const out = renderPage(html, 'N0nce+/=', { a: 1 });
    expect(out.match(/<script\b/gi)).toHaveLength(4);
    expect(out.match(/nonce="N0nce\+\/="/g)).toHaveLength(4);
    expect(out.indexOf('id="slotdeck-data"')).toBeLessThan(out.indexOf('</head>'));
  });

  it('writes JSON that parses back to the same data and holds no <, > or & (no early </script> or <!--)', () => {
    const data = { text: '</script><!-- & \u2028\u2029 >', nested: ['<b>'] };
    const json = jsonForScript(data);
    expect(json).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(json)).toEqual(data);
  });
});
