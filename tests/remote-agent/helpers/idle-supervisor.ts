import type { ProcessSupervisor } from '../../../remote-agent/src/supervisor/supervisor.js';

/** A PM2 stand-in that supervises nothing, for route tests that do not run slots (registered slots stay stopped). */
export const idleSupervisor: ProcessSupervisor = {
  connect: () => Promise.resolve(),
  list: () => Promise.resolve([]),
  describe: () => Promise.resolve(null),
  start: () => Promise.resolve(),
  remove: () => Promise.resolve(),
  onProcessEvent: () => () => undefined,
  daemonPid: () => null,
  disconnect: () => Promise.resolve(),
  shutdownDaemon: () => Promise.resolve(),
};
