import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { CANCEL_CHANNEL, isEventChannel, isInvokeChannel } from '../shared/ipc/channels';

/**
 * The renderer's only door to main: invoke and cancel on listed channels, and listen to listed events. Nothing
 * else of Electron or Node reaches the page.
 */
contextBridge.exposeInMainWorld('slotdeck', {
  invoke: (channel: unknown, requestId: unknown, input: unknown): Promise<unknown> => {
    if (!isInvokeChannel(channel)) return Promise.reject(new Error(`unknown IPC channel ${String(channel)}`));
    return ipcRenderer.invoke(channel, String(requestId), input);
  },
  cancel: (requestId: unknown): void => ipcRenderer.send(CANCEL_CHANNEL, String(requestId)),
  on: (channel: unknown, listener: (payload: unknown) => void): (() => void) => {
    if (!isEventChannel(channel) || typeof listener !== 'function') return () => undefined;
    const wrapped = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
    ipcRenderer.on(channel, wrapped);
    return () => ipcRenderer.removeListener(channel, wrapped);
  },
});
