import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type HealthChannel = never;

/** The health area's IPC handlers (issue 13). */
export function createHealthHandlers(_services: HandlerServices): Pick<Handlers, HealthChannel> {
  return {};
}
