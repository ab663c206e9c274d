import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SlotFolders } from '../../supervisor/sessions.js';
import { accountName } from '../../supervisor/sessions.js';
import { helperConfigFile, parseHelperConfig } from './accounts.js';

/**
 * What `slotdeck-agent down` looks for on command lines to find an agent's slot sessions without PM2: the agent is
 * the owner of its data dir (down may run as root), and on a host set up for isolation its slots' sockets and
 * environment files are in the helper's run folder.
 */
export function slotFoldersOf(dataDir: string, runDir: string): SlotFolders {
  const agentUid = statSync(dataDir).uid;
  const agent = accountName(agentUid);
  const configFile = agent ? helperConfigFile(agent) : null;
  const isolatedRun =
    configFile && existsSync(configFile) ? (parseHelperConfig(readFileSync(configFile, 'utf8'))?.run ?? null) : null;
  return { runDir, slotsDir: join(dataDir, 'slots'), agentUid, isolatedRun };
}
