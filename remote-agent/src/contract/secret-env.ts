/**
 * Environment variables that hold secrets. Whoever starts a process of ours (the panel starting "This computer"'s
 * agent, the agent starting PM2 and so every slot) removes them from the child's environment: a program in a slot
 * can read the environment of every process of its own account (/proc/<pid>/environ).
 */
export const SECRET_ENV_NAMES = ['SLOTDECK_AGENT_UPSTREAM_KEY', 'SLOTDECK_MASTER_KEY', 'ANTHROPIC_API_KEY'] as const;

/** Names that look like secrets: removed from children's environments even when we never read them. */
export const SECRET_ENV_PATTERN = /(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSPHRASE|CREDENTIALS?)$|^AWS_SESSION_TOKEN$/i;

/** A copy of `env` without anything secret. */
export function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([name]) => !SECRET_ENV_PATTERN.test(name) && !(SECRET_ENV_NAMES as readonly string[]).includes(name),
    ),
  );
}
