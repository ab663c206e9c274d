import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * Where the panel keeps its data: the same folder as Electron's userData for "Slotdeck", so that browser mode and
 * the desktop app share hosts and settings. SLOTDECK_DATA_DIR overrides it.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.SLOTDECK_DATA_DIR && isAbsolute(env.SLOTDECK_DATA_DIR)) return env.SLOTDECK_DATA_DIR;
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'Slotdeck');
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'Slotdeck');
  const config =
    env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(config, 'Slotdeck');
}
