import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SLOT_NPROC, HELPER_DIR, HELPER_PATH, helperConfigFile } from './modules/slots/accounts.js';

const RESOURCES = fileURLToPath(new URL('../resources/', import.meta.url));

export class SetupError extends Error {}

export interface SetupHostOptions {
  /** The agent's account (created when missing). */
  user: string;
  /** The agent's data dir; default: where `serve` run as that account looks (~/.local/share/slotdeck-agent). */
  dataDir?: string | undefined;
  say?: (line: string) => void;
}

export interface SetupHostResult {
  user: string;
  uid: number;
  dataDir: string;
  homes: string;
  run: string;
  sudoersFile: string;
}

const run = (command: string, args: string[]): string =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The helper's own PATH (slotdeck-helper.sh): sudo's secure_path may lack /usr/local/bin, where dtach may be built. */
const HELPER_SEARCH_PATH = '/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin';

const has = (command: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:${HELPER_SEARCH_PATH}` },
    });
    return true;
  } catch {
    return false;
  }
};

function passwdEntry(user: string): { uid: number; gid: number; home: string } | null {
  try {
    const fields = run('getent', ['passwd', user]).trim().split(':');
    return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! };
  } catch {
    return null;
  }
}

/** Installs what the helper needs (sudo, dtach, pkill, setpriv/prlimit) with the distribution's package manager. */
function installPackages(say: (line: string) => void): void {
  const needed: Array<[string, { apt: string; dnf: string }]> = [
    ['sudo', { apt: 'sudo', dnf: 'sudo' }],
    ['dtach', { apt: 'dtach', dnf: 'dtach' }],
    ['pkill', { apt: 'procps', dnf: 'procps-ng' }],
    ['setpriv', { apt: 'util-linux', dnf: 'util-linux' }],
    ['prlimit', { apt: 'util-linux', dnf: 'util-linux' }],
    ['useradd', { apt: 'passwd', dnf: 'shadow-utils' }],
  ];
  const missing = needed.filter(([command]) => !has(command));
  if (missing.length === 0) return;
  // A fresh cloud machine may still be installing packages itself (cloud-init, unattended-upgrades).
  if (has('cloud-init')) {
    say('waiting for cloud-init to finish');
    try {
      execFileSync('cloud-init', ['status', '--wait'], { stdio: 'ignore', timeout: 600_000 });
    } catch {
      // its own failure is not ours: go on, apt-get waits for the lock below
    }
  }
  if (has('apt-get')) {
    const packages = [...new Set(missing.map(([, p]) => p.apt))];
    say(`installing ${packages.join(' ')} with apt-get`);
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update', '-qq'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    execFileSync(
      'apt-get',
      ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '-qq', '--no-install-recommends', ...packages],
      {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      },
    );
  } else if (has('dnf')) {
    const packages = [...new Set(missing.map(([, p]) => p.dnf))];
    say(`installing ${packages.join(' ')} with dnf`);
    execFileSync('dnf', ['install', '-y', ...packages], { stdio: 'inherit' });
  } else {
    throw new SetupError(
      `Install ${missing.map(([c]) => c).join(', ')} with your package manager, then run this again.`,
    );
  }
}

/** Writes a root-owned file atomically. */
function writeRootFile(file: string, contents: string, mode: number): void {
  const temporary = `${file}.new`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, contents, { mode, flag: 'wx' });
  chmodSync(temporary, mode);
  renameSync(temporary, file);
}

/**
 * `slotdeck-agent setup-host`, run once as root: the agent's own unprivileged account and data dir (0700), the
 * root-owned helper with the holder and launcher scripts, its settings, and the one sudoers line that lets the
 * agent's account run the helper and nothing else. Safe to run again (it repairs modes and owners).
 */
export function setupHost(options: SetupHostOptions): SetupHostResult {
  const say = options.say ?? (() => undefined);
  if (process.getuid?.() !== 0) throw new SetupError('setup-host creates accounts and a sudoers rule: run it as root.');
  const { user } = options;
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(user)) {
    throw new SetupError(
      `"${user}" is not a usable account name: use lowercase letters, digits, _ and - (e.g. slotdeck).`,
    );
  }
  if (options.dataDir !== undefined && !isAbsolute(options.dataDir)) {
    throw new SetupError('--data-dir must be an absolute path, e.g. /var/lib/slotdeck/agent');
  }
  installPackages(say);

  let entry = passwdEntry(user);
  if (!entry) {
    say(`creating the account ${user}`);
    run('useradd', [
      '--system',
      '--user-group',
      '--create-home',
      '--home-dir',
      `/var/lib/${user}`,
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      'Slotdeck agent',
      user,
    ]);
    entry = passwdEntry(user)!;
  } else if (entry.uid === 0) {
    throw new SetupError('The agent account must not be root: pick another --user.');
  }
  const home = entry.home;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chownSync(home, entry.uid, entry.gid);
  chmodSync(home, 0o700);

  const dataDir = options.dataDir ?? join(home, '.local', 'share', 'slotdeck-agent');
  // Every folder from the home down to the data dir is the agent's; the data dir itself is 0700.
  // Parents made here must let the agent through (mkdir's mode applies to each folder it makes).
  mkdirSync(dirname(dataDir), { recursive: true, mode: 0o755 });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (dataDir.startsWith(`${home}/`)) {
    for (let dir = dataDir; dir !== home; dir = dirname(dir)) chownSync(dir, entry.uid, entry.gid);
  } else {
    chownSync(dataDir, entry.uid, entry.gid);
  }
  chmodSync(dataDir, 0o700);
  // An existing data dir (a host that ran the agent as another user) is handed over whole, links not followed.
  run('chown', ['-R', '--no-dereference', `${entry.uid}:${entry.gid}`, dataDir]);

  // The helper and the scripts it runs: root's, outside anything the agent can write.
  mkdirSync(HELPER_DIR, { recursive: true, mode: 0o755 });
  chownSync(HELPER_DIR, 0, 0);
  chmodSync(HELPER_DIR, 0o755);
  for (const [from, to] of [
    ['slotdeck-helper.sh', 'slotdeck-helper'],
    ['slot-holder.sh', 'slot-holder.sh'],
    ['slot-launch.sh', 'slot-launch.sh'],
  ] as const) {
    const temporary = join(HELPER_DIR, `${to}.new`);
    rmSync(temporary, { force: true });
    copyFileSync(join(RESOURCES, from), temporary);
    chownSync(temporary, 0, 0);
    chmodSync(temporary, 0o755);
    renameSync(temporary, join(HELPER_DIR, to));
  }

  const homes = `/home/${user}-slots`;
  const runRoot = `/run/${user}-slots`;
  mkdirSync('/etc/slotdeck/agents', { recursive: true, mode: 0o755 });
  writeRootFile(
    helperConfigFile(user),
    `# Written by slotdeck-agent setup-host: where ${user}'s slot accounts live.\nhomes=${homes}\nrun=${runRoot}\nnproc=${DEFAULT_SLOT_NPROC}\n`,
    0o644,
  );
  for (const dir of [homes, runRoot]) {
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    chownSync(dir, 0, 0);
    chmodSync(dir, 0o711);
  }

  // One line: the agent's account may run the helper as root, nothing else; visudo checks it before it counts.
  const sudoersFile = `/etc/sudoers.d/slotdeck-${user.replaceAll('.', '-')}`;
  const staged = `/etc/sudoers.d/.slotdeck-${user}.new`;
  rmSync(staged, { force: true });
  writeFileSync(staged, `${user} ALL=(root) NOPASSWD: ${HELPER_PATH}\n`, { mode: 0o440, flag: 'wx' });
  try {
    run('visudo', ['-c', '-q', '-f', staged]);
  } catch (error) {
    rmSync(staged, { force: true });
    throw new SetupError(`visudo refused the sudoers rule: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
  renameSync(staged, sudoersFile);
  if (!existsSync(sudoersFile)) throw new SetupError(`could not write ${sudoersFile}`);
  say(`${user} may run ${HELPER_PATH} as root (${sudoersFile}); slots' homes: ${homes}`);
  return { user, uid: entry.uid, dataDir, homes, run: runRoot, sudoersFile };
}
