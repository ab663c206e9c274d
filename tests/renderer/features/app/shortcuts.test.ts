import { describe, expect, it } from 'vitest';
import { matchShortcut, shortcutLabel } from '../../../../src/renderer/src/features/app/shortcuts';

const key = (
  code: string,
  mods: { ctrl?: boolean; meta?: boolean; alt?: boolean; shift?: boolean } = {},
  keyName = code.replace(/^Key/, '').toLowerCase(),
) => ({
  code,
  key: keyName,
  ctrlKey: !!mods.ctrl,
  metaKey: !!mods.meta,
  altKey: !!mods.alt,
  shiftKey: !!mods.shift,
});

describe('app shortcuts', () => {
  it('switches consoles with Ctrl+PageUp/PageDown and with the alternatives a browser leaves to the page', () => {
    expect(matchShortcut(key('PageDown', { ctrl: true }, 'PageDown'))).toBe('next-console');
    expect(matchShortcut(key('PageUp', { ctrl: true }, 'PageUp'))).toBe('previous-console');
    expect(matchShortcut(key('PageDown', { alt: true }, 'PageDown'))).toBe('next-console');
    expect(matchShortcut(key('PageUp', { alt: true }, 'PageUp'))).toBe('previous-console');
    expect(matchShortcut(key('BracketRight', { ctrl: true, shift: true }, '}'))).toBe('next-console');
    expect(matchShortcut(key('BracketLeft', { ctrl: true, shift: true }, '{'))).toBe('previous-console');
  });

  it('has Alt+Shift alternatives for new slot, add host and close console, matched by the key (Option on a Mac types ˜)', () => {
    expect(matchShortcut(key('KeyN', { alt: true, shift: true }, '˜'))).toBe('new-slot');
    expect(matchShortcut(key('KeyH', { alt: true, shift: true }, 'Ó'))).toBe('add-host');
    expect(matchShortcut(key('KeyW', { alt: true, shift: true }, '„'))).toBe('close-console');
    expect(matchShortcut(key('KeyW', { meta: true, shift: true }))).toBe('close-console');
    expect(matchShortcut(key('Slash', { ctrl: true, shift: true }, '?'))).toBe('help');
  });

  it('leaves the browser-mode alternatives to the program in the desktop app, where the desktop chords work', () => {
    const desktop = false;
    expect(matchShortcut(key('KeyW', { alt: true, shift: true }, '„'), desktop)).toBeNull(); // Emacs's M-W
    expect(matchShortcut(key('PageDown', { alt: true }, 'PageDown'), desktop)).toBeNull();
    expect(matchShortcut(key('BracketRight', { ctrl: true, shift: true }, '}'), desktop)).toBeNull();
    expect(matchShortcut(key('KeyW', { ctrl: true, shift: true }), desktop)).toBe('close-console');
    expect(matchShortcut(key('PageDown', { ctrl: true }, 'PageDown'), desktop)).toBe('next-console');
    expect(shortcutLabel('close-console', desktop)).toBe('Ctrl+Shift+W');
    expect(shortcutLabel('close-console', true)).toBe('Ctrl+Shift+W or Alt+Shift+W');
  });

  it("leaves the shell's own keys to the shell", () => {
    expect(matchShortcut(key('KeyW', { ctrl: true }))).toBeNull(); // delete the word before the cursor
    expect(matchShortcut(key('KeyN', { alt: true }))).toBeNull();
    expect(matchShortcut(key('PageDown', {}, 'PageDown'))).toBeNull();
    expect(matchShortcut(key('PageDown', { shift: true }, 'PageDown'))).toBeNull();
    expect(matchShortcut(key('BracketLeft', { ctrl: true }, '['))).toBeNull(); // Escape
    expect(matchShortcut(key('KeyF', { ctrl: true, alt: true, shift: true }))).toBeNull();
  });

  it('names both chords where the admin reads them', () => {
    expect(shortcutLabel('close-console')).toBe('Ctrl+Shift+W or Alt+Shift+W');
    expect(shortcutLabel('next-console')).toBe('Ctrl+PageDown or Alt+PageDown or Ctrl+Shift+]');
  });
});
