import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type BackupsChannel = never;

/** The backups area's IPC handlers (issue 13). */
export function createBackupsHandlers(_services: HandlerServices): Pick<Handlers, BackupsChannel> {
  return {};
}
