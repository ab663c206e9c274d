import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * The Electron app's entry with `electron` mocked (its binary cannot run here): what it asks of Electron is what
 * these tests check. The core (bootstrap) is replaced by a stub; the real one is tested through browser mode.
 */
type Handler = (...args: unknown[]) => unknown;

const state = vi.hoisted(() => ({
  lock: true,
  windows: [] as Array<{
    options: Record<string, unknown>;
    handlers: Map<string, Handler>;
    webContents: { handlers: Map<string, Handler>; openHandler: Handler | null };
    loadURL: ReturnType<typeof vi.fn>;
    loadFile: ReturnType<typeof vi.fn>;
  }>,
  ipcHandlers: new Map<string, Handler>(),
  ipcListeners: new Map<string, Handler>(),
  appHandlers: new Map<string, Handler>(),
  permissionHandler: null as Handler | null,
  headersHandler: null as Handler | null,
  quit: 0,
  dispatched: [] as Array<{ channel: string; input: unknown }>,
  external: [] as string[],
  // What the app asked of electron's protocol module, in order.
  protocol: [] as Array<{ call: string; args: unknown[] }>,
  bootstrapOptions: null as Record<string, unknown> | null,
}));

vi.mock('electron', () => {
  class BrowserWindow {
    static getAllWindows = (): unknown[] => state.windows;
    readonly handlers = new Map<string, Handler>();
    readonly webContents = {
      id: 7,
      handlers: new Map<string, Handler>(),
      openHandler: null as Handler | null,
      on: (event: string, handler: Handler) => this.webContents.handlers.set(event, handler),
      setWindowOpenHandler: (handler: Handler) => (this.webContents.openHandler = handler),
      isDestroyed: () => false,
      send: vi.fn(),
    };
    constructor(readonly options: Record<string, unknown>) {
      state.windows.push(this);
    }
    on(event: string, handler: Handler) {
      this.handlers.set(event, handler);
    }
    once(event: string, handler: Handler) {
      this.handlers.set(event, handler);
    }
    loadFile = vi.fn(() => Promise.resolve());
    loadURL = vi.fn(() => Promise.resolve());
    maximize = vi.fn();
    isDestroyed = () => false;
    isMaximized = () => false;
    getNormalBounds = () => ({ x: 0, y: 0, width: 1280, height: 820 });
  }
  const app = {
    requestSingleInstanceLock: () => state.lock,
    whenReady: () => {
      state.protocol.push({ call: 'ready', args: [] });
      return Promise.resolve();
    },
    on: (event: string, handler: Handler) => state.appHandlers.set(event, handler),
    quit: () => (state.quit += 1),
    getPath: () => '/tmp/slotdeck-electron-test',
    getVersion: () => '9.9.9',
    isPackaged: false,
  };
  return {
    app,
    BrowserWindow,
    // The desktop notifier for alerts is built from it at start; nothing is shown in these tests.
    Notification: class {
      static isSupported = () => false;
      show = vi.fn();
      on = vi.fn();
    },
    ipcMain: {
      handle: (channel: string, handler: Handler) => state.ipcHandlers.set(channel, handler),
      removeHandler: (channel: string) => state.ipcHandlers.delete(channel),
      on: (channel: string, handler: Handler) => state.ipcListeners.set(channel, handler),
      removeAllListeners: (channel: string) => state.ipcListeners.delete(channel),
    },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (handler: Handler) => (state.permissionHandler = handler),
        setPermissionCheckHandler: vi.fn(),
        webRequest: { onHeadersReceived: (handler: Handler) => (state.headersHandler = handler) },
      },
    },
    protocol: {
      registerSchemesAsPrivileged: (...args: unknown[]) =>
        state.protocol.push({ call: 'registerSchemesAsPrivileged', args }),
      handle: (...args: unknown[]) => state.protocol.push({ call: 'handle', args }),
    },
    screen: { getAllDisplays: () => [{ workArea: { x: 0, y: 0, width: 1920, height: 1080 } }] },
    shell: { openExternal: (url: string) => Promise.resolve(void state.external.push(url)) },
  };
});

vi.mock('electron-log/main', () => ({
  default: { initialize: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() },
}));

vi.mock('../../src/main/bootstrap', () => ({
  bootstrap: (options: Record<string, unknown>) => {
    state.bootstrapOptions = options;
    return Promise.resolve({
      dispatcher: {
        dispatch: (channel: string, input: unknown) => {
          state.dispatched.push({ channel, input });
          return Promise.resolve({ ok: true, data: 'done' });
        },
        cancel: vi.fn(),
      },
      events: { subscribe: () => () => undefined },
      settings: { preference: () => undefined, setPreference: vi.fn() },
      ready: Promise.resolve(),
      dispose: () => Promise.resolve(),
    });
  },
}));

beforeEach(() => {
  vi.resetModules();
  state.lock = true;
  state.windows.length = 0;
  state.ipcHandlers.clear();
  state.ipcListeners.clear();
  state.appHandlers.clear();
  state.quit = 0;
  state.dispatched.length = 0;
  state.external.length = 0;
  state.protocol.length = 0;
  state.bootstrapOptions = null;
});

afterEach(() => vi.clearAllMocks());

async function startApp(): Promise<void> {
  await import('../../src/main/index');
  await vi.waitFor(() => expect(state.windows.length).toBeGreaterThan(0));
}

describe('the Electron app', () => {
  it('opens one hardened window: no Node in the page, a sandboxed preload, context isolation', async () => {
    await startApp();
    const [window] = state.windows;
    const preferences = window!.options.webPreferences as Record<string, unknown>;
    expect(preferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
    });
    expect(String(preferences.preload)).toMatch(/preload\/index\.cjs$/);
  });

  it('keeps the window on the app: no navigation, no new windows, https links open in the browser', async () => {
    await startApp();
    const contents = state.windows[0]!.webContents;
    const navigate = { preventDefault: vi.fn() };
    contents.handlers.get('will-navigate')!(navigate);
    expect(navigate.preventDefault).toHaveBeenCalled();
    expect(contents.openHandler!({ url: 'https://docs.anthropic.com/' })).toEqual({ action: 'deny' });
    expect(contents.openHandler!({ url: 'file:///etc/passwd' })).toEqual({ action: 'deny' });
    await vi.waitFor(() => expect(state.external).toEqual(['https://docs.anthropic.com/']));
  });

  it('denies every permission and sends its content policy with every response', async () => {
    await startApp();
    const decide = vi.fn();
    state.permissionHandler!(null, 'media', decide);
    expect(decide).toHaveBeenCalledWith(false);
    const respond = vi.fn();
    state.headersHandler!({ responseHeaders: {} }, respond);
    const headers = (respond.mock.calls[0]![0] as { responseHeaders: Record<string, string[]> }).responseHeaders;
    expect(headers['Content-Security-Policy']![0]).toContain("script-src 'self'");
    expect(headers['Content-Security-Policy']![0]).toContain("object-src 'none'");
  });

  it('answers IPC only from its own page, through the dispatcher', async () => {
    await startApp();
    const handler = state.ipcHandlers.get('hosts:list')!;
    // The page the app loads: app://slotdeck/index.html.
    const mainFrame = { url: 'app://slotdeck/index.html' };
    const ours = { sender: { id: 7, mainFrame }, senderFrame: mainFrame };
    expect(await handler(ours, 'r1', {})).toEqual({ ok: true, data: 'done' });
    expect(state.dispatched).toEqual([{ channel: 'hosts:list', input: {} }]);

    const iframe = { url: mainFrame.url };
    const fromFrame = { sender: { id: 7, mainFrame }, senderFrame: iframe };
    expect(await handler(fromFrame, 'r2', {})).toMatchObject({ ok: false, error: { code: 'IPC_SENDER_REJECTED' } });
    const elsewhere = { url: 'https://evil.example/' };
    expect(await handler({ sender: { id: 7, mainFrame: elsewhere }, senderFrame: elsewhere }, 'r3', {})).toMatchObject({
      ok: false,
      error: { code: 'IPC_SENDER_REJECTED' },
    });
    // The built renderer as a file (how the app loaded it before), or another app:// host, is not our page.
    for (const url of [`file://${process.cwd()}/src/renderer/index.html`, 'app://evil/index.html', 'null']) {
      const frame = { url };
      expect(await handler({ sender: { id: 7, mainFrame: frame }, senderFrame: frame }, 'r4', {}), url).toMatchObject({
        ok: false,
        error: { code: 'IPC_SENDER_REJECTED' },
      });
    }
    expect(state.dispatched).toHaveLength(1);
  });

  it('serves its page from app://slotdeck, registered as a secure standard scheme before ready, and binds tickets to it', async () => {
    await startApp();
    expect(state.protocol.map((entry) => entry.call)).toEqual(['registerSchemesAsPrivileged', 'ready', 'handle']);
    expect(state.protocol[0]!.args[0]).toEqual([
      { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
    ]);
    expect(state.protocol[2]!.args[0]).toBe('app');
    expect(state.windows[0]!.loadURL).toHaveBeenCalledWith('app://slotdeck/index.html');
    expect(state.windows[0]!.loadFile).not.toHaveBeenCalled();
    const rendererOrigin = state.bootstrapOptions!.rendererOrigin as () => string;
    expect(rendererOrigin()).toBe('app://slotdeck');

    // The handler it registered serves the renderer's files (here the sources, run directly) and nothing beside.
    const handler = state.protocol[2]!.args[1] as (request: Request) => Promise<Response>;
    const page = await handler(new Request('app://slotdeck/index.html'));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    expect((await handler(new Request('app://slotdeck/../main/index.ts'))).status).toBe(404);
  });

  it('quits gracefully on Ctrl-C, SIGTERM or a closed terminal (before-quit stops the local agent) instead of dying at once', async () => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const listeners = () => signals.flatMap((signal) => process.listeners(signal).map((l) => [signal, l] as const));
    const before = new Set(listeners().map(([, l]) => l));
    await startApp();
    const added = listeners().filter(([, l]) => !before.has(l));
    try {
      expect(added.map(([signal]) => signal)).toEqual([...signals]);
      for (const [, listener] of added) (listener as () => void)();
      expect(state.quit).toBe(3);
    } finally {
      for (const [signal, listener] of added) process.off(signal, listener);
    }
  });

  it('quits at once when another instance already runs', async () => {
    state.lock = false;
    await import('../../src/main/index');
    expect(state.quit).toBe(1);
    expect(state.windows).toHaveLength(0);
  });
});
