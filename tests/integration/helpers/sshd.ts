import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childrenOf, killAll } from './processes.js';

const SSHD = '/usr/sbin/sshd';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file, '-C', 'slotdeck-test'], { stdio: 'ignore' });
}

/**
 * A real OpenSSH sshd on 127.0.0.1 with fresh host and client keys, for tunnel tests. It logs in the current user
 * (root here) by key only, and can be restarted (dropping every connection) with the same or a new host key.
 */
export class TestSshd {
  readonly dir = mkdtempSync(join(tmpdir(), 'sd-sshd-'));
  port = 0;

  private constructor() {}

  static async start(): Promise<TestSshd> {
    const sshd = new TestSshd();
    mkdirSync('/run/sshd', { recursive: true });
    keygen(join(sshd.dir, 'host_key'));
    keygen(join(sshd.dir, 'client_key'));
    // An encrypted copy of the client key, for passphrase tests.
    execFileSync('cp', [join(sshd.dir, 'client_key'), join(sshd.dir, 'client_key_encrypted')]);
    execFileSync('ssh-keygen', ['-q', '-p', '-N', 'correct horse', '-f', join(sshd.dir, 'client_key_encrypted')], {
      stdio: 'ignore',
    });
    writeFileSync(join(sshd.dir, 'authorized_keys'), readFileSync(join(sshd.dir, 'client_key.pub')));
    sshd.port = await freePort();
    await sshd.launch();
    return sshd;
  }

  get clientKey(): string {
    return readFileSync(join(this.dir, 'client_key'), 'utf8');
  }

  get clientKeyPath(): string {
    return join(this.dir, 'client_key');
  }

  get encryptedClientKey(): string {
    return readFileSync(join(this.dir, 'client_key_encrypted'), 'utf8');
  }

  /** The host key's fingerprint, as `ssh-keygen -l` prints it (SHA256:...). */
  get fingerprint(): string {
    return /(SHA256:\S+)/.exec(
      execFileSync('ssh-keygen', ['-lf', join(this.dir, 'host_key.pub')], { encoding: 'utf8' }),
    )![1]!;
  }

  private get pid(): number | null {
    try {
      return Number(readFileSync(join(this.dir, 'sshd.pid'), 'utf8').trim());
    } catch {
      return null;
    }
  }

  private async launch(): Promise<void> {
    const config = join(this.dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${this.port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(this.dir, 'host_key')}`,
        `PidFile ${join(this.dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'AllowTcpForwarding yes',
        'ClientAliveInterval 0',
        'Subsystem sftp internal-sftp',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    const check = spawnSync(SSHD, ['-t', '-f', config], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`sshd config rejected: ${check.stderr}`);
    rmSync(join(this.dir, 'sshd.pid'), { force: true });
    const run = spawnSync(SSHD, ['-f', config, '-E', join(this.dir, 'sshd.log')], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`sshd did not start: ${run.stderr}`);
    const deadline = Date.now() + 5000;
    while (this.pid === null) {
      if (Date.now() > deadline)
        throw new Error(`sshd wrote no pid file: ${readFileSync(join(this.dir, 'sshd.log'), 'utf8')}`);
      await sleep(20);
    }
  }

  /** Kills sshd and every connection it serves, like a host going away. */
  kill(): void {
    const pid = this.pid;
    if (pid === null) return;
    const sessions = childrenOf(pid);
    killAll([pid, ...sessions, ...sessions.flatMap((session) => childrenOf(session))]);
    rmSync(join(this.dir, 'sshd.pid'), { force: true });
  }

  /**
   * Drops every connection and starts again on the same port, with the same host key or a new one. `downUntil`
   * keeps the host down until the client has noticed (say, until it shows "reconnecting"): a fixed pause would be
   * too short on a loaded machine, and the client could reconnect before anyone saw it was down.
   */
  async restart(options: { newHostKey?: boolean; downUntil?: () => Promise<unknown> } = {}): Promise<void> {
    this.kill();
    if (options.newHostKey) {
      rmSync(join(this.dir, 'host_key'), { force: true });
      rmSync(join(this.dir, 'host_key.pub'), { force: true });
      keygen(join(this.dir, 'host_key'));
    }
    await options.downUntil?.();
    await this.launch();
  }

  stop(): void {
    this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
