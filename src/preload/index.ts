import { contextBridge, ipcRenderer } from 'electron';
import { isInvokeChannel } from '../shared/ipc/channels';

/** The renderer's only door to main: invoke on listed channels. Nothing else of Electron or Node leaks through. */
contextBridge.exposeInMainWorld('slotdeck', {
  invoke: (channel: unknown, input: unknown): Promise<unknown> => {
    if (!isInvokeChannel(channel)) return Promise.reject(new Error(`unknown IPC channel ${String(channel)}`));
    return ipcRenderer.invoke(channel, input);
  },
});
