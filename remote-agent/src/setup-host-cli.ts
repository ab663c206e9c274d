/**
 * `node <extracted tarball>/dist/setup-host-cli.js [--user NAME] [--data-dir DIR]`: setup-host with nothing but
 * Node's built-in modules, so root can run it from a root-owned extraction of the agent tarball (no node_modules,
 * nothing the agent's account can write) with the system's node. Prints progress lines, then one JSON line with
 * the result. Exit codes: 0 done, 1 refused or failed (the message says why), 2 usage.
 */
import { parseArgs } from 'node:util';
import { SetupError, setupHost } from './setup-host.js';

function main(): number {
  let values: { user?: string | undefined; 'data-dir'?: string | undefined };
  try {
    ({ values } = parseArgs({
      options: { user: { type: 'string' }, 'data-dir': { type: 'string' } },
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(
      `setup-host: ${(error as Error).message}\nusage: node setup-host-cli.js [--user NAME] [--data-dir DIR]\n`,
    );
    return 2;
  }
  try {
    const result = setupHost({
      user: values.user ?? 'slotdeck',
      dataDir: values['data-dir'],
      say: (line) => process.stdout.write(`${line}\n`),
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`setup-host: ${error instanceof SetupError ? error.message : String(error)}\n`);
    return 1;
  }
}

process.exitCode = main();
