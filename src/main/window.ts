import type { BrowserWindow as BrowserWindowType, Rectangle, Session } from 'electron';
import { CONTENT_SECURITY_POLICY } from './web-host';

export interface WindowState {
  bounds: Rectangle;
  maximized: boolean;
}

export interface WindowDeps {
  BrowserWindow: typeof BrowserWindowType;
  session: Session;
  openExternal: (url: string) => Promise<void>;
  /** Whether a rectangle is visible on one of the displays (a remembered position may be on a screen now gone). */
  isVisible: (bounds: Rectangle) => boolean;
}

export interface WindowOptions {
  preload: string;
  /** The renderer: a dev server URL, or the built index.html. */
  url?: string;
  file?: string;
  state?: WindowState | undefined;
  saveState: (state: WindowState) => void;
}

/**
 * The app window, locked down: no Node in the page, a sandboxed preload, context isolation, our content policy, no
 * navigation away from the app, no new windows (https links open in the browser), every permission denied.
 */
export function createMainWindow(deps: WindowDeps, options: WindowOptions): BrowserWindowType {
  const remembered = options.state && deps.isVisible(options.state.bounds) ? options.state.bounds : undefined;
  const window = new deps.BrowserWindow({
    width: remembered?.width ?? 1280,
    height: remembered?.height ?? 820,
    ...(remembered ? { x: remembered.x, y: remembered.y } : {}),
    minWidth: 900,
    minHeight: 560,
    title: 'Slotdeck',
    show: false,
    backgroundColor: '#14171d',
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  if (options.state?.maximized) window.maximize();

  deps.session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  deps.session.setPermissionCheckHandler(() => false);
  deps.session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
  });

  window.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//.test(url)) void deps.openExternal(url);
    return { action: 'deny' };
  });
  // The page never leaves the app: not by a link or script (will-navigate), not by a server redirect during a
  // navigation (will-redirect), not in any frame (will-frame-navigate). Loading the app itself is programmatic and
  // raises none of these.
  window.webContents.on('will-navigate', (event) => event.preventDefault());
  window.webContents.on('will-redirect', (event) => event.preventDefault());
  window.webContents.on('will-frame-navigate', (event) => event.preventDefault());
  window.webContents.on('will-attach-webview', (event) => event.preventDefault());
  window.once('ready-to-show', () => window.show());

  let saveTimer: NodeJS.Timeout | null = null;
  const save = (): void => {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = setTimeout(() => {
      if (!window.isDestroyed())
        options.saveState({ bounds: window.getNormalBounds(), maximized: window.isMaximized() });
    }, 500);
  };
  window.on('resize', save);
  window.on('move', save);
  window.on('close', () => {
    if (saveTimer) clearTimeout(saveTimer);
    options.saveState({ bounds: window.getNormalBounds(), maximized: window.isMaximized() });
  });

  if (options.url) void window.loadURL(options.url);
  else if (options.file) void window.loadFile(options.file);
  return window;
}
