import { join } from 'node:path';
import { app, BrowserWindow, ipcMain, session, shell } from 'electron';
import { ipcContract, type IpcResult } from '../shared/ipc/contract';

const RENDERER_URL = process.env.ELECTRON_RENDERER_URL;

/** The renderer gets nothing it did not ask for: no Node, a sandbox, our own origin only. */
function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 560,
    title: 'Slotdeck',
    show: false,
    webPreferences: {
      preload: join(import.meta.dirname, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  });
  window.once('ready-to-show', () => window.show());
  window.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  window.webContents.on('will-navigate', (event) => event.preventDefault());
  if (RENDERER_URL) void window.loadURL(RENDERER_URL);
  else void window.loadFile(join(import.meta.dirname, '../renderer/index.html'));
  return window;
}

function registerIpc(): void {
  ipcMain.handle('app:info', (event, input): IpcResult<unknown> => {
    // Only our own top-level page may call main.
    if (event.senderFrame !== event.sender.mainFrame)
      return {
        ok: false,
        error: { code: 'IPC_SENDER_REJECTED', message: 'Calls are accepted from the app window only.' },
      };
    const parsed = ipcContract['app:info'].input.safeParse(input ?? {});
    if (!parsed.success) return { ok: false, error: { code: 'IPC_INPUT_INVALID', message: parsed.error.message } };
    return { ok: true, data: { name: 'Slotdeck', version: app.getVersion(), mode: 'electron' } };
  });
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => BrowserWindow.getAllWindows()[0]?.focus());
  void app.whenReady().then(() => {
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
    registerIpc();
    createWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) createWindow();
    });
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
}
