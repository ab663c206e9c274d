import type { IpcMain, IpcMainEvent, IpcMainInvokeEvent, WebContents } from 'electron';
import { CANCEL_CHANNEL, INVOKE_CHANNELS } from '../../shared/ipc/channels';
import { IpcErrorCode } from '../../shared/ipc/errors';
import type { Dispatcher } from './dispatch';
import type { EventBus } from './events';

export interface ElectronIpcOptions {
  ipcMain: Pick<IpcMain, 'handle' | 'removeHandler' | 'on' | 'removeAllListeners'>;
  dispatcher: Dispatcher;
  events: EventBus;
  /** Only our own page's main frame may call main (as VS Code checks every IPC sender). */
  isTrustedSender: (event: IpcMainInvokeEvent | IpcMainEvent) => boolean;
  /** Where events go: the app's windows. */
  targets: () => WebContents[];
}

/** Registers every invoke channel on Electron's IPC, through the one dispatcher. Returns the undo. */
export function registerElectronIpc(options: ElectronIpcOptions): () => void {
  const { ipcMain, dispatcher } = options;
  for (const channel of INVOKE_CHANNELS) {
    ipcMain.handle(channel, (event, requestId: unknown, input: unknown) => {
      if (!options.isTrustedSender(event)) {
        return {
          ok: false,
          error: {
            code: IpcErrorCode.IPC_SENDER_REJECTED,
            message: 'Calls are accepted from the Slotdeck window only.',
          },
        };
      }
      // Request ids come from the page: scope them to its window so that windows cannot cancel each other's calls.
      return dispatcher.dispatch(
        channel,
        input,
        typeof requestId === 'string' ? `${event.sender.id}:${requestId}` : undefined,
      );
    });
  }
  ipcMain.on(CANCEL_CHANNEL, (event: IpcMainEvent, requestId: unknown) => {
    if (options.isTrustedSender(event) && typeof requestId === 'string')
      dispatcher.cancel(`${event.sender.id}:${requestId}`);
  });
  const unsubscribe = options.events.subscribe((channel, payload) => {
    for (const contents of options.targets()) if (!contents.isDestroyed()) contents.send(channel, payload);
  });
  return () => {
    for (const channel of INVOKE_CHANNELS) ipcMain.removeHandler(channel);
    ipcMain.removeAllListeners(CANCEL_CHANNEL);
    unsubscribe();
  };
}
