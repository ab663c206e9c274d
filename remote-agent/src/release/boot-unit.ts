/**
 * The systemd unit that brings an agent account's PM2, agent and slots back at boot. Pure (no Node-only imports),
 * so the panel renders the unit itself from values it knows, instead of writing as root whatever the agent's
 * account prints.
 */

export const unitName = (account: string): string => `slotdeck-agent-${account}.service`;
export const systemdUnitPath = (account: string): string => `/etc/systemd/system/${unitName(account)}`;

const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;

/** A value inside double quotes in a unit file: backslash and quote escaped, % doubled (systemd's specifiers). */
export function systemdQuote(value: string): string {
  if (/[\0\n\r]/.test(value)) throw new Error('a systemd unit value cannot hold a newline or NUL');
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('%', '%%')}"`;
}

/** An ExecStart= word: quoted as above, and $ doubled (ExecStart expands $NAME). */
const execWord = (value: string): string => systemdQuote(value).replaceAll('$', '$$$$');

export interface BootUnitOptions {
  /** The account the agent runs as (User=). */
  account: string;
  /** <ROOT>/bin/slotdeck-agent of that account. */
  wrapper: string;
  /** The agent's settings saved for boot: SLOTDECK_AGENT_* without keys, tokens or secrets. */
  env?: Record<string, string | undefined>;
}

export function bootUnit({ account, wrapper, env = {} }: BootUnitOptions): string {
  if (!ACCOUNT.test(account)) throw new Error(`"${account}" is not an account name`);
  if (!wrapper.startsWith('/')) throw new Error('the wrapper must be an absolute path');
  const settings = Object.entries(env)
    .filter(([name, value]) => /^SLOTDECK_AGENT_[A-Z0-9_]+$/.test(name) && value && !/KEY|TOKEN|SECRET/.test(name))
    .map(([name, value]) => `Environment=${systemdQuote(`${name}=${value}`)}\n`)
    .join('');
  return `[Unit]
Description=Slotdeck agent of ${account} (its PM2 daemon, the agent and its slots)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
User=${account}
${settings}ExecStart=${execWord(wrapper)} release resurrect
# PM2's daemon stays in this unit's control group: stopping the unit stops the agent and its slots.
KillMode=control-group

[Install]
WantedBy=multi-user.target
`;
}
