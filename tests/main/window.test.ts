import type { BrowserWindow, Rectangle, Session } from 'electron';
import { describe, expect, it, vi } from 'vitest';
import { createMainWindow, type WindowState } from '../../src/main/window';

/** A BrowserWindow stand-in that records what the window asked for (Electron cannot run here). */
function fakeElectron() {
  const created: Array<{
    options: Record<string, unknown>;
    handlers: Map<string, () => void>;
    maximize: ReturnType<typeof vi.fn>;
  }> = [];
  class FakeWindow {
    readonly handlers = new Map<string, () => void>();
    readonly maximize = vi.fn();
    readonly webContents = { setWindowOpenHandler: vi.fn(), on: vi.fn() };
    constructor(readonly options: Record<string, unknown>) {
      created.push(this);
    }
    on(event: string, handler: () => void) {
      this.handlers.set(event, handler);
    }
    once(event: string, handler: () => void) {
      this.handlers.set(event, handler);
    }
    loadFile = vi.fn(() => Promise.resolve());
    loadURL = vi.fn(() => Promise.resolve());
    isDestroyed = () => false;
    isMaximized = () => true;
    getNormalBounds = (): Rectangle => ({ x: 40, y: 50, width: 1000, height: 700 });
  }
  const session = {
    setPermissionRequestHandler: vi.fn(),
    setPermissionCheckHandler: vi.fn(),
    webRequest: { onHeadersReceived: vi.fn() },
  } as unknown as Session;
  return { created, BrowserWindow: FakeWindow as unknown as typeof BrowserWindow, session };
}

const onScreen = (bounds: Rectangle): boolean => bounds.x >= 0 && bounds.x < 1920 && bounds.y >= 0 && bounds.y < 1080;

describe('the app window', () => {
  it('comes back where the admin left it, maximized if it was', () => {
    const electron = fakeElectron();
    const state: WindowState = { bounds: { x: 100, y: 80, width: 1400, height: 900 }, maximized: true };
    createMainWindow(
      { ...electron, openExternal: vi.fn(), isVisible: onScreen },
      { preload: '/p.cjs', file: '/index.html', state, saveState: vi.fn() },
    );
    expect(electron.created[0]!.options).toMatchObject({ x: 100, y: 80, width: 1400, height: 900 });
    expect(electron.created[0]!.maximize).toHaveBeenCalled();
  });

  it('opens at the default size when the remembered place is on a screen that is gone', () => {
    const electron = fakeElectron();
    const state: WindowState = { bounds: { x: 3000, y: 80, width: 1400, height: 900 }, maximized: false };
    createMainWindow(
      { ...electron, openExternal: vi.fn(), isVisible: onScreen },
      { preload: '/p.cjs', file: '/index.html', state, saveState: vi.fn() },
    );
    expect(electron.created[0]!.options).toMatchObject({ width: 1280, height: 820 });
    expect(electron.created[0]!.options).not.toHaveProperty('x');
  });

  it('remembers its place when it closes', () => {
    const electron = fakeElectron();
    const saveState = vi.fn();
    createMainWindow(
      { ...electron, openExternal: vi.fn(), isVisible: onScreen },
      { preload: '/p.cjs', file: '/index.html', saveState },
    );
    electron.created[0]!.handlers.get('close')!();
    expect(saveState).toHaveBeenCalledWith({ bounds: { x: 40, y: 50, width: 1000, height: 700 }, maximized: true });
  });

  it.each(['will-navigate', 'will-redirect', 'will-frame-navigate'])(
    'keeps the page in the app: %s is refused, whatever the target',
    (event) => {
      const electron = fakeElectron();
      createMainWindow(
        { ...electron, openExternal: vi.fn(), isVisible: onScreen },
        { preload: '/p.cjs', file: '/index.html', saveState: vi.fn() },
      );
      const on = (electron.created[0] as unknown as { webContents: { on: ReturnType<typeof vi.fn> } }).webContents.on;
      const handlers = on.mock.calls
        .filter(([name]) => name === event)
        .map(([, handler]) => handler as (details: object, url: string) => void);
      expect(handlers.length, `${event} has a handler`).toBeGreaterThan(0);
      for (const url of ['https://evil.example/', 'file:///etc/passwd', 'http://127.0.0.1:1/']) {
        const details = { url, preventDefault: vi.fn(), isMainFrame: true, frame: null };
        for (const handler of handlers) handler(details, url);
        expect(details.preventDefault, `${event} to ${url}`).toHaveBeenCalled();
      }
    },
  );
});
