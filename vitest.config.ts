import { defineConfig } from 'vitest/config';

/**
 * unit: fast, no processes. integration: the agent with real PM2, PTYs, dtach and SQLite (each file its own data
 * dir and PM2 home). e2e: Chromium through playwright-core.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          exclude: ['tests/integration/**', 'tests/e2e/**'],
          environment: 'node',
          // A deadline for a hang, not a speed test: on a loaded 2-core machine (CI beside other runs) tests that
          // take 1-2 s alone took 5-9 s, past vitest's 5 s default (clean-clone run 2: the boundary lint test).
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          environment: 'node',
          // Every file starts its own PM2 daemon and agents; two at a time suits a 2-core machine.
          pool: 'forks',
          maxWorkers: 2,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          maxWorkers: 1,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
