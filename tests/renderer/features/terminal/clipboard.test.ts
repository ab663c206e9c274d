import { ClipboardAddon } from '@xterm/addon-clipboard';
import xtermHeadless from '@xterm/headless';
import type { Terminal as BrowserTerminal } from '@xterm/xterm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  clipboardPreview,
  ConsentClipboardProvider,
  type ClipboardRequest,
} from '../../../../src/renderer/src/features/terminal/clipboard';

// The addon's bundle is built for browsers, where `self` is the window.
vi.hoisted(() => {
  (globalThis as { self?: unknown }).self ??= globalThis;
});

const { Terminal } = xtermHeadless;

/** What a program in a slot prints to put text on the clipboard (OSC 52, as tmux and vim send it). */
const osc52 = (text: string, selection = 'c'): string =>
  `\x1b]52;${selection};${btoa(String.fromCharCode(...new TextEncoder().encode(text)))}\x07`;

/** A console as the panel builds it: xterm with the clipboard addon over our provider, and a fake system clipboard. */
function console_(alwaysAllowed = false) {
  const clipboard = {
    readText: vi.fn(() => Promise.resolve('admin secret')),
    writeText: vi.fn(() => Promise.resolve()),
  };
  vi.stubGlobal('navigator', { clipboard });
  const shown: Array<ClipboardRequest | null> = [];
  let always = alwaysAllowed;
  const provider = new ConsentClipboardProvider({
    alwaysAllowed: () => always,
    rememberAlways: () => (always = true),
    show: (request) => shown.push(request),
  });
  const term = new Terminal({ allowProposedApi: true });
  term.loadAddon(new ClipboardAddon(undefined, provider));
  const replies: string[] = [];
  term.onData((data) => replies.push(data));
  const print = (data: string): Promise<void> => new Promise((resolve) => term.write(data, resolve));
  return { clipboard, shown, provider, term: term as unknown as BrowserTerminal, print, replies, always: () => always };
}

beforeEach(() => {
  vi.unstubAllGlobals();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the console clipboard (OSC 52)', () => {
  it('never reads the clipboard: a program asking for it is told it is empty', async () => {
    const { clipboard, print, replies } = console_(true);
    await print('\x1b]52;c;?\x07');
    expect(clipboard.readText).not.toHaveBeenCalled();
    expect(replies).toEqual(['\x1b]52;c;\x07']);
  });

  it('copies nothing until the admin allows it, and then exactly the text shown', async () => {
    const { clipboard, shown, print } = console_();
    await print(`before${osc52('git push --force')}after`);
    expect(clipboard.writeText).not.toHaveBeenCalled();
    expect(shown).toHaveLength(1);
    const request = shown[0]!;
    expect(request.preview).toBe('git push --force');
    request.allow(false);
    expect(clipboard.writeText).toHaveBeenCalledWith('git push --force');
    // The prompt went away, and a second click does not copy twice.
    expect(shown.at(-1)).toBeNull();
    request.allow(false);
    expect(clipboard.writeText).toHaveBeenCalledTimes(1);
  });

  it('copies nothing when the admin denies, or when a newer request replaced the one answered', async () => {
    const { clipboard, shown, print } = console_();
    await print(osc52('first'));
    await print(osc52('second'));
    const [first, second] = shown as [ClipboardRequest, ClipboardRequest];
    expect(second.text).toBe('second');
    first.allow(false);
    expect(clipboard.writeText).not.toHaveBeenCalled();
    second.deny();
    expect(clipboard.writeText).not.toHaveBeenCalled();
  });

  it('remembers "always allow" for the slot: later writes are copied without asking', async () => {
    const { clipboard, shown, print, always } = console_();
    await print(osc52('one'));
    shown[0]!.allow(true);
    expect(always()).toBe(true);
    await print(osc52('two'));
    expect(shown.filter(Boolean)).toHaveLength(1);
    expect(clipboard.writeText.mock.calls).toEqual([['one'], ['two']]);
  });

  it('ignores clears, invalid data and the X11 primary selection', async () => {
    const { clipboard, shown, print } = console_(true);
    await print('\x1b]52;c;\x07');
    await print('\x1b]52;c;!!notbase64!!\x07');
    await print(osc52('primary', 'p'));
    expect(clipboard.writeText).not.toHaveBeenCalled();
    expect(shown).toEqual([]);
  });

  it('keeps printing output while a request waits for an answer', async () => {
    const { term, print, shown } = console_();
    await print(`${osc52('x')}still here`);
    expect(shown).toHaveLength(1);
    expect(term.buffer.active.getLine(0)?.translateToString(true)).toBe('still here');
  });

  it('drops a request still shown when the console closes', async () => {
    const { clipboard, shown, print, provider } = console_();
    await print(osc52('late'));
    const request = shown[0]!;
    provider.dispose();
    expect(shown.at(-1)).toBeNull();
    request.allow(false);
    expect(clipboard.writeText).not.toHaveBeenCalled();
  });

  it('previews the first characters on one line, without control characters', () => {
    expect(clipboardPreview('abc')).toBe('abc');
    expect(clipboardPreview('a\nb\x1b[31mc')).toBe('a⏎b·[31mc');
    expect(clipboardPreview('x'.repeat(50))).toBe(`${'x'.repeat(40)}…`);
  });
});
