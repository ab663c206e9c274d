import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appProtocolHandler, isAppUrl } from '../../src/main/app-protocol';
import { CONTENT_SECURITY_POLICY } from '../../src/main/web-host';

/** The Electron panel's page served on app://slotdeck: what Electron's protocol.handle gets back for a request. */
let root: string;
let serve: (request: Request) => Promise<Response>;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sd-app-protocol-'));
  mkdirSync(join(root, 'renderer/assets'), { recursive: true });
  mkdirSync(join(root, 'renderer-secrets'));
  writeFileSync(join(root, 'renderer/index.html'), '<!doctype html><div id="root"></div>');
  writeFileSync(join(root, 'renderer/assets/app.js'), 'console.log(1)');
  writeFileSync(join(root, 'renderer/assets/app.css'), 'body{}');
  writeFileSync(join(root, 'renderer/assets/logo.svg'), '<svg/>');
  writeFileSync(join(root, 'renderer/assets/blob.bin'), 'x');
  writeFileSync(join(root, 'renderer-secrets/key.txt'), 'secret');
  writeFileSync(join(root, 'outside.txt'), 'secret');
  serve = appProtocolHandler(join(root, 'renderer'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const get = (url: string, method = 'GET'): Promise<Response> => serve(new Request(url, { method }));

describe('the app://slotdeck protocol', () => {
  it('serves the renderer with the right content types, our content policy and nosniff', async () => {
    const cases = [
      ['app://slotdeck/', 'text/html; charset=utf-8', '<!doctype html><div id="root"></div>'],
      ['app://slotdeck/index.html', 'text/html; charset=utf-8', '<!doctype html><div id="root"></div>'],
      ['app://slotdeck/assets/app.js?v=1#x', 'text/javascript; charset=utf-8', 'console.log(1)'],
      ['app://slotdeck/assets/app.css', 'text/css; charset=utf-8', 'body{}'],
      ['app://slotdeck/assets/logo.svg', 'image/svg+xml', '<svg/>'],
      ['app://slotdeck/assets/blob.bin', 'application/octet-stream', 'x'],
    ] as const;
    for (const [url, type, body] of cases) {
      const response = await get(url);
      expect(response.status, url).toBe(200);
      expect(response.headers.get('content-type'), url).toBe(type);
      expect(response.headers.get('content-security-policy'), url).toBe(CONTENT_SECURITY_POLICY);
      expect(response.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect(await response.text(), url).toBe(body);
    }
    const head = await get('app://slotdeck/index.html', 'HEAD');
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('refuses paths that leave the renderer directory, sibling directories included', async () => {
    for (const url of [
      'app://slotdeck/../outside.txt',
      'app://slotdeck/%2e%2e/outside.txt',
      'app://slotdeck/..%2foutside.txt',
      'app://slotdeck/..%2f..%2f..%2fetc%2fpasswd',
      'app://slotdeck/assets/..%2f..%2frenderer-secrets%2fkey.txt',
      'app://slotdeck/..%2frenderer-secrets/key.txt',
      'app://slotdeck/%2e%2e%5coutside.txt',
      'app://slotdeck/index.html%00.js',
      'app://slotdeck/%E0%A4%A',
      'app://slotdeck/missing.js',
      'app://slotdeck/assets',
    ]) {
      const response = await get(url);
      expect(response.status, url).toBe(404);
      expect(await response.text(), url).not.toContain('secret');
      expect(response.headers.get('content-security-policy'), url).toBe(CONTENT_SECURITY_POLICY);
    }
  });

  it('answers only its own host, and only GET and HEAD', async () => {
    expect((await get('app://evil/index.html')).status).toBe(404);
    expect((await get('app://slotdeck.evil/index.html')).status).toBe(404);
    expect((await get('app://slotdeck/index.html', 'POST')).status).toBe(405);
  });

  it('knows its own page by scheme and host', () => {
    expect(isAppUrl('app://slotdeck/index.html')).toBe(true);
    expect(isAppUrl('app://slotdeck/')).toBe(true);
    expect(isAppUrl('app://evil/index.html')).toBe(false);
    expect(isAppUrl('file:///app/renderer/index.html')).toBe(false);
    expect(isAppUrl('null')).toBe(false);
    expect(isAppUrl('about:blank')).toBe(false);
  });
});
