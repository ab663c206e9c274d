/** Checks of the sign-in settings' fields as typed, before they go to the agent (which checks them again). */

const wholeIn = (text: string, min: number, max: number): number | null => {
  const n = Number(text.trim());
  return text.trim() && Number.isInteger(n) && n >= min && n <= max ? n : null;
};

export const IDLE_MINUTES = { min: 5, max: 30 * 24 * 60 };
export const ABSOLUTE_HOURS = { min: 1, max: 90 * 24 };

/** Session expiry: idle minutes and absolute hours, or what is wrong with each. */
export function sessionExpiry(
  idle: string,
  absolute: string,
): { value: { sessionIdleMinutes: number; sessionAbsoluteHours: number } } | { problems: Record<string, string> } {
  const problems: Record<string, string> = {};
  const sessionIdleMinutes = wholeIn(idle, IDLE_MINUTES.min, IDLE_MINUTES.max);
  const sessionAbsoluteHours = wholeIn(absolute, ABSOLUTE_HOURS.min, ABSOLUTE_HOURS.max);
  if (sessionIdleMinutes === null) problems.idle = 'a whole number of minutes from 5 to 43200 (30 days)';
  if (sessionAbsoluteHours === null) problems.absolute = 'a whole number of hours from 1 to 2160 (90 days)';
  if (sessionIdleMinutes !== null && sessionAbsoluteHours !== null && sessionIdleMinutes > sessionAbsoluteHours * 60)
    problems.idle = 'longer than the absolute limit, so it would never apply: make it shorter';
  return Object.keys(problems).length > 0 || sessionIdleMinutes === null || sessionAbsoluteHours === null
    ? { problems }
    : { value: { sessionIdleMinutes, sessionAbsoluteHours } };
}

/** How many keys an end user may make for themselves in the portal (0: none). */
export function keyLimit(text: string): number | string {
  return wholeIn(text, 0, 100) ?? 'a whole number from 0 (no keys of their own) to 100';
}

/**
 * A GitHub user id as typed: the numeric id, not the login or an email. Logins can be renamed and then taken by
 * someone else, and an email address can be added to another account; the numeric id never changes hands.
 */
export function githubUserId(text: string): number | string {
  const value = text.trim();
  if (/^[1-9][0-9]{0,15}$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  if (/^[0-9]+$/.test(value)) return 'enter the numeric GitHub user id as GitHub shows it, such as 583231';
  if (value.includes('@'))
    return 'that is an email address: enter the numeric GitHub user id instead (an email can be claimed by another account)';
  if (/^[A-Za-z0-9-]+$/.test(value))
    return `that looks like a login: open https://api.github.com/users/${value || '<login>'} and enter its "id" (a number)`;
  return 'enter the numeric GitHub user id, such as 583231';
}

/** GitHub's OAuth app client id as pasted (the agent checks it again). */
export function githubClientIdProblem(text: string): string | null {
  return /^[A-Za-z0-9._-]{4,100}$/.test(text.trim())
    ? null
    : 'paste the Client ID from the OAuth app’s page on GitHub (letters and digits)';
}

export function githubSecretProblem(text: string): string | null {
  return /^[A-Za-z0-9._-]{8,200}$/.test(text.trim())
    ? null
    : 'paste the whole client secret GitHub showed when you generated it';
}

/** Whether an address of the portal is one only this machine (or the host itself) can open. */
export function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '0.0.0.0';
  } catch {
    return false;
  }
}
