import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'electron-vite';

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      // index: the Electron app; browser: the same main process without Electron (browser mode).
      rollupOptions: { input: { index: resolve('src/main/index.ts'), browser: resolve('src/main/browser.ts') } },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      // A sandboxed preload cannot be an ES module.
      rollupOptions: {
        input: { index: resolve('src/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'src/renderer',
    build: {
      outDir: 'out/renderer',
      minify: true,
      // main.tsx is a small entry (IPC client, stores) that opens the socket at once; React and the views, and xterm
      // (the consoles), are chunks of their own loaded in parallel. npm run bench -- panel measures the startup.
      chunkSizeWarningLimit: 800,
      rollupOptions: { input: { index: resolve('src/renderer/index.html') } },
    },
    plugins: [react()],
  },
});
