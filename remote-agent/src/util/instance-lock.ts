import { unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';

export class InstanceLockedError extends Error {}

/**
 * One agent per data dir. The lock is a listening unix socket: the kernel drops it the moment its owner dies
 * (kill -9 included), unlike a pid file, which a zombie or a reused pid can hold.
 */
export async function acquireInstanceLock(path: string): Promise<{ release(): void }> {
  const taken = await new Promise<boolean>((resolve) => {
    const probe = createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (taken) throw new InstanceLockedError(path);
  try {
    unlinkSync(path);
  } catch {
    // No stale socket to remove.
  }
  const server: Server = createServer((connection) => connection.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  server.unref();
  return {
    release() {
      server.close();
    },
  };
}
