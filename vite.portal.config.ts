import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The end users' web bundle, served by the agent on its public listener (remote-agent/src/modules/site/pages.ts):
 * index.html is the portal (React), share.html the share page (no React). Hashed file names under /portal-assets/,
 * so the agent can cache them for a year; the HTML is answered fresh with a per-answer script nonce.
 */
export default defineConfig({
  root: resolve(import.meta.dirname, 'src/portal'),
  base: '/',
  publicDir: false,
  plugins: [react()],
  build: {
    outDir: resolve(import.meta.dirname, 'remote-agent/portal-dist'),
    emptyOutDir: true,
    assetsDir: 'portal-assets',
    minify: true,
    sourcemap: false,
    // The agent serves exactly these files: no inline <script> (the CSP allows only nonce'd and same-origin ones).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'src/portal/index.html'),
        share: resolve(import.meta.dirname, 'src/portal/share.html'),
      },
      // xterm, shared by the terminal view and the share page, in a chunk named for what it is.
      output: {
        codeSplitting: {
          groups: [{ name: (id: string) => (/node_modules[\\/]@xterm[\\/]/.test(id) ? 'xterm' : null) }],
        },
      },
    },
  },
});
