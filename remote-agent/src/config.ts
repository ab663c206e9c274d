import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';

/** Longest unix socket path Linux accepts (sun_path holds 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;
/** Room for the longest socket name in the run dir: `/<slot-id>.ttyd.sock` and `/<slot-id>.tmux.sock`. */
const MAX_RUN_DIR_LENGTH = MAX_SOCKET_PATH - '/0123456789.ttyd.sock'.length;
/** PM2 binds `rpc.sock` and `pub.sock` in its home. */
const MAX_PM2_HOME_LENGTH = MAX_SOCKET_PATH - '/rpc.sock'.length;

interface KeySpec {
  /** Dotted key in the config file. */
  key: string;
  env: string;
  /** Turns the environment string into the value the schema expects. */
  fromEnv: (raw: string) => unknown;
  fix: string;
}

const asInt = (raw: string): unknown => (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw);
const asString = (raw: string): unknown => raw;
const asJson = (raw: string): unknown => {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
};

const KEYS: KeySpec[] = [
  {
    key: 'dataDir',
    env: 'SLOTDECK_AGENT_DATA_DIR',
    fromEnv: asString,
    fix: 'use an absolute path, e.g. /var/lib/slotdeck-agent',
  },
  {
    key: 'admin.host',
    env: 'SLOTDECK_AGENT_ADMIN_HOST',
    fromEnv: asString,
    fix: 'the admin listener is loopback only: use 127.0.0.1 or ::1',
  },
  {
    key: 'admin.port',
    env: 'SLOTDECK_AGENT_ADMIN_PORT',
    fromEnv: asInt,
    fix: 'use a free TCP port 1-65535 (0 picks one), e.g. 7420',
  },
  {
    key: 'pm2Home',
    env: 'SLOTDECK_AGENT_PM2_HOME',
    fromEnv: asString,
    fix: 'use an absolute path; by default it lives under the data dir',
  },
  {
    key: 'runDir',
    env: 'SLOTDECK_AGENT_RUN_DIR',
    fromEnv: asString,
    fix: `use a short absolute path (at most ${MAX_RUN_DIR_LENGTH} characters) for the slots' sockets`,
  },
  {
    key: 'logLevel',
    env: 'SLOTDECK_AGENT_LOG_LEVEL',
    fromEnv: asString,
    fix: 'use one of fatal, error, warn, info, debug, trace, silent',
  },
  {
    key: 'log.maxBytes',
    env: 'SLOTDECK_AGENT_LOG_MAX_BYTES',
    fromEnv: asInt,
    fix: 'use bytes between 65536 and 1073741824, e.g. 10485760 (10 MiB)',
  },
  {
    key: 'log.maxFiles',
    env: 'SLOTDECK_AGENT_LOG_MAX_FILES',
    fromEnv: asInt,
    fix: 'use a number of files (the live one included) between 2 and 100, e.g. 5',
  },
  {
    key: 'log.maxAgeDays',
    env: 'SLOTDECK_AGENT_LOG_MAX_AGE_DAYS',
    fromEnv: asInt,
    fix: 'use a number of days between 1 and 3650, e.g. 30',
  },
  {
    key: 'log.stdout',
    env: 'SLOTDECK_AGENT_LOG_STDOUT',
    fromEnv: (raw) => (raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw),
    fix: 'use true or false',
  },
  {
    key: 'log.checkIntervalMs',
    env: 'SLOTDECK_AGENT_LOG_CHECK_INTERVAL_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 200 and 3600000, e.g. 10000',
  },
  {
    key: 'reconcileIntervalMs',
    env: 'SLOTDECK_AGENT_RECONCILE_INTERVAL_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 200 and 600000, e.g. 5000',
  },
  {
    key: 'crashLoop.maxRestarts',
    env: 'SLOTDECK_AGENT_CRASH_MAX_RESTARTS',
    fromEnv: asInt,
    fix: 'use a whole number 1-1000, e.g. 5',
  },
  {
    key: 'crashLoop.windowSeconds',
    env: 'SLOTDECK_AGENT_CRASH_WINDOW_S',
    fromEnv: asInt,
    fix: 'use seconds between 5 and 86400, e.g. 120',
  },
  {
    key: 'terminal.scrollbackLines',
    env: 'SLOTDECK_AGENT_SCROLLBACK_LINES',
    fromEnv: asInt,
    fix: 'use a number of lines between 100 and 100000, e.g. 10000',
  },
  {
    key: 'terminal.ticketTtlSeconds',
    env: 'SLOTDECK_AGENT_TICKET_TTL_S',
    fromEnv: asInt,
    fix: 'use seconds between 5 and 60, e.g. 30',
  },
  {
    key: 'terminal.journalCompactBytes',
    env: 'SLOTDECK_AGENT_JOURNAL_COMPACT_BYTES',
    fromEnv: asInt,
    fix: 'use bytes between 65536 and 1073741824, e.g. 4194304',
  },
  {
    key: 'terminal.openingTimeoutMs',
    env: 'SLOTDECK_AGENT_TERMINAL_OPENING_TIMEOUT_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 100 and 10000, e.g. 2000',
  },
  {
    key: 'gateway.host',
    env: 'SLOTDECK_AGENT_GATEWAY_HOST',
    fromEnv: asString,
    fix: 'use an IP address to listen on: 127.0.0.1 (this machine only, the default without TLS), 0.0.0.0 (all) or a local address',
  },
  {
    key: 'gateway.port',
    env: 'SLOTDECK_AGENT_GATEWAY_PORT',
    fromEnv: asInt,
    fix: 'use a free TCP port 1-65535 (0 picks one), e.g. 7421',
  },
  {
    key: 'gateway.enabled',
    env: 'SLOTDECK_AGENT_GATEWAY_ENABLED',
    fromEnv: (raw) => (raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw),
    fix: 'use true or false',
  },
  {
    key: 'gateway.upstreamBaseUrl',
    env: 'SLOTDECK_AGENT_UPSTREAM_URL',
    fromEnv: asString,
    fix: 'use the upstream API base URL, e.g. https://api.anthropic.com',
  },
  {
    key: 'gateway.upstreamTimeoutMs',
    env: 'SLOTDECK_AGENT_UPSTREAM_TIMEOUT_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 1000 and 3600000, e.g. 600000',
  },
  {
    key: 'gateway.tlsCertFile',
    env: 'SLOTDECK_AGENT_GATEWAY_TLS_CERT',
    fromEnv: asString,
    fix: 'use the absolute path of a PEM certificate (chain), e.g. /etc/letsencrypt/live/host/fullchain.pem',
  },
  {
    key: 'gateway.tlsKeyFile',
    env: 'SLOTDECK_AGENT_GATEWAY_TLS_KEY',
    fromEnv: asString,
    fix: 'use the absolute path of the PEM private key of the certificate, e.g. /etc/letsencrypt/live/host/privkey.pem',
  },
  {
    key: 'gateway.bodyTimeoutMs',
    env: 'SLOTDECK_AGENT_GATEWAY_BODY_TIMEOUT_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 100 and 600000, e.g. 30000',
  },
  {
    key: 'idle.stopCommand',
    env: 'SLOTDECK_AGENT_IDLE_STOP_COMMAND',
    fromEnv: asJson,
    fix: 'use a JSON array of the program and its arguments, e.g. ["sudo", "-n", "shutdown", "-h", "now"]',
  },
  {
    key: 'idle.tickMs',
    env: 'SLOTDECK_AGENT_IDLE_TICK_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 100 and 60000, e.g. 10000',
  },
  {
    key: 'alerts.intervalMs',
    env: 'SLOTDECK_AGENT_ALERTS_INTERVAL_MS',
    fromEnv: asInt,
    fix: 'use milliseconds between 100 and 600000, e.g. 30000',
  },
  {
    key: 'usage.archiveAfterDays',
    env: 'SLOTDECK_AGENT_USAGE_ARCHIVE_AFTER_DAYS',
    fromEnv: asInt,
    fix: 'use a number of days between 1 and 3650, e.g. 183',
  },
  {
    key: 'portal.publicUrl',
    env: 'SLOTDECK_AGENT_PORTAL_PUBLIC_URL',
    fromEnv: asString,
    fix: 'use the http(s) address end users open, without a path, e.g. https://slots.example.com',
  },
  {
    key: 'portal.githubUrl',
    env: 'SLOTDECK_AGENT_PORTAL_GITHUB_URL',
    fromEnv: asString,
    fix: 'use an http(s) origin, e.g. https://github.com',
  },
  {
    key: 'portal.githubApiUrl',
    env: 'SLOTDECK_AGENT_PORTAL_GITHUB_API_URL',
    fromEnv: asString,
    fix: 'use an http(s) origin, e.g. https://api.github.com',
  },
];

/**
 * USD per million tokens. `cacheWrite` is the 5-minute cache write, `cacheWrite1h` the 1-hour one (2x input when left
 * out, Anthropic's multiplier); cache reads are the discounted input.
 */
const TierPrice = {
  input: z.number().min(0),
  output: z.number().min(0),
  cacheWrite: z.number().min(0),
  cacheRead: z.number().min(0),
  cacheWrite1h: z.number().min(0).optional(),
};
export const ModelPrice = z.strictObject({
  ...TierPrice,
  /**
   * Long-context tier: a request whose input (input + cache writes + cache reads) is above `aboveInputTokens` is
   * priced at these rates for all of its tokens, output included (Sonnet 4 and 4.5 above 200k tokens).
   */
  longContext: z.strictObject({ aboveInputTokens: z.int().min(1), ...TierPrice }).optional(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;

const ipAddress = z.union([z.ipv4(), z.ipv6()], { message: 'must be an IP address such as 0.0.0.0 or 127.0.0.1' });

export const GatewayConfig = z
  .strictObject({
    enabled: z.boolean().default(true),
    /**
     * The public listener: end users' routes only. Without a host set, it is 127.0.0.1 (plain HTTP stays on this
     * machine, for a reverse proxy with TLS in front), or 0.0.0.0 when the gateway has its own TLS certificate.
     */
    host: ipAddress.optional(),
    port: z.int({ message: 'must be a whole number' }).min(0).max(65535).default(7421),
    upstreamBaseUrl: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL such as https://api.anthropic.com' })
      .default('https://api.anthropic.com'),
    /** Longest wait for upstream's response headers, and then between two pieces of a body. */
    upstreamTimeoutMs: z.int().min(1000).max(3_600_000).default(600_000),
    /**
     * TLS for the public listener, when no reverse proxy terminates it: PEM files, read at start. Both or neither.
     */
    tlsCertFile: z
      .string()
      .refine((p) => isAbsolute(p), { message: 'must be an absolute path' })
      .nullable()
      .default(null),
    tlsKeyFile: z
      .string()
      .refine((p) => isAbsolute(p), { message: 'must be an absolute path' })
      .nullable()
      .default(null),
    /** Requests are refused above this size (Anthropic's own limit is 32 MB). */
    bodyLimitBytes: z
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(32 * 1024 * 1024),
    /**
     * Prices by model id prefix (the longest matching prefix wins), over the built-in table; the key "*" is the price
     * of every model no prefix matches. A model without a price is metered in tokens at cost 0 (the agent logs it
     * once and the gateway status lists it), and users or keys with a cost quota are refused for it.
     */
    prices: z.record(z.string().min(1), ModelPrice).default({}),
    /** Longest pause in the upload of a request body; a stalled upload is answered 408 and its connection closed. */
    bodyTimeoutMs: z.int().min(100).max(600_000).default(30_000),
  })
  .refine((gateway) => (gateway.tlsCertFile === null) === (gateway.tlsKeyFile === null), {
    message: 'set both tlsCertFile and tlsKeyFile (or neither)',
    path: ['tlsKeyFile'],
  })
  .transform((gateway) => ({
    ...gateway,
    host: gateway.host ?? (gateway.tlsCertFile !== null ? '0.0.0.0' : '127.0.0.1'),
  }));
export type GatewayConfig = z.output<typeof GatewayConfig>;

const absolutePath = z.string().refine((p) => isAbsolute(p), { message: 'must be an absolute path' });
const httpOrigin = z
  .string()
  .refine(
    (value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && new URL(value).origin === value,
    {
      message: 'must be an http(s) origin such as https://example.com (no path or trailing /)',
    },
  );

export const AgentConfigSchema = z.strictObject({
  dataDir: absolutePath,
  admin: z
    .strictObject({
      host: z
        .enum(['127.0.0.1', '::1'], { message: 'must be 127.0.0.1 or ::1 (the admin listener never leaves loopback)' })
        .default('127.0.0.1'),
      port: z.int({ message: 'must be a whole number' }).min(0).max(65535).default(7420),
    })
    .default({ host: '127.0.0.1', port: 7420 }),
  pm2Home: absolutePath
    .refine((p) => p.length <= MAX_PM2_HOME_LENGTH, {
      message: `must be at most ${MAX_PM2_HOME_LENGTH} characters (PM2 binds unix sockets in it)`,
    })
    .optional(),
  runDir: absolutePath
    .refine((p) => p.length <= MAX_RUN_DIR_LENGTH, {
      message: `must be at most ${MAX_RUN_DIR_LENGTH} characters (unix socket paths are short)`,
    })
    .optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Rotation of the agent's log (`<data dir>/logs/agent.log`) and of the slots' PM2 output: a file is rotated when it
   * reaches maxBytes or its first line is maxAgeDays old; maxFiles files are kept, the live one included, and none
   * whose newest line is older than maxAgeDays.
   */
  log: z
    .strictObject({
      maxBytes: z
        .int()
        .min(65_536)
        .max(1_073_741_824)
        .default(10 * 1024 * 1024),
      maxFiles: z.int().min(2).max(100).default(5),
      maxAgeDays: z.int().min(1).max(3650).default(30),
      /** Lines also go to stdout (journald, PM2, a terminal); the file is written either way. */
      stdout: z.boolean().default(true),
      /**
       * How often the slots' PM2 logs are checked for rotation: a check is a stat per file, and a slot can write its
       * holder's stdout as fast as the disk takes it, so what one interval lets grow is what the disk must hold.
       */
      checkIntervalMs: z.int().min(200).max(3_600_000).default(10_000),
    })
    .default({ maxBytes: 10 * 1024 * 1024, maxFiles: 5, maxAgeDays: 30, stdout: true, checkIntervalMs: 10_000 }),
  reconcileIntervalMs: z.int().min(200).max(600_000).default(5000),
  crashLoop: z
    .strictObject({
      maxRestarts: z.int().min(1).max(1000).default(5),
      windowSeconds: z.int().min(5).max(86_400).default(120),
    })
    .default({ maxRestarts: 5, windowSeconds: 120 }),
  terminal: z
    .strictObject({
      scrollbackLines: z.int().min(100).max(100_000).default(10_000),
      ticketTtlSeconds: z.int().min(5).max(60).default(30),
      journalCompactBytes: z
        .int()
        .min(65_536)
        .max(1_073_741_824)
        .default(4 * 1024 * 1024),
      /** A terminal WebSocket without a ticket at the upgrade is closed unless its opening brings one in this time. */
      openingTimeoutMs: z.int().min(100).max(10_000).default(2000),
      /**
       * Page origins (such as future share pages) that may open terminals with tickets minted without an origin.
       * Tickets minted for a page origin work only from that origin, whatever this list says.
       */
      allowedOrigins: z
        .array(
          z.string().refine((value) => URL.canParse(value) && new URL(value).origin === value, {
            message: 'must be http(s) page origins such as https://share.example.com (no path or trailing /)',
          }),
        )
        .max(32)
        .default([]),
    })
    .default({
      scrollbackLines: 10_000,
      ticketTtlSeconds: 30,
      journalCompactBytes: 4 * 1024 * 1024,
      openingTimeoutMs: 2000,
      allowedOrigins: [],
    }),
  gateway: GatewayConfig.default(GatewayConfig.parse({})),
  idle: z
    .strictObject({
      /**
       * What the idle auto-stop runs, as a program and its arguments (no shell). Null: the default for the host,
       * `sudo -n <helper> poweroff` where slots are isolated, else `sudo -n shutdown -h now`.
       */
      stopCommand: z
        .array(z.string().min(1, { message: 'must not be empty' }).max(4096), {
          message: 'must be an array of strings such as ["sudo", "-n", "shutdown", "-h", "now"]',
        })
        .min(1, { message: 'must name a program' })
        .max(64)
        .nullable()
        .default(null),
      /** How often the agent checks whether the idle time is up. */
      tickMs: z.int().min(100).max(60_000).default(10_000),
    })
    .default({ stopCommand: null, tickMs: 10_000 }),
  alerts: z
    .strictObject({
      /** How often the alert rules are evaluated. */
      intervalMs: z.int().min(100).max(600_000).default(30_000),
    })
    .default({ intervalMs: 30_000 }),
  usage: z
    .strictObject({
      /** Usage rows older than this move to the archive database (rollups stay, so totals still cover them). */
      archiveAfterDays: z.int().min(1).max(3650).default(183),
    })
    .default({ archiveAfterDays: 183 }),
  portal: z
    .strictObject({
      /** The address end users open (invite links, the GitHub callback); null: the gateway's own URL. */
      publicUrl: httpOrigin.nullable().default(null),
      /** GitHub's web and API origins (tests point them at a local stand-in). */
      githubUrl: httpOrigin.default('https://github.com'),
      githubApiUrl: httpOrigin.default('https://api.github.com'),
    })
    .default({ publicUrl: null, githubUrl: 'https://github.com', githubApiUrl: 'https://api.github.com' }),
});

export type AgentConfigInput = z.input<typeof AgentConfigSchema>;

export interface AgentConfig extends Omit<z.output<typeof AgentConfigSchema>, 'pm2Home' | 'runDir'> {
  pm2Home: string;
  runDir: string;
  /** Where the config came from, for messages. */
  configFile: string | null;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid agent configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(base, 'slotdeck-agent');
}

/**
 * Folders that hold unix sockets live under the data dir unless the path would be too long for a socket; then
 * they move to a short private path under the temp dir, one per data dir.
 */
function socketFolder(dataDir: string, name: string, maxLength: number): string {
  const inside = join(dataDir, name);
  if (inside.length <= maxLength) return inside;
  const digest = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  return join(tmpdir(), `slotdeck-${userInfo().uid}-${digest}`, name);
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Explicit config file (from --config); `<dataDir>/agent.json` is read when it exists otherwise. */
  configFile?: string;
  /** Values from the command line, which win over everything else. */
  overrides?: Partial<Record<string, unknown>>;
}

/**
 * Reads the agent's configuration: defaults, then the JSON config file, then SLOTDECK_AGENT_* variables, then
 * command-line overrides. Any bad value stops with a ConfigError naming the key, where it came from and the fix.
 */
export function loadConfig(options: LoadConfigOptions = {}): AgentConfig {
  const env = options.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  const problems: string[] = [];

  const explicitDataDir = options.overrides?.dataDir ?? env.SLOTDECK_AGENT_DATA_DIR;
  const dataDirGuess =
    typeof explicitDataDir === 'string' && explicitDataDir ? resolve(explicitDataDir) : defaultDataDir(env);
  const configFile = options.configFile ?? env.SLOTDECK_AGENT_CONFIG ?? join(dataDirGuess, 'agent.json');
  const explicitFile = Boolean(options.configFile ?? env.SLOTDECK_AGENT_CONFIG);
  let usedFile: string | null = null;

  if (existsSync(configFile)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(configFile, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        problems.push(`${configFile}: must hold a JSON object such as {"admin": {"port": 7420}}`);
      } else {
        Object.assign(raw, parsed);
        usedFile = configFile;
        for (const spec of KEYS) origin.set(spec.key, `from ${configFile}`);
      }
    } catch (error) {
      problems.push(`${configFile}: is not valid JSON (${(error as Error).message}); fix the file or remove it`);
    }
  } else if (explicitFile) {
    problems.push(`config file ${configFile} does not exist; create it or drop --config / SLOTDECK_AGENT_CONFIG`);
  }

  for (const spec of KEYS) {
    const value = env[spec.env];
    if (value !== undefined && value !== '') {
      setPath(raw, spec.key, spec.fromEnv(value));
      origin.set(spec.key, `from ${spec.env}=${JSON.stringify(value)}`);
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    setPath(raw, key, value);
    origin.set(key, 'from the command line');
  }
  if (raw.dataDir === undefined) raw.dataDir = dataDirGuess;
  else if (
    typeof raw.dataDir === 'string' &&
    !isAbsolute(raw.dataDir) &&
    origin.get('dataDir') === 'from the command line'
  ) {
    raw.dataDir = resolve(raw.dataDir);
  }

  const result = AgentConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const unknown of issue.keys) {
          const key = [...issue.path, unknown].join('.');
          problems.push(
            `"${key}"${usedFile ? ` in ${usedFile}` : ''}: is not a setting of the agent; remove it or check the spelling`,
          );
        }
        continue;
      }
      const key = issue.path.join('.');
      const spec = KEYS.find((k) => k.key === key);
      const where = origin.get(key) ?? (spec ? `(set it in the config file or ${spec.env})` : '');
      const hint = spec ? `; fix: ${spec.fix}` : '';
      problems.push(`${key || '(config)'} ${where}: ${issue.message}${hint}`.replace(/\s+:/, ':'));
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);

  const config = result.data;
  return {
    ...config,
    pm2Home: config.pm2Home ?? socketFolder(config.dataDir, 'pm2', MAX_PM2_HOME_LENGTH),
    runDir: config.runDir ?? socketFolder(config.dataDir, 'run', MAX_RUN_DIR_LENGTH),
    configFile: usedFile,
  };
}
