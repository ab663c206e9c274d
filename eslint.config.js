import js from '@eslint/js';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The import boundaries of docs/architecture.md, enforced: a crossing fails lint.
 * - src/shared imports only zod, its own files and the agent's contract (zod too): it runs in main, preload and
 *   renderer alike, and IPC outputs that carry agent data reuse the agent's schemas.
 * - src/preload imports only electron and the channel list.
 * - src/renderer never imports main, preload or node built-ins.
 * - remote-agent never imports anything under src/.
 * - src/main may import the agent's contract, nothing else of the agent.
 * - src/portal (the end users' pages) imports only zod, react, xterm, the agent's contract and the renderer's
 *   terminal controller and clipboard.
 */
const zone = (target, from, message, except) => ({ target, from, message, ...(except ? { except } : {}) });

/** A React bundle that runs in a browser page; its imports must not match `regex` (the boundary of docs/architecture.md). */
const browserBundle = (files, regex, message) => ({
  files,
  languageOptions: { globals: { ...globals.browser } },
  plugins: { 'react-hooks': reactHooks },
  rules: {
    ...reactHooks.configs.recommended.rules,
    'no-restricted-imports': ['error', { patterns: [{ regex, message }] }],
  },
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'out/**',
      'dist/**',
      'remote-agent/dist/**',
      'remote-agent/portal-dist/**',
      'release/**',
      'bench/results/**',
      'test-results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    plugins: { 'import-x': importX },
    // The boundary rule only judges imports it can resolve: resolve TypeScript sources, including `.js` specifiers.
    settings: {
      'import-x/resolver-next': [
        createNodeResolver({
          extensions: ['.ts', '.tsx', '.js', '.mjs', '.json'],
          extensionAlias: { '.js': ['.ts', '.tsx', '.js'] },
        }),
      ],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            zone('./src/shared', './src/main', 'src/shared must not import main'),
            zone('./src/shared', './src/preload', 'src/shared must not import preload'),
            zone('./src/shared', './src/renderer', 'src/shared must not import the renderer'),
            zone('./src/shared', './remote-agent', 'src/shared may import only the agent contract', ['./src/contract']),
            zone('./src/preload', './src/main', 'the preload must not import main'),
            zone('./src/preload', './src/renderer', 'the preload must not import the renderer'),
            zone('./src/preload', './remote-agent', 'the preload must not import the agent'),
            zone('./src/preload', './src/shared', 'the preload imports only the channel list', ['./ipc/channels.ts']),
            zone('./src/renderer', './src/main', 'the renderer must not import main (use the IPC client)'),
            zone('./src/renderer', './src/preload', 'the renderer must not import the preload (use the IPC client)'),
            zone('./src/renderer', './remote-agent', 'the renderer must not import the agent'),
            zone('./src/renderer', './src/portal', 'the renderer must not import the portal'),
            zone('./src/portal', './src/main', 'the portal is a web page: it must not import main'),
            zone('./src/portal', './src/preload', 'the portal must not import the preload'),
            zone('./src/portal', './src/shared', 'the portal talks to the agent, not to the panel (no IPC contract)'),
            zone(
              './src/portal',
              './src/renderer',
              "the portal may import only the renderer's terminal controller and clipboard",
              ['./src/features/terminal/controller.ts', './src/features/terminal/clipboard.ts'],
            ),
            zone('./src/portal', './remote-agent', 'the portal may import only the agent contract', ['./src/contract']),
            zone('./remote-agent', './src', 'the agent must not import anything under src/'),
            // The backup sealing format (node:crypto only) has one implementation, used by the agent to seal and the
            // panel to open and verify.
            zone(
              './src/main',
              './remote-agent',
              'main may import only the agent contract, the pure boot unit and the backup sealing format',
              ['./src/contract', './src/release/boot-unit.ts', './src/modules/backups/crypto.ts'],
            ),
          ],
        },
      ],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!zod$|zod/|\\.)',
              message: 'src/shared imports only zod: it must run in main, preload and renderer',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!electron$|\\.)', message: 'the preload imports no packages besides electron' }] },
      ],
    },
  },
  browserBundle(
    ['src/renderer/**/*.{ts,tsx}'],
    '^(node:|electron$)',
    'the renderer runs in a sandboxed page: no node built-ins or electron',
  ),
  // The end users' web bundle (vite.portal.config.ts): a page on the agent's public listener.
  browserBundle(
    ['src/portal/**/*.{ts,tsx}'],
    '^(?!zod$|zod/|react$|react/|react-dom$|react-dom/|@xterm/|\\.)',
    'the portal imports only zod, react, react-dom and xterm packages (no node built-ins)',
  ),
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // Pages the browser tests load: they run in Chromium.
    files: ['tests/e2e/pages/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
