import { createServer, type Server, type Socket } from 'node:net';
import ssh2, { type Client as SshClient, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { HostStatus } from '../../../shared/ipc/contract';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { Logger } from '../../log';
import { describeHostKey, type HostKeyInfo } from './host-key';

// ssh2 is CommonJS: its named exports are reachable only through the default export under Node's ESM loader.
const { Client, utils } = ssh2;

export type TunnelAuth = { privateKey: string; passphrase?: string | undefined } | { agentSocket: string };

export interface TunnelOptions extends SshTarget {
  /** The agent's port on the host's loopback, which the tunnel forwards to. */
  remotePort: number;
  onStatus: (status: HostStatus) => void;
  log: Logger;
  backoff?: { initialMs: number; maxMs: number };
}

/** Failures a retry cannot fix: they need the admin. */
const FINAL = new Set<string>([
  IpcErrorCode.HOST_KEY_UNKNOWN,
  IpcErrorCode.HOST_KEY_MISMATCH,
  IpcErrorCode.SSH_AUTH_FAILED,
  IpcErrorCode.SSH_KEY_INVALID,
  IpcErrorCode.SSH_KEY_PASSPHRASE,
  IpcErrorCode.SSH_KEY_FILE_UNREADABLE,
]);

/** Checks a private key before it is used or stored, with the message the admin needs. */
export function checkPrivateKey(key: string, passphrase?: string): void {
  const parsed = utils.parseKey(key, passphrase);
  if (!(parsed instanceof Error)) return;
  if (/no passphrase given/i.test(parsed.message)) {
    throw new IpcError(IpcErrorCode.SSH_KEY_PASSPHRASE, 'This private key is encrypted: enter its passphrase.');
  }
  if (/passphrase|decrypt|bad/i.test(parsed.message) && passphrase) {
    throw new IpcError(
      IpcErrorCode.SSH_KEY_PASSPHRASE,
      'The passphrase does not decrypt this private key. Check it and try again.',
    );
  }
  throw new IpcError(
    IpcErrorCode.SSH_KEY_INVALID,
    `This is not a private key Slotdeck can use (${parsed.message}). Paste the whole private key (OpenSSH or PEM), from its BEGIN line to its END line.`,
  );
}

/** Where to open an SSH connection and how to log in; shared by the tunnel and the deploy's own connection. */
export interface SshTarget {
  /** For messages: the host's name as the admin knows it. */
  label: string;
  address: string;
  port: number;
  user: string;
  /** Read at every connection (a key file may have changed). */
  auth: () => Promise<TunnelAuth>;
  /** The pinned host key fingerprint, read at every connection; null when none is pinned yet. */
  pinnedFingerprint: () => string | null;
  readyTimeoutMs?: number;
  keepaliveIntervalMs?: number;
}

/**
 * Opens an SSH connection that accepts only the pinned host key (HOST_KEY_UNKNOWN / HOST_KEY_MISMATCH otherwise),
 * with failures explained for the admin. `onLost` is called when an established connection closes.
 */
export async function openSsh(target: SshTarget, onLost: () => void): Promise<SshClient> {
  const auth = await target.auth();
  if ('privateKey' in auth) checkPrivateKey(auth.privateKey, auth.passphrase);
  let presented: HostKeyInfo | null = null;
  let verdict: 'unknown' | 'mismatch' | 'ok' = 'ok';
  const pinned = target.pinnedFingerprint();
  const config: ConnectConfig = {
    host: target.address,
    port: target.port,
    username: target.user,
    readyTimeout: target.readyTimeoutMs ?? 15_000,
    keepaliveInterval: target.keepaliveIntervalMs ?? 5000,
    keepaliveCountMax: 3,
    ...('privateKey' in auth
      ? { privateKey: auth.privateKey, ...(auth.passphrase ? { passphrase: auth.passphrase } : {}) }
      : { agent: auth.agentSocket }),
    // No host key is ever accepted silently: it must match the one the admin pinned.
    hostVerifier: (key: Buffer) => {
      presented = describeHostKey(key);
      verdict = !pinned ? 'unknown' : presented.fingerprint === pinned ? 'ok' : 'mismatch';
      return verdict === 'ok';
    },
  };
  const client = new Client();
  const explain = (error: Error): IpcError => explainSshFailure(target, error, verdict, presented, pinned);
  return new Promise<SshClient>((resolve, reject) => {
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(explain(error));
    });
    client.on('close', () => {
      if (!settled) {
        settled = true;
        reject(explain(new Error('the connection closed during the handshake')));
        return;
      }
      onLost();
    });
    try {
      client.connect(config);
    } catch (error) {
      settled = true;
      reject(explain(error as Error));
    }
  });
}

/** Turns an ssh2 failure into what happened, for the admin. */
function explainSshFailure(
  target: SshTarget,
  error: Error & { level?: string; code?: string },
  verdict: string,
  presented: HostKeyInfo | null,
  pinned: string | null,
): IpcError {
  if (error instanceof IpcError) return error;
  const where = `${target.address}:${target.port}`;
  if (verdict === 'unknown' && presented) {
    return new IpcError(
      IpcErrorCode.HOST_KEY_UNKNOWN,
      `${target.label} presented a host key Slotdeck has not seen before. Check its fingerprint ${presented.fingerprint} (on the host: ssh-keygen -lf /etc/ssh/ssh_host_${presented.algorithm.replace(/^ssh-|-.*$/g, '')}_key.pub) and trust it to connect.`,
      { algorithm: presented.algorithm, fingerprint: presented.fingerprint },
    );
  }
  if (verdict === 'mismatch' && presented && pinned) {
    return new IpcError(
      IpcErrorCode.HOST_KEY_MISMATCH,
      `WARNING: ${target.label} presented a different host key than the one pinned. This happens when the host was reinstalled, or when someone is intercepting the connection. Connection blocked. If you know why the key changed, replace the pinned key.`,
      { algorithm: presented.algorithm, fingerprint: presented.fingerprint, pinnedFingerprint: pinned },
    );
  }
  if (error.level === 'client-authentication') {
    return new IpcError(
      IpcErrorCode.SSH_AUTH_FAILED,
      `${target.label} refused the login as ${target.user}. Check the user name, and that the public key is in ~${target.user}/.ssh/authorized_keys on the host.`,
    );
  }
  if (error.level === 'agent') {
    return new IpcError(
      IpcErrorCode.SSH_AGENT_UNAVAILABLE,
      `The SSH agent did not answer (${error.message}). Start it and add your key (ssh-add), or use a key file.`,
    );
  }
  if (error.level === 'client-timeout' || error.code === 'ETIMEDOUT') {
    return new IpcError(
      IpcErrorCode.SSH_TIMEOUT,
      `${where} did not answer in time. Check that the host is up and that a firewall lets SSH through.`,
    );
  }
  if (error.level === 'client-dns' || error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
    return new IpcError(
      IpcErrorCode.SSH_UNREACHABLE,
      `The name ${target.address} could not be resolved. Check the address.`,
    );
  }
  if (
    error.code === 'ECONNREFUSED' ||
    error.code === 'EHOSTUNREACH' ||
    error.code === 'ENETUNREACH' ||
    error.level === 'client-socket'
  ) {
    return new IpcError(
      IpcErrorCode.SSH_UNREACHABLE,
      `Nothing accepts SSH connections at ${where} (${error.code ?? error.message}). Check the address and port, and that sshd runs on the host.`,
    );
  }
  if (/privateKey|key format|parse/i.test(error.message)) {
    return new IpcError(IpcErrorCode.SSH_KEY_INVALID, `The private key could not be used (${error.message}).`);
  }
  return new IpcError(IpcErrorCode.SSH_UNREACHABLE, `The SSH connection to ${where} failed: ${error.message}.`);
}

/**
 * An SSH connection to a host with a local port forwarded to the agent on the host's loopback. The host's key must
 * match the pinned fingerprint (nothing is accepted silently). The local port stays the same for the tunnel's life,
 * so URLs handed out before a reconnect keep working after it. A lost connection is retried with exponential
 * backoff and jitter; failures only the admin can fix (key mismatch, refused login) stop the retries.
 */
export class Tunnel {
  private server: Server | null = null;
  private client: SshClient | null = null;
  private ready = false;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly sockets = new Set<Socket>();
  localPort = 0;

  constructor(private readonly options: TunnelOptions) {}

  get isConnected(): boolean {
    return this.ready;
  }

  /** Listens locally and connects; rejects with the first attempt's failure (the admin is waiting for it). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.listen();
    this.status({ state: 'connecting' });
    try {
      await this.connect();
    } catch (error) {
      this.status({ state: 'failed', error: toShape(error) });
      this.stop({ silent: true });
      throw error;
    }
  }

  private listen(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((socket) => this.forward(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        this.localPort = typeof address === 'object' && address ? address.port : 0;
        resolve();
      });
    });
  }

  private forward(socket: Socket): void {
    const client = this.client;
    if (!this.ready || !client) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    try {
      client.forwardOut('127.0.0.1', socket.remotePort ?? 0, '127.0.0.1', this.options.remotePort, (error, stream) => {
        if (error) {
          socket.destroy();
          return;
        }
        socket.pipe(stream).pipe(socket);
        stream.on('error', () => socket.destroy());
        stream.on('close', () => socket.destroy());
      });
    } catch {
      // ssh2 throws "Not connected" at once when the SSH connection died an instant before its close event: this
      // local connection fails like any other; the reconnect that follows serves the next one.
      socket.destroy();
    }
  }

  private async connect(): Promise<void> {
    // The connection may close in the same turn it became ready: `made` is checked only when it is set.
    let made: SshClient | null = null;
    let lostEarly = false;
    const client = await openSsh(this.options, () => {
      if (made === null) lostEarly = true;
      else if (this.client === made) this.onLost();
    });
    made = client;
    this.client = client;
    this.ready = true;
    this.attempt = 0;
    this.status({ state: 'connected' });
    if (lostEarly) this.onLost();
  }

  private onLost(): void {
    this.ready = false;
    this.client = null;
    for (const socket of this.sockets) socket.destroy();
    if (this.stopped) return;
    this.options.log.warn(`SSH connection to ${this.options.label} lost; reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    this.attempt += 1;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 250, maxMs: 30_000 };
    const base = Math.min(maxMs, initialMs * 2 ** (this.attempt - 1));
    // ±20 % jitter, so many panels do not hammer a host that comes back in step.
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.status({
      state: 'reconnecting',
      attempt: this.attempt,
      nextRetryAt: new Date(Date.now() + delay).toISOString(),
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.stopped) return;
      this.connect().catch((error: unknown) => {
        if (this.stopped) return;
        if (error instanceof IpcError && FINAL.has(error.code)) {
          this.status({ state: 'failed', error: toShape(error) });
          return;
        }
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** Runs a command on the host and collects its output. */
  exec(command: string, signal?: AbortSignal): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const client = this.client;
    if (!client || !this.ready)
      return Promise.reject(new IpcError(IpcErrorCode.HOST_NOT_CONNECTED, `${this.options.label} is not connected.`));
    return new Promise((resolve, reject) => {
      client.exec(command, (error: Error | undefined, stream: ClientChannel) => {
        if (error) {
          reject(
            new IpcError(
              IpcErrorCode.SSH_UNREACHABLE,
              `Could not run a command on ${this.options.label}: ${error.message}`,
            ),
          );
          return;
        }
        let stdout = '';
        let stderr = '';
        signal?.addEventListener('abort', () => stream.close(), { once: true });
        stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        stream.on('close', (code: number | null) => resolve({ code, stdout, stderr }));
      });
    });
  }

  /** Ends the connection and the local listener. */
  stop(options: { silent?: boolean } = {}): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.ready = false;
    const client = this.client;
    this.client = null;
    client?.end();
    for (const socket of this.sockets) socket.destroy();
    this.server?.close();
    this.server = null;
    if (!options.silent) this.status({ state: 'disconnected' });
  }

  private status(status: Omit<HostStatus, 'since'>): void {
    this.options.onStatus({ ...status, since: new Date().toISOString() });
  }
}

function toShape(error: unknown): { code: string; message: string; details?: Record<string, string> } {
  if (error instanceof IpcError)
    return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  return { code: IpcErrorCode.SSH_UNREACHABLE, message: (error as Error).message };
}
