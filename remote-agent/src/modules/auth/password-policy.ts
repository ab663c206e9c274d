import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AgentErrorCode, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../contract/index.js';
import { AppError } from '../../errors.js';

/** Ships in the package's resources/ (three levels above src/modules/auth and dist/modules/auth). */
export const COMMON_PASSWORDS_PATH = fileURLToPath(new URL('../../../resources/common-passwords.txt', import.meta.url));

let common: Set<string> | null = null;
function commonPasswords(): Set<string> {
  common ??= new Set(
    readFileSync(COMMON_PASSWORDS_PATH, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#')),
  );
  return common;
}

/**
 * NIST 800-63B: length (12-256), not a known common password (also with digits or symbols appended, the usual way
 * to pass a length rule), not the user's own name or email. Throws AUTH_PASSWORD_WEAK or AUTH_PASSWORD_COMMON.
 */
export function checkPassword(password: string, user: { username: string; email: string | null }): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH)
    throw new AppError(
      AgentErrorCode.AUTH_PASSWORD_WEAK,
      400,
      `The password needs at least ${PASSWORD_MIN_LENGTH} characters. A few unrelated words make a long password that is easy to remember.`,
    );
  if (length > PASSWORD_MAX_LENGTH)
    throw new AppError(
      AgentErrorCode.AUTH_PASSWORD_WEAK,
      400,
      `The password may have at most ${PASSWORD_MAX_LENGTH} characters.`,
    );
  const lower = password.toLowerCase();
  const names = [user.username, user.email, user.email?.split('@')[0]].filter(
    (name): name is string => typeof name === 'string' && name.length >= 3,
  );
  if (names.some((name) => lower.includes(name.toLowerCase())))
    throw new AppError(
      AgentErrorCode.AUTH_PASSWORD_WEAK,
      400,
      'The password must not contain your username or email. Choose something others cannot guess from your account.',
    );
  const stem = lower.replace(/[\d\W_]+$/u, '');
  const list = commonPasswords();
  if (list.has(lower) || (stem.length >= 4 && list.has(stem)) || new Set(lower).size <= 2)
    throw new AppError(
      AgentErrorCode.AUTH_PASSWORD_COMMON,
      400,
      'This password is on lists of common passwords that attackers try first. Choose another one.',
    );
}
