import type { ITheme } from '@xterm/xterm';
import { useEffect, useState } from 'react';
import type { Theme } from '../../stores/ui';

export const XTERM_THEMES: Record<'light' | 'dark', ITheme> = {
  dark: {
    background: '#11141a',
    foreground: '#d7dbe3',
    cursor: '#7fd1a8',
    cursorAccent: '#11141a',
    selectionBackground: '#2f3b52',
    black: '#1b1f27',
    red: '#e06c75',
    green: '#7fd1a8',
    yellow: '#e5c07b',
    blue: '#61afef',
    magenta: '#c678dd',
    cyan: '#56b6c2',
    white: '#d7dbe3',
    brightBlack: '#5c6370',
    brightRed: '#ef8690',
    brightGreen: '#98e0bb',
    brightYellow: '#f0d08f',
    brightBlue: '#82c0f4',
    brightMagenta: '#d69ae6',
    brightCyan: '#7ccad4',
    brightWhite: '#ffffff',
  },
  light: {
    background: '#fbfbfc',
    foreground: '#2a2f3a',
    cursor: '#2a7f5a',
    cursorAccent: '#fbfbfc',
    selectionBackground: '#cfe3ff',
    black: '#2a2f3a',
    red: '#c4384a',
    green: '#2a7f5a',
    yellow: '#9a6a00',
    blue: '#2563c9',
    magenta: '#9a3fb8',
    cyan: '#137a87',
    white: '#dfe3ea',
    brightBlack: '#6b7385',
    brightRed: '#d94c5e',
    brightGreen: '#35996d',
    brightYellow: '#b88200',
    brightBlue: '#3b7be0',
    brightMagenta: '#b257d1',
    brightCyan: '#1a92a1',
    brightWhite: '#ffffff',
  },
};

/** The theme in effect: the admin's choice, or the system's when they chose "system". */
export function useResolvedTheme(choice: Theme): 'light' | 'dark' {
  const query = typeof window.matchMedia === 'function' ? window.matchMedia('(prefers-color-scheme: dark)') : null;
  const [systemDark, setSystemDark] = useState(query?.matches ?? true);
  useEffect(() => {
    if (!query) return;
    const update = (): void => setSystemDark(query.matches);
    query.addEventListener('change', update);
    return () => query.removeEventListener('change', update);
  }, [query]);
  return choice === 'system' ? (systemDark ? 'dark' : 'light') : choice;
}
