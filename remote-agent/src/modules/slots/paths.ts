import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The scripts ship in the package's resources/ (three levels above src/modules/slots and dist/modules/slots). */
export const HOLDER_PATH = fileURLToPath(new URL('../../../resources/slot-holder.sh', import.meta.url));
export const LAUNCHER_PATH = fileURLToPath(new URL('../../../resources/slot-launch.sh', import.meta.url));

/**
 * A host set up with `slotdeck-agent setup-host`: each slot runs as an account of its own through the root-owned
 * helper, its home under `homes`, its socket, environment and exit record under `run` (see docs/architecture.md).
 */
export interface IsolationLayout {
  /** The helper, called as `sudo -n <helper> <verb> ...`. */
  helper: string;
  sudo: string;
  homes: string;
  run: string;
  /** Most processes one slot account may have at once. */
  nproc: number;
}

/** The account a slot runs as on an isolated host: its owner's (one per end user), else one of its own. */
export const slotAccount = (slotId: string, ownerId: string | null): string =>
  ownerId ? `sdu-${ownerId.replace(/^u_/, '')}` : `sds-${slotId}`;

/**
 * Where each slot's files live. Without isolation everything is under the data dir except sockets, which need a
 * short path. With it, what the slot's account must reach (home, work, socket, environment) moves out of the
 * agent's private data dir; the screen and logs stay in it.
 */
export class SlotPaths {
  constructor(
    readonly dataDir: string,
    readonly runDir: string,
    readonly isolation: IsolationLayout | null = null,
    /** The owner of an existing slot (its account depends on it). */
    private readonly ownerOf: (id: string) => string | null = () => null,
  ) {}

  /** The slot's account, or null where slots run as the agent's own user. */
  account(id: string, ownerId: string | null = this.ownerOf(id)): string | null {
    return this.isolation ? slotAccount(id, ownerId) : null;
  }
  slotDir(id: string): string {
    return join(this.dataDir, 'slots', id);
  }
  homeDir(id: string, ownerId?: string | null): string {
    const account = this.account(id, ownerId);
    return account ? join(this.isolation!.homes, account, id, 'home') : join(this.slotDir(id), 'home');
  }
  defaultWorkDir(id: string, ownerId?: string | null): string {
    const account = this.account(id, ownerId);
    return account ? join(this.isolation!.homes, account, id, 'work') : join(this.slotDir(id), 'work');
  }
  screenDir(id: string): string {
    return join(this.slotDir(id), 'screen');
  }
  /** The agent's folder for one account's slots (it owns it; the account reads it through its group). */
  accountRunDir(account: string): string {
    return join(this.isolation!.run, account);
  }
  envFile(id: string): string {
    const account = this.account(id);
    return account ? join(this.accountRunDir(account), `${id}.env`) : join(this.slotDir(id), 'env.sh');
  }
  exitFile(id: string): string {
    const account = this.account(id);
    return account ? join(this.accountRunDir(account), `${id}.exit`) : join(this.slotDir(id), 'last-exit');
  }
  /** The dtach socket the agent connects to. */
  socket(id: string): string {
    const account = this.account(id);
    return account ? join(this.accountRunDir(account), `${id}.sock`) : join(this.runDir, `${id}.sock`);
  }
  /**
   * Isolated slots only: where the account's dtach creates its socket (s/, which the account can write). The agent
   * moves it into its own folder before connecting (see SlotAccounts.claimSocket).
   */
  incomingSocket(id: string): string | null {
    const account = this.account(id);
    return account ? join(this.accountRunDir(account), 's', `${id}.sock`) : null;
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
