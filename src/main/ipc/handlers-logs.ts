import { LOG_DOWNLOAD_PATH, logsApi } from '../../../remote-agent/src/contract/index';
import { IpcErrorCode } from '../../shared/ipc/errors';
import { exportFromAgent } from './agent-export';
import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type LogsChannel = 'logs:sources' | 'logs:read' | 'logs:download';

/** The logs area's IPC handlers (issue 13): each a call to the host's agent, which reads and pages the files. */
export function createLogsHandlers(services: HandlerServices): Pick<Handlers, LogsChannel> {
  const agent = (hostId: string) => services.hosts.client(hostId);
  return {
    'logs:sources': ({ hostId }, { signal }) => agent(hostId).call(logsApi.listLogSources, {}, signal),
    'logs:read': ({ hostId, source, ...query }, { signal }) =>
      agent(hostId).call(logsApi.readLog, { params: { source }, query }, signal),
    'logs:download': ({ hostId, source }, { signal }) =>
      exportFromAgent(
        agent(hostId),
        {
          path: LOG_DOWNLOAD_PATH.replace(':source', encodeURIComponent(source)),
          query: {},
          fileName: `${hostId}-${source}.log`,
          mimeType: 'text/plain',
          writeFailedCode: IpcErrorCode.LOG_DOWNLOAD_FAILED,
          tooLargeCode: IpcErrorCode.LOG_DOWNLOAD_TOO_LARGE,
          narrowHint: 'Read it in the viewer (filter by text or jump to a time)',
        },
        services.pickSaveFile,
        signal,
      ),
  };
}
