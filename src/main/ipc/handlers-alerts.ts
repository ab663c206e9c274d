import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type AlertsChannel = never;

/** The alerts area's IPC handlers (issue 13). */
export function createAlertsHandlers(_services: HandlerServices): Pick<Handlers, AlertsChannel> {
  return {};
}
