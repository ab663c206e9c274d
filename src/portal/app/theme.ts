export type ThemeChoice = 'light' | 'dark' | 'system';

/** The theme the page shows for a choice: 'system' follows the browser's colour scheme. */
export function effectiveTheme(choice: ThemeChoice, prefersDark: boolean): 'light' | 'dark' {
  return choice === 'system' ? (prefersDark ? 'dark' : 'light') : choice;
}

const DARK_QUERY = '(prefers-color-scheme: dark)';

/** Applies a theme at once (data-theme on <html>); for 'system', follows later changes too. Returns a stop function. */
export function applyTheme(choice: ThemeChoice): () => void {
  const media = window.matchMedia(DARK_QUERY);
  const set = (): void => {
    document.documentElement.dataset.theme = effectiveTheme(choice, media.matches);
  };
  set();
  if (choice !== 'system') return () => undefined;
  media.addEventListener('change', set);
  return () => media.removeEventListener('change', set);
}

export function currentTheme(): 'light' | 'dark' {
  return document.documentElement.dataset.theme === 'light' ? 'light' : 'dark';
}
