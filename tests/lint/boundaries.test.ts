import { describe, expect, it } from 'vitest';
import { boundaryErrors } from './boundary-errors';

// The first lint loads ESLint, its plugins and the config: seconds, and past the 5 s default on a loaded machine (it
// failed clean-clone run 2 at 5 s while integration tests of other runs shared the two cores).
describe('the import boundaries of docs/architecture.md', { timeout: 60_000 }, () => {
  it('lets each part import what it may', async () => {
    expect(
      await boundaryErrors(
        'src/shared/ipc/example.ts',
        "import { z } from 'zod';\nimport { INVOKE_CHANNELS } from './channels';\nexport { z, INVOKE_CHANNELS };\n",
      ),
    ).toEqual([]);
    expect(
      await boundaryErrors(
        'src/preload/example.ts',
        "import { contextBridge } from 'electron';\nimport { INVOKE_CHANNELS } from '../shared/ipc/channels';\nexport { contextBridge, INVOKE_CHANNELS };\n",
      ),
    ).toEqual([]);
    expect(
      await boundaryErrors(
        'src/main/example.ts',
        "import { adminApi } from '../../remote-agent/src/contract/index';\nexport { adminApi };\n",
      ),
    ).toEqual([]);
  });

  it('fails lint when a part crosses its boundary', async () => {
    const crossings: Array<[string, string]> = [
      ['src/shared/ipc/example.ts', "import { readFileSync } from 'node:fs';\nexport { readFileSync };\n"],
      ['src/shared/ipc/example.ts', "import { app } from '../../main/index';\nexport { app };\n"],
      ['src/preload/example.ts', "import { z } from 'zod';\nexport { z };\n"],
      [
        'src/shared/ipc/example.ts',
        "import { SlotService } from '../../../remote-agent/src/modules/slots/service';\nexport { SlotService };\n",
      ],
      ['src/preload/example.ts', "import { ipcContract } from '../shared/ipc/contract';\nexport { ipcContract };\n"],
      ['src/renderer/src/example.ts', "import { app } from '../../main/index';\nexport { app };\n"],
      ['src/renderer/src/example.ts', "import { readFileSync } from 'node:fs';\nexport { readFileSync };\n"],
      [
        'remote-agent/src/example.ts',
        "import { ipcContract } from '../../src/shared/ipc/contract';\nexport { ipcContract };\n",
      ],
      [
        'src/main/example.ts',
        "import { SlotService } from '../../remote-agent/src/modules/slots/service';\nexport { SlotService };\n",
      ],
    ];
    for (const [path, code] of crossings) {
      expect(await boundaryErrors(path, code), `${path}: ${code}`).not.toEqual([]);
    }
  });
});
