/** The Electron app: the same core as browser mode, behind a hardened window and Electron's IPC. */
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Notification,
  protocol,
  screen,
  session,
  shell,
  type IpcMainEvent,
  type IpcMainInvokeEvent,
} from 'electron';
import { createDesktopNotifier } from './services/alerts/desktop-notifier';
import electronLog from 'electron-log/main';
import { APP_ORIGIN, APP_SCHEME_PRIVILEGES, APP_URL, isAppUrl, serveApp } from './app-protocol';
import { bootstrap } from './bootstrap';
import { registerElectronIpc } from './ipc/electron';
import { loadKeyring } from './keyring';
import type { Logger } from './log';
import { createMainWindow, type WindowState } from './window';

const RENDERER_URL = process.env.ELECTRON_RENDERER_URL;
const rendererDir = join(import.meta.dirname, '../renderer');
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
  return RENDERER_URL
    ? URL.canParse(frame.url) && new URL(frame.url).origin === new URL(RENDERER_URL).origin
    : isAppUrl(frame.url);
}

// The built renderer is served from app://slotdeck (see app-protocol.ts); the scheme must be known before ready.
protocol.registerSchemesAsPrivileged([APP_SCHEME_PRIVILEGES]);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  void app.whenReady().then(async () => {
    if (!RENDERER_URL) serveApp(protocol, rendererDir);
    const core = await bootstrap({
      mode: 'electron',
      version: app.getVersion(),
      dataDir: app.getPath('userData'),
      agentDir,
      // The agent's native modules are built for Node, not for Electron: run it with the Node.js on PATH.
      nodePath: process.env.SLOTDECK_NODE ?? 'node',
      log,
      keyring: loadKeyring(),
      // The origin the page's WebSockets carry, which terminal tickets are bound to: the dev server's, or app://slotdeck.
      rendererOrigin: () => (RENDERER_URL ? new URL(RENDERER_URL).origin : APP_ORIGIN),
      notify: createDesktopNotifier(Notification),
      pickSaveFile: async (suggestedName) => {
        const options = { defaultPath: join(app.getPath('downloads'), suggestedName) };
        const window = BrowserWindow.getFocusedWindow();
        const choice = await (window ? dialog.showSaveDialog(window, options) : dialog.showSaveDialog(options));
        return choice.canceled || !choice.filePath ? null : choice.filePath;
      },
      pickOpenFile: async () => {
        const options = {
          properties: ['openFile' as const],
          filters: [{ name: 'Slotdeck backup', extensions: ['tar'] }],
        };
        const window = BrowserWindow.getFocusedWindow();
        const choice = await (window ? dialog.showOpenDialog(window, options) : dialog.showOpenDialog(options));
        return choice.canceled ? null : (choice.filePaths[0] ?? null);
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
          url: RENDERER_URL ?? APP_URL,
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
  // Ctrl-C where `npm start` runs (or a signal to npm alone, which passes it on): quit as from the menu, so that
  // before-quit stops the local agent; Electron's default would end the process and leave the agent behind.
  const quitOnSignal = (): void => app.quit();
  process.on('SIGINT', quitOnSignal);
  process.on('SIGTERM', quitOnSignal);
  // The terminal that started it closed: same as Ctrl-C.
  process.on('SIGHUP', quitOnSignal);
}
