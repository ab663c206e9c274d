import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The scripts ship in the package's resources/ (three levels above src/modules/slots and dist/modules/slots). */
export const HOLDER_PATH = fileURLToPath(new URL('../../../resources/slot-holder.sh', import.meta.url));
export const LAUNCHER_PATH = fileURLToPath(new URL('../../../resources/slot-launch.sh', import.meta.url));

/** Where each slot's files live. Everything is under the data dir except sockets, which need a short path. */
export class SlotPaths {
  constructor(
    readonly dataDir: string,
    readonly runDir: string,
  ) {}

  slotDir(id: string): string {
    return join(this.dataDir, 'slots', id);
  }
  homeDir(id: string): string {
    return join(this.slotDir(id), 'home');
  }
  defaultWorkDir(id: string): string {
    return join(this.slotDir(id), 'work');
  }
  screenDir(id: string): string {
    return join(this.slotDir(id), 'screen');
  }
  envFile(id: string): string {
    return join(this.slotDir(id), 'env.sh');
  }
  exitFile(id: string): string {
    return join(this.slotDir(id), 'last-exit');
  }
  socket(id: string): string {
    return join(this.runDir, `${id}.sock`);
  }
  ttydSocket(id: string): string {
    return join(this.runDir, `${id}.ttyd.sock`);
  }
  tmuxSocket(id: string): string {
    return join(this.runDir, `${id}.tmux.sock`);
  }
  tmuxConfig(id: string): string {
    return join(this.slotDir(id), 'tmux.conf');
  }
  ttydSecretFile(id: string): string {
    return join(this.dataDir, 'secrets', `ttyd-${id}`);
  }
  /** The metered slot's gateway key, in clear (the database has only its hash): private to the agent user. */
  meteredKeyFile(id: string): string {
    return join(this.dataDir, 'secrets', `slot-key-${id}`);
  }
  get logDir(): string {
    return join(this.dataDir, 'logs');
  }
  outLog(id: string): string {
    return join(this.logDir, `slot-${id}.out.log`);
  }
  errorLog(id: string): string {
    return join(this.logDir, `slot-${id}.err.log`);
  }
}

/** PM2 process name of a slot. */
export const processName = (id: string): string => `slot-${id}`;
export const slotIdOfProcess = (name: string): string | null => /^slot-([a-z0-9]{10})$/.exec(name)?.[1] ?? null;
