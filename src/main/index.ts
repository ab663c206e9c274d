/** The Electron app: the same core as browser mode, behind a hardened window and Electron's IPC. */
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  screen,
  session,
  shell,
  type IpcMainEvent,
  type IpcMainInvokeEvent,
} from 'electron';
import electronLog from 'electron-log/main';
import { bootstrap } from './bootstrap';
import { registerElectronIpc } from './ipc/electron';
import { loadKeyring } from './keyring';
import type { Logger } from './log';
import { createMainWindow, type WindowState } from './window';

const RENDERER_URL = process.env.ELECTRON_RENDERER_URL;
const rendererFile = join(import.meta.dirname, '../renderer/index.html');
// Packaged, the agent ships in the app's resources; in development it is the repository's.
const agentDir = app.isPackaged
  ? join(process.resourcesPath, 'remote-agent')
  : join(import.meta.dirname, '../../remote-agent');

electronLog.initialize();
const log: Logger = {
  info: (message, details) => electronLog.info(message, details ?? ''),
  warn: (message, details) => electronLog.warn(message, details ?? ''),
  error: (message, details) => electronLog.error(message, details ?? ''),
};

/** Our page in our main frame, nothing else (no iframes, no other origins). */
function isTrustedSender(event: IpcMainInvokeEvent | IpcMainEvent): boolean {
  const frame = event.senderFrame;
  if (!frame || frame !== event.sender.mainFrame) return false;
  const url = new URL(frame.url);
  return RENDERER_URL
    ? url.origin === new URL(RENDERER_URL).origin
    : url.protocol === 'file:' && url.pathname === new URL(`file://${rendererFile}`).pathname;
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  void app.whenReady().then(async () => {
    const core = await bootstrap({
      mode: 'electron',
      version: app.getVersion(),
      dataDir: app.getPath('userData'),
      agentDir,
      // The agent's native modules are built for Node, not for Electron: run it with the Node.js on PATH.
      nodePath: process.env.SLOTDECK_NODE ?? 'node',
      log,
      keyring: loadKeyring(),
      // The origin the page's WebSockets carry: the dev server's, or file:// (Chromium sends "null" for it; the
      // agent takes both for a file:// ticket).
      rendererOrigin: () => (RENDERER_URL ? new URL(RENDERER_URL).origin : 'file://'),
      pickSaveFile: async (suggestedName) => {
        const options = { defaultPath: join(app.getPath('downloads'), suggestedName) };
        const window = BrowserWindow.getFocusedWindow();
        const choice = await (window ? dialog.showSaveDialog(window, options) : dialog.showSaveDialog(options));
        return choice.canceled || !choice.filePath ? null : choice.filePath;
      },
    });
    const stopIpc = registerElectronIpc({
      ipcMain,
      dispatcher: core.dispatcher,
      events: core.events,
      isTrustedSender,
      targets: () => BrowserWindow.getAllWindows().map((w) => w.webContents),
    });
    const open = (): BrowserWindow =>
      createMainWindow(
        {
          BrowserWindow,
          session: session.defaultSession,
          openExternal: (url) => shell.openExternal(url),
          isVisible: (bounds) =>
            screen.getAllDisplays().some((display) => {
              const area = display.workArea;
              return (
                bounds.x < area.x + area.width &&
                bounds.x + bounds.width > area.x &&
                bounds.y < area.y + area.height &&
                bounds.y + bounds.height > area.y
              );
            }),
        },
        {
          preload: join(import.meta.dirname, '../preload/index.cjs'),
          ...(RENDERER_URL ? { url: RENDERER_URL } : { file: rendererFile }),
          state: core.settings.preference<WindowState>('window'),
          saveState: (state) => core.settings.setPreference('window', state),
        },
      );
    open();
    app.on('second-instance', () => {
      const [window] = BrowserWindow.getAllWindows();
      if (window?.isMinimized()) window.restore();
      window?.focus();
    });
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) open();
    });
    let quitting = false;
    app.on('before-quit', (event) => {
      if (quitting) return;
      event.preventDefault();
      quitting = true;
      stopIpc();
      // The local agent stops gracefully; slots keep running under PM2.
      void core.dispose().finally(() => app.quit());
    });
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
}
