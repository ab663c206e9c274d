import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type LogsChannel = never;

/** The logs area's IPC handlers (issue 13). */
export function createLogsHandlers(_services: HandlerServices): Pick<Handlers, LogsChannel> {
  return {};
}
