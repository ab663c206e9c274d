import { useEffect } from 'react';
import type { AppStores } from '../../stores';

export type ShortcutAction =
  'new-slot' | 'add-host' | 'close-console' | 'next-console' | 'previous-console' | 'find' | 'toggle-theme' | 'help';

/** A key chord. `ctrl` means Ctrl, or Cmd on a Mac. Letters, digits and brackets are matched by their physical key. */
interface Chord {
  ctrl?: boolean;
  alt?: boolean;
  shift?: boolean;
  /** KeyboardEvent.code, e.g. 'KeyN', 'PageDown', 'BracketLeft', 'Slash'. */
  code: string;
  /** How the chord is written for the admin. */
  label: string;
}

interface Shortcut {
  action: ShortcutAction;
  description: string;
  /**
   * The first chord is the desktop one; later ones are alternatives for browser mode, where the browser keeps
   * Ctrl+Shift+N/W, Ctrl+PageUp/PageDown and Ctrl+T/W for itself (the page never sees them). Alt+Shift+letter and
   * Alt+PageUp/PageDown are what VS Code's web build falls back to; Ctrl+Shift+[ ] is Tabby's and the Mac's tab switch.
   */
  chords: Chord[];
}

const chord = (label: string, code: string): Chord => {
  const parts = label.split('+');
  return { code, label, ctrl: parts.includes('Ctrl'), alt: parts.includes('Alt'), shift: parts.includes('Shift') };
};

export const SHORTCUTS: Shortcut[] = [
  {
    action: 'new-slot',
    description: 'New slot on the selected host',
    chords: [chord('Ctrl+Shift+N', 'KeyN'), chord('Alt+Shift+N', 'KeyN')],
  },
  {
    action: 'add-host',
    description: 'Add an SSH host',
    chords: [chord('Ctrl+Shift+H', 'KeyH'), chord('Alt+Shift+H', 'KeyH')],
  },
  {
    action: 'close-console',
    description: 'Close the console',
    chords: [chord('Ctrl+Shift+W', 'KeyW'), chord('Alt+Shift+W', 'KeyW')],
  },
  {
    action: 'next-console',
    description: 'Next console',
    chords: [
      chord('Ctrl+PageDown', 'PageDown'),
      chord('Alt+PageDown', 'PageDown'),
      chord('Ctrl+Shift+]', 'BracketRight'),
    ],
  },
  {
    action: 'previous-console',
    description: 'Previous console',
    chords: [chord('Ctrl+PageUp', 'PageUp'), chord('Alt+PageUp', 'PageUp'), chord('Ctrl+Shift+[', 'BracketLeft')],
  },
  { action: 'find', description: 'Find in the console', chords: [chord('Ctrl+Shift+F', 'KeyF')] },
  { action: 'toggle-theme', description: 'Switch light / dark theme', chords: [chord('Ctrl+Shift+L', 'KeyL')] },
  { action: 'help', description: 'These shortcuts', chords: [chord('Ctrl+Shift+/', 'Slash')] },
];

type KeyLike = Pick<KeyboardEvent, 'code' | 'key' | 'ctrlKey' | 'metaKey' | 'altKey' | 'shiftKey'>;

/** The named keys some keyboards report only in `key` (no `code`, as on-screen keyboards and some remote desktops do). */
const CODE_OF_KEY: Record<string, string> = { PageDown: 'PageDown', PageUp: 'PageUp', '/': 'Slash', '?': 'Slash' };

function codeOf(event: KeyLike): string {
  if (event.code) return event.code;
  if (/^[a-z]$/i.test(event.key)) return `Key${event.key.toUpperCase()}`;
  return CODE_OF_KEY[event.key] ?? event.key;
}

/** Browser mode (no Electron preload bridge): where the browser keeps some chords and the alternatives apply. */
const inBrowser = (): boolean => typeof window === 'undefined' || !window.slotdeck;

/**
 * The app action a key event stands for, or null: what the app handles and what the console lets through. The
 * browser-mode alternatives (Alt+Shift+letter, Alt+PageUp/PageDown, Ctrl+Shift+[ ]) count only in browser mode: in the
 * desktop app they stay with the program in the console (Alt+Shift+W is Emacs's M-W).
 */
export function matchShortcut(event: KeyLike, browser: boolean = inBrowser()): ShortcutAction | null {
  const code = codeOf(event);
  const ctrl = event.ctrlKey || event.metaKey;
  for (const shortcut of SHORTCUTS) {
    for (const c of browser ? shortcut.chords : shortcut.chords.slice(0, 1)) {
      if (c.code === code && !!c.ctrl === ctrl && !!c.alt === event.altKey && !!c.shift === event.shiftKey)
        return shortcut.action;
    }
  }
  return null;
}

/** How to write a shortcut in a tooltip: the desktop chord and its browser-safe alternative ("Ctrl+Shift+W or Alt+Shift+W"). */
export function shortcutLabel(action: ShortcutAction, browser: boolean = inBrowser()): string {
  const shortcut = SHORTCUTS.find((s) => s.action === action);
  if (!shortcut) return '';
  return (browser ? shortcut.chords : shortcut.chords.slice(0, 1)).map((c) => c.label).join(' or ');
}

/** The app's keyboard shortcuts, on the window; the consoles let these keys through to it (see TerminalController). */
export function useAppShortcuts(stores: Pick<AppStores, 'ui' | 'consoles'>): void {
  const { ui, consoles } = stores;
  useEffect(() => {
    const onKey = (event: KeyboardEvent): void => {
      const action = matchShortcut(event);
      // Find belongs to the visible console (ConsoleArea); with a dialog open, keys are the dialog's.
      if (!action || action === 'find' || ui.getState().dialog) return;
      const state = ui.getState();
      const tabs = consoles.getState();
      switch (action) {
        case 'new-slot':
          if (state.selectedHostId) state.open({ kind: 'create-slot', hostId: state.selectedHostId });
          break;
        case 'add-host':
          state.open({ kind: 'add-host' });
          break;
        case 'close-console':
          if (tabs.active) tabs.close(tabs.active);
          break;
        case 'next-console':
          tabs.cycle(1);
          break;
        case 'previous-console':
          tabs.cycle(-1);
          break;
        case 'toggle-theme':
          state.setTheme(state.theme === 'dark' ? 'light' : 'dark');
          break;
        case 'help':
          state.open({ kind: 'shortcuts' });
          break;
      }
      event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [ui, consoles]);
}
