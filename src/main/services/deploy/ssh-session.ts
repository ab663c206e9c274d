import type { Client as SshClient, ClientChannel, SFTPWrapper } from 'ssh2';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import { openSsh, type SshTarget } from '../ssh/tunnel';

export interface ExecOptions {
  /** Each complete line of stdout, as it arrives (the release CLI's JSON lines). */
  onLine?: (line: string) => void;
  /** Raw output of either stream, as it arrives (a step's output box). */
  onOutput?: (text: string) => void;
  signal?: AbortSignal;
  /**
   * What an abort does on the host:
   * - `group` (default): every process the command started (sudo, sh, npm, tar...) is sent SIGTERM through a
   *   second command (`killCommand`), then SIGKILL if still there; the call settles once the command has exited.
   * - `wait`: nothing is signalled (a package manager killed halfway leaves a broken package database); the call
   *   settles, as cancelled, when the command has finished on its own.
   * - `detach`: the panel stops listening; the command goes on (the release commands finish and roll back alone).
   */
  onAbort?: 'group' | 'wait' | 'detach';
  /** The command that signals a process group (`kill -TERM -- -<pgid>`, through sudo where others' processes are). */
  killCommand?: (signal: 'TERM' | 'KILL', pgid: number) => string;
}

/** The first line a `group` command prints: the process group its processes are in. */
const PGID_MARKER = 'SLOTDECK_PGID ';
/** How long a signalled command has to exit before it gets SIGKILL, and after that before the panel stops waiting. */
const TERM_GRACE_MS = 15_000;
const KILL_GRACE_MS = 5_000;

/**
 * Wraps a command so that its first stdout line names its process group. sshd makes each non-PTY session a session
 * (and group) leader of its own, and `exec` keeps that pid, so every process the command starts shares the group
 * unless it makes one of its own (sudo with use_pty does, and passes the signal on to it).
 */
export function inProcessGroup(command: string): string {
  const quoted = `'${command.replace(/'/g, `'\\''`)}'`;
  return `printf '${PGID_MARKER}%s\\n' "$$"; exec sh -c ${quoted}`;
}

export const plainKill = (signal: 'TERM' | 'KILL', pgid: number): string => `kill -${signal} -- -${pgid}`;

export interface ExecResult {
  /** The remote command's exit status; null when it ended by a signal or the channel was closed under it. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The deploy's own SSH connection to a host: commands with their output streamed as it comes, and uploads over SFTP
 * with progress. Same login and the same pinned host key as the host's tunnel (openSsh), but a connection of its
 * own, so a deploy does not depend on the tunnel it is about to reconnect.
 */
export class DeploySession {
  private lost = false;
  private sftpChannel: SFTPWrapper | null = null;

  private constructor(
    private readonly client: SshClient,
    private readonly label: string,
  ) {}

  static async open(target: SshTarget): Promise<DeploySession> {
    let session: DeploySession | null = null;
    const client = await openSsh(target, () => {
      if (session) session.lost = true;
    });
    session = new DeploySession(client, target.label);
    return session;
  }

  get isOpen(): boolean {
    return !this.lost;
  }

  /**
   * Runs a command (through the login shell) and streams its output. Aborting closes the channel after asking the
   * remote process to stop (SIGTERM, where sshd honours signals): the command's own cleanup decides what is left.
   */
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.lost) return Promise.reject(this.lostError());
    if (options.signal?.aborted) return Promise.reject(cancelled());
    const onAbortMode = options.onAbort ?? 'group';
    const grouped = onAbortMode === 'group';
    return new Promise((resolve, reject) => {
      this.client.exec(
        grouped ? inProcessGroup(command) : command,
        (error: Error | undefined, stream: ClientChannel) => {
          if (error) {
            reject(
              new IpcError(IpcErrorCode.SSH_UNREACHABLE, `Could not run a command on ${this.label}: ${error.message}`),
            );
            return;
          }
          let stdout = '';
          let stderr = '';
          let partial = '';
          let exitCode: number | null = null;
          let pgid: number | null = null;
          // Until the marker line is read (grouped commands only), stdout is held here.
          let head = grouped ? '' : null;
          let closed = false;
          const closedPromise = new Promise<void>((done) => stream.once('close', () => done()));
          const takeStdout = (text: string): void => {
            stdout += text;
            options.onOutput?.(text);
            if (!options.onLine) return;
            partial += text;
            let newline: number;
            while ((newline = partial.indexOf('\n')) >= 0) {
              options.onLine(partial.slice(0, newline));
              partial = partial.slice(newline + 1);
            }
          };
          const onAbort = (): void => {
            if (onAbortMode === 'detach') {
              stream.close();
              return;
            }
            if (onAbortMode === 'wait') return; // settles as cancelled when the command ends
            void this.stopGroup(pgid, options.killCommand ?? plainKill, () => closed, closedPromise).finally(() =>
              stream.close(),
            );
          };
          options.signal?.addEventListener('abort', onAbort, { once: true });
          stream.on('exit', (code: number | null) => (exitCode = typeof code === 'number' ? code : null));
          stream.on('data', (chunk: Buffer) => {
            const text = chunk.toString();
            if (head === null) {
              takeStdout(text);
              return;
            }
            head += text;
            const newline = head.indexOf('\n');
            if (newline < 0) return;
            const first = head.slice(0, newline);
            const rest = head.slice(newline + 1);
            head = null;
            if (first.startsWith(PGID_MARKER)) pgid = Number(first.slice(PGID_MARKER.length)) || null;
            else takeStdout(`${first}\n`);
            if (rest) takeStdout(rest);
          });
          stream.stderr.on('data', (chunk: Buffer) => {
            const text = chunk.toString();
            stderr += text;
            options.onOutput?.(text);
          });
          stream.on('close', (code: number | null) => {
            closed = true;
            options.signal?.removeEventListener('abort', onAbort);
            if (head) takeStdout(head);
            if (partial && options.onLine) options.onLine(partial);
            if (options.signal?.aborted) {
              reject(cancelled());
              return;
            }
            if (this.lost && exitCode === null && typeof code !== 'number') {
              reject(this.lostError());
              return;
            }
            resolve({ code: exitCode ?? (typeof code === 'number' ? code : null), stdout, stderr });
          });
        },
      );
    });
  }

  /**
   * Stops a grouped command on the host: SIGTERM to its process group over a second channel, SIGKILL if it is still
   * running after a grace period. Resolves when the command's channel closed (or the panel gave up waiting).
   */
  private async stopGroup(
    pgid: number | null,
    killCommand: (signal: 'TERM' | 'KILL', pgid: number) => string,
    isClosed: () => boolean,
    closed: Promise<void>,
  ): Promise<void> {
    if (pgid === null || this.lost) return;
    const within = (ms: number): Promise<boolean> =>
      Promise.race([
        closed.then(() => true),
        new Promise<boolean>((done) => setTimeout(() => done(false), ms).unref()),
      ]);
    for (const [signal, grace] of [
      ['TERM', TERM_GRACE_MS],
      ['KILL', KILL_GRACE_MS],
    ] as const) {
      if (isClosed()) return;
      await this.exec(killCommand(signal, pgid), { onAbort: 'detach' }).catch(() => undefined);
      if (await within(grace)) return;
    }
  }

  /** Uploads a file over SFTP (parallel reads), reporting bytes sent; the remote file gets `mode`. */
  async upload(
    localPath: string,
    remotePath: string,
    options: { mode?: number; onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
  ): Promise<void> {
    const sftp = await this.sftp();
    if (options.signal?.aborted) throw cancelled();
    await new Promise<void>((resolve, reject) => {
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        // fastPut has no cancel: ending the SFTP channel makes it fail at its next request.
        sftp.end();
        this.sftpChannel = null;
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      sftp.fastPut(
        localPath,
        remotePath,
        {
          mode: options.mode ?? 0o644,
          step: (done: number, _chunk: number, total: number) => options.onProgress?.(done, total),
        },
        (error?: Error | null) => {
          options.signal?.removeEventListener('abort', onAbort);
          if (aborted) reject(cancelled());
          else if (error)
            reject(
              new IpcError(
                IpcErrorCode.DEPLOY_FAILED,
                `Uploading to ${this.label} failed (${error.message}). Check the free disk space on the host.`,
              ),
            );
          else resolve();
        },
      );
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    if (this.sftpChannel) return Promise.resolve(this.sftpChannel);
    return new Promise((resolve, reject) => {
      this.client.sftp((error, sftp) => {
        if (error) {
          reject(
            new IpcError(
              IpcErrorCode.DEPLOY_FAILED,
              `${this.label} offers no SFTP (${error.message}). Enable the sftp subsystem in its sshd_config.`,
            ),
          );
          return;
        }
        this.sftpChannel = sftp;
        resolve(sftp);
      });
    });
  }

  private lostError(): IpcError {
    return new IpcError(
      IpcErrorCode.SSH_UNREACHABLE,
      `The SSH connection to ${this.label} was lost. Check that the host is up, then retry.`,
    );
  }

  close(): void {
    this.sftpChannel?.end();
    this.sftpChannel = null;
    this.client.end();
  }
}

function cancelled(): IpcError {
  return new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
}
