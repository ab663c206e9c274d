import { describe, expect, it } from 'vitest';
import { boundaryErrors } from '../lint/boundary-errors';

// The end users' pages run on the agent's public listener: they may use the agent's contract and the panel's terminal
// controller, nothing of the panel's IPC, main process or node.
describe('the portal’s import boundary', { timeout: 60_000 }, () => {
  it('lets the portal import react, xterm, the agent contract and the terminal controller', async () => {
    expect(
      await boundaryErrors(
        'src/portal/app/example.tsx',
        [
          "import { useState } from 'react';",
          "import { createRoot } from 'react-dom/client';",
          "import { Terminal } from '@xterm/xterm';",
          "import { portalApi } from '../../../remote-agent/src/contract/portal';",
          "import { TerminalController } from '../../renderer/src/features/terminal/controller';",
          'export { useState, createRoot, Terminal, portalApi, TerminalController };',
          '',
        ].join('\n'),
      ),
    ).toEqual([]);
  });

  it('fails lint when the portal reaches beyond it', async () => {
    const crossings = [
      "import { readFileSync } from 'node:fs';\nexport { readFileSync };\n",
      "import { create } from 'zustand';\nexport { create };\n",
      "import { ipcContract } from '../../shared/ipc/contract';\nexport { ipcContract };\n",
      "import { App } from '../../renderer/src/App';\nexport { App };\n",
      "import { SlotService } from '../../../remote-agent/src/modules/slots/service';\nexport { SlotService };\n",
      "import { app } from '../../main/index';\nexport { app };\n",
    ];
    for (const code of crossings)
      expect((await boundaryErrors('src/portal/app/example.ts', code)).length, code).toBeGreaterThan(0);
    // …and the panel never imports the portal.
    expect(
      await boundaryErrors(
        'src/renderer/src/example.ts',
        "import { App } from '../../portal/app/App';\nexport { App };\n",
      ),
    ).not.toEqual([]);
  });
});
