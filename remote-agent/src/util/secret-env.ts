import { SECRET_ENV_NAMES, SECRET_ENV_PATTERN } from '../contract/secret-env.js';

export { SECRET_ENV_NAMES, SECRET_ENV_PATTERN };

/*
 * The agent reads each secret of its environment once at start and removes it before it starts anything (PM2's
 * daemon, and through it every slot, inherits whatever is left), so no child's environment ever holds one.
 */
const taken = new Map<string, string | undefined>();

/** The variable's value as the agent started with it, removed from process.env on first call. */
export function takeSecretEnv(name: (typeof SECRET_ENV_NAMES)[number]): string | undefined {
  if (!taken.has(name)) {
    taken.set(name, process.env[name]);
    delete process.env[name];
  }
  return taken.get(name);
}

/** Takes every known secret and removes anything secret-looking from process.env. */
export function scrubSecretEnv(env: NodeJS.ProcessEnv = process.env): void {
  if (env === process.env) for (const name of SECRET_ENV_NAMES) takeSecretEnv(name);
  for (const name of Object.keys(env)) if (SECRET_ENV_PATTERN.test(name)) delete env[name];
}
