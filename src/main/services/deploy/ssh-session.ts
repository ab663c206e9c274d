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
   * On abort, ask the remote process to stop (SIGTERM) before closing the channel (default). Off for the release
   * commands: they finish on their own (and roll back by themselves), the panel only stops listening.
   */
  stopOnAbort?: boolean;
}

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
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error: Error | undefined, stream: ClientChannel) => {
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
        const onAbort = (): void => {
          if (options.stopOnAbort !== false) {
            try {
              stream.signal('TERM');
            } catch {
              // not supported by this sshd: closing the channel is all that is left
            }
          }
          stream.close();
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        stream.on('exit', (code: number | null) => (exitCode = typeof code === 'number' ? code : null));
        stream.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          stdout += text;
          options.onOutput?.(text);
          if (!options.onLine) return;
          partial += text;
          let newline: number;
          while ((newline = partial.indexOf('\n')) >= 0) {
            options.onLine(partial.slice(0, newline));
            partial = partial.slice(newline + 1);
          }
        });
        stream.stderr.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          stderr += text;
          options.onOutput?.(text);
        });
        stream.on('close', (code: number | null) => {
          options.signal?.removeEventListener('abort', onAbort);
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
      });
    });
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
